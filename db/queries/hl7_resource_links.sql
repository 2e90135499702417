-- name: Hl7ResourceLinkListByMessage :many
SELECT * FROM hl7_resource_links WHERE message_id = @message_id ORDER BY created_at, id;

-- name: Hl7ResourceLinkInsertMany :exec
-- A Bundle's links in one statement (one commit instead of one per resource); created_at
-- keeps their order, which listings sort by.
INSERT INTO hl7_resource_links (tenant_id, message_id, attempt_id, resource_type, resource_id, action, owner, created_at)
SELECT @tenant_id::text, @message_id::uuid, sqlc.narg('attempt_id')::uuid,
       (@resource_types::text[])[i], (@resource_ids::text[])[i], (@actions::text[])[i], (@owners::text[])[i],
       now() + i * interval '1 microsecond'
FROM generate_series(1, cardinality(@resource_types::text[])) AS i
ON CONFLICT (message_id, resource_type, resource_id) DO NOTHING;
