-- SMART Backend Services (POST /auth/token): the clients each tenant registers, the ids of the
-- client assertions already used (replay refusal across replicas), and the service's own
-- rotating signing keys for the access tokens it issues.

-- A backend client of one tenant: it authenticates with a JWT signed by a key of its JWKS
-- (given by value, or by URL and fetched) and is granted at most its registered scopes.
-- client_id is assigned by the service, unique across tenants: the token endpoint has no tenant
-- in its URL, the client's registration says which tenant its tokens are for.
CREATE TABLE auth_clients (
    client_id   text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9._~-]{1,128}$'),
    tenant_id   text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    jwks        jsonb,
    jwks_url    text CHECK (jwks_url ~ '^https?://'),
    scopes      text[] NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 100),
    enabled     boolean NOT NULL DEFAULT true,
    version     bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auth_clients_one_jwks CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
);

CREATE INDEX auth_clients_tenant ON auth_clients (tenant_id, created_at, client_id);

-- The jti of every accepted client assertion, kept until the assertion expires: a second use
-- of one is refused (the primary key is the check, so two replicas cannot both accept it).
CREATE TABLE auth_assertion_jtis (
    client_id   text NOT NULL REFERENCES auth_clients (client_id) ON DELETE CASCADE,
    jti         text NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE INDEX auth_assertion_jtis_expires ON auth_assertion_jtis (expires_at);

-- The service's access-token signing keys. The private key is sealed (Tink AEAD of
-- internal/crypto, the connector credentials' keyset, with the kid as associated data); the
-- public JWK is published at /.well-known/jwks.json. A key signs until retire_at and stays
-- published until published_until, so that tokens it signed verify until they expire.
CREATE TABLE auth_signing_keys (
    kid              text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
    alg              text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    private_sealed   bytea NOT NULL,
    sealing_key_id   text NOT NULL,
    public_jwk       jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    retire_at        timestamptz NOT NULL,
    published_until  timestamptz NOT NULL,
    CHECK (created_at < retire_at AND retire_at <= published_until)
);
