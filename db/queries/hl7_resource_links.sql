-- name: Hl7ResourceLinkInsert :exec
INSERT INTO hl7_resource_links (tenant_id, message_id, attempt_id, resource_type, resource_id, action, owner)
VALUES (@tenant_id, @message_id, @attempt_id, @resource_type, @resource_id, @action, @owner)
ON CONFLICT (message_id, resource_type, resource_id) DO NOTHING;

-- name: Hl7ResourceLinkListByMessage :many
SELECT * FROM hl7_resource_links WHERE message_id = @message_id ORDER BY created_at, id;
