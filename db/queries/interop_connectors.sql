-- name: ConnectorInsert :one
INSERT INTO interop_connectors (tenant_id, facility_id, name, protocol, direction, status, listen_host, listen_port, settings)
VALUES (@tenant_id, @facility_id, @name, @protocol, @direction, @status, @listen_host, @listen_port, @settings)
RETURNING *;

-- name: ConnectorGet :one
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id AND id = @id;

-- name: ConnectorGetByID :one
-- For the listener side, which is given a connector id and finds its tenant from it.
SELECT * FROM interop_connectors WHERE id = @id;

-- name: ConnectorGetByName :one
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id AND name = @name;

-- name: ConnectorList :many
SELECT * FROM interop_connectors WHERE tenant_id = @tenant_id ORDER BY created_at, id;

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
