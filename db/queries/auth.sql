-- name: AuthClientList :many
-- A tenant's backend clients, oldest first.
SELECT * FROM auth_clients WHERE tenant_id = @tenant_id ORDER BY created_at, client_id;

-- name: AuthClientGet :one
-- One client of a tenant (the admin API).
SELECT * FROM auth_clients WHERE tenant_id = @tenant_id AND client_id = @client_id;

-- name: AuthClientByID :one
-- A client by its id alone: the token endpoint, which learns the tenant from the client.
SELECT * FROM auth_clients WHERE client_id = @client_id;

-- name: AuthClientCreate :one
INSERT INTO auth_clients (client_id, tenant_id, name, jwks, jwks_url, scopes, enabled)
VALUES (@client_id, @tenant_id, @name, @jwks, @jwks_url, @scopes, @enabled)
RETURNING *;

-- name: AuthClientUpdate :one
-- Replaces every mutable field, on the version the caller read when it names one.
UPDATE auth_clients
SET name = @name, jwks = @jwks, jwks_url = @jwks_url, scopes = @scopes, enabled = @enabled,
    version = version + 1, updated_at = now()
WHERE tenant_id = @tenant_id AND client_id = @client_id
  AND (sqlc.narg(if_version)::bigint IS NULL OR version = sqlc.narg(if_version))
RETURNING *;

-- name: AuthClientDelete :execrows
DELETE FROM auth_clients WHERE tenant_id = @tenant_id AND client_id = @client_id;

-- name: AuthAssertionUse :execrows
-- Records a client assertion's jti; 0 rows means it was used before (a replay).
INSERT INTO auth_assertion_jtis (client_id, jti, expires_at) VALUES (@client_id, @jti, @expires_at)
ON CONFLICT DO NOTHING;

-- name: AuthAssertionPrune :execrows
-- Forgets the jtis of assertions that have expired: they can no longer be replayed.
DELETE FROM auth_assertion_jtis WHERE expires_at < @before;

-- name: AuthSigningKeyLock :exec
-- Serialises key rotation between replicas for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('auth_signing_keys', 0));

-- name: AuthSigningKeyListPublished :many
-- Every key still published, newest first.
SELECT * FROM auth_signing_keys WHERE published_until > @now ORDER BY created_at DESC, kid;

-- name: AuthSigningKeyInsert :exec
INSERT INTO auth_signing_keys (kid, alg, private_sealed, sealing_key_id, public_jwk, created_at, retire_at, published_until)
VALUES (@kid, @alg, @private_sealed, @sealing_key_id, @public_jwk, @created_at, @retire_at, @published_until);

-- name: AuthSigningKeyPrune :execrows
-- Deletes keys no token they signed can still be valid for.
DELETE FROM auth_signing_keys WHERE published_until < @before;
