-- name: AuditEventInsertBatch :execrows
-- Writes a batch of audit records in one statement: rows is a JSON array of objects with the
-- columns' names (entity_refs and patient_refs as arrays of strings, event as the AuditEvent).
-- A record already written (a retried batch whose commit was not acknowledged, a spool
-- replayed after a crash) is skipped, so writing a batch twice is harmless. Returns the rows
-- inserted.
INSERT INTO audit_events (id, tenant_id, recorded, type_code, subtype, action, outcome, http_status,
                          agent, entity_refs, patient_refs, source_address, request_id, event)
SELECT r.id, r.tenant_id, r.recorded, r.type_code, r.subtype, r.action, r.outcome, r.http_status,
       r.agent, r.entity_refs, r.patient_refs, r.source_address, r.request_id, r.event
FROM jsonb_to_recordset(@rows::jsonb) AS r(
    id uuid, tenant_id text, recorded timestamptz, type_code text, subtype text, action char(1),
    outcome smallint, http_status smallint, agent text, entity_refs text[], patient_refs text[],
    source_address text, request_id text, event jsonb)
ON CONFLICT (id) DO NOTHING;

-- name: AuditEventSearch :many
-- A tenant's audit trail, newest first, keyset-paged on (recorded, id), with optional filters:
-- the agent, an entity or a Patient the event names, actions, an outcome, and a recorded range
-- [recorded_from, recorded_before).
SELECT id, recorded, event
FROM audit_events
WHERE tenant_id = @tenant_id
  AND (sqlc.narg(agent)::text IS NULL OR agent = sqlc.narg(agent)::text)
  AND (sqlc.narg(entity)::text IS NULL OR entity_refs @> ARRAY[sqlc.narg(entity)::text])
  AND (sqlc.narg(patient)::text IS NULL OR patient_refs @> ARRAY[sqlc.narg(patient)::text])
  AND (cardinality(@actions::text[]) = 0 OR action = ANY (@actions::text[]))
  AND (cardinality(@outcomes::smallint[]) = 0 OR outcome = ANY (@outcomes::smallint[]))
  AND (sqlc.narg(recorded_from)::timestamptz IS NULL OR recorded >= sqlc.narg(recorded_from)::timestamptz)
  AND (sqlc.narg(recorded_before)::timestamptz IS NULL OR recorded < sqlc.narg(recorded_before)::timestamptz)
  AND (sqlc.narg(before_recorded)::timestamptz IS NULL
       OR (recorded, id) < (sqlc.narg(before_recorded)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY recorded DESC, id DESC
LIMIT @max_rows;

-- name: AuditEventGet :one
SELECT id, recorded, event FROM audit_events WHERE tenant_id = @tenant_id AND id = @id;
