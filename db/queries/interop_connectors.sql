-- name: ConnectorInsert :one
INSERT INTO interop_connectors (tenant_id, facility_id, name, protocol, direction, status, listen_host, listen_port, settings)
VALUES (@tenant_id, @facility_id, @name, @protocol, @direction, @status, @listen_host, @listen_port, @settings)
RETURNING *;

-- name: ConnectorGet :one
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id AND id = @id;

-- name: ConnectorGetByName :one
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id AND name = @name;

-- name: ConnectorListActiveListeners :many
-- Every connector a gateway must open an MLLP listener for, across tenants.
SELECT * FROM interop_connectors
WHERE status = 'active' AND protocol = 'mllp' AND direction IN ('inbound', 'bidirectional')
ORDER BY listen_port;

-- name: ConnectorSetStatus :one
UPDATE interop_connectors SET status = @status
WHERE tenant_id = @tenant_id AND id = @id
RETURNING *;

-- name: ConnectorSetListenAddr :exec
UPDATE interop_connectors SET listen_host = @listen_host, listen_port = @listen_port WHERE id = @id;

-- name: ConnectorCreate :one
-- The admin API's create. The caller chooses the id: it is part of the associated data the
-- credentials are sealed with, so it must be known before the row exists.
INSERT INTO interop_connectors (
    id, tenant_id, facility_id, name, protocol, direction, status, listen_host, listen_port,
    settings, auth_ciphertext, auth_key_id
) VALUES (
    @id, @tenant_id, @facility_id, @name, @protocol, @direction, 'draft', @listen_host, @listen_port,
    @settings, @auth_ciphertext, @auth_key_id
)
RETURNING *;

-- name: ConnectorGetForUpdate :one
-- Locks the connector for the rest of the transaction: the admin API decides a change on the
-- row it locked, so two concurrent changes are serialised, never interleaved.
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id AND id = @id FOR UPDATE;

-- name: ConnectorSearch :many
-- A tenant's connectors, each filter applying only when given.
SELECT * FROM interop_connectors
WHERE tenant_id = @tenant_id
  AND (sqlc.narg(status)::connector_status IS NULL OR status = sqlc.narg(status)::connector_status)
  AND (sqlc.narg(protocol)::connector_protocol IS NULL OR protocol = sqlc.narg(protocol)::connector_protocol)
  AND (sqlc.narg(direction)::connector_direction IS NULL OR direction = sqlc.narg(direction)::connector_direction)
  AND (sqlc.narg(facility_id)::text IS NULL OR facility_id = sqlc.narg(facility_id)::text)
ORDER BY created_at, id;

-- name: ConnectorUpdate :one
-- Replaces every mutable field (the admin API's PUT, on a row it locked); status changes go
-- through ConnectorSetStatus only.
UPDATE interop_connectors
SET name = @name, facility_id = @facility_id, protocol = @protocol, direction = @direction,
    listen_host = @listen_host, listen_port = @listen_port, settings = @settings,
    auth_ciphertext = @auth_ciphertext, auth_key_id = @auth_key_id
WHERE tenant_id = @tenant_id AND id = @id
RETURNING *;

-- name: ConnectorHasMessages :one
-- Whether anything was ever received on the connector (stored or rejected): such a connector
-- keeps its message log and cannot be deleted.
SELECT EXISTS (
    SELECT 1 FROM hl7_messages m WHERE m.connector_id = sqlc.arg(id)::uuid
    UNION ALL
    SELECT 1 FROM hl7_rejected_inputs r WHERE r.connector_id = sqlc.arg(id)::uuid
) AS has_messages;

-- name: ConnectorDeleteDraft :execrows
DELETE FROM interop_connectors WHERE tenant_id = @tenant_id AND id = @id AND status = 'draft';

-- name: ConnectorActiveInSlot :one
-- The active connector holding a (tenant, facility, protocol, direction) slot, to name it when
-- another cannot take the slot.
SELECT id, name FROM interop_connectors
WHERE tenant_id = @tenant_id AND facility_id = @facility_id AND protocol = @protocol
  AND direction = @direction AND status = 'active';

-- name: ConnectorActiveOnPort :one
-- The active connector listening on a port, of any tenant (the caller names it only to its
-- own tenant).
SELECT id, tenant_id, name FROM interop_connectors
WHERE listen_port = @listen_port AND status = 'active';
