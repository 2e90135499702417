-- name: Hl7ProcessingAttemptStart :one
-- Idempotent per workflow run: an activity retry gets the attempt it already opened.
INSERT INTO hl7_processing_attempts (tenant_id, message_id, attempt_number, workflow_id, run_id)
SELECT m.tenant_id, m.id,
       coalesce((SELECT max(a.attempt_number) FROM hl7_processing_attempts a WHERE a.message_id = m.id), 0) + 1,
       @workflow_id, @run_id
FROM hl7_messages m WHERE m.id = @message_id
ON CONFLICT (message_id, run_id, run_try) DO UPDATE SET status = hl7_processing_attempts.status
RETURNING id, attempt_number;

-- name: Hl7ProcessingAttemptGet :one
SELECT * FROM hl7_processing_attempts WHERE id = @id;

-- name: Hl7ProcessingAttemptSetBundle :exec
UPDATE hl7_processing_attempts
SET mapped_bundle = @mapped_bundle, mapping_notes = @mapping_notes::text[], field_coverage = @field_coverage
WHERE id = @id;

-- name: Hl7ProcessingAttemptFinish :exec
UPDATE hl7_processing_attempts
SET status = @status, error_code = @error_code, error_detail = @error_detail, finished_at = now()
WHERE id = @id;

-- name: Hl7ProcessingAttemptListByMessage :many
SELECT id, attempt_number, workflow_id, run_id, status, error_code, error_detail, attempt_at, finished_at, mapping_notes, field_coverage
FROM hl7_processing_attempts WHERE message_id = @message_id ORDER BY attempt_number;

-- name: Hl7ProcessingAttemptStartTry :one
-- Idempotent per (run, try): an activity retry gets the attempt it already opened.
INSERT INTO hl7_processing_attempts (tenant_id, message_id, attempt_number, workflow_id, run_id, run_try)
SELECT m.tenant_id, m.id,
       coalesce((SELECT max(a.attempt_number) FROM hl7_processing_attempts a WHERE a.message_id = m.id), 0) + 1,
       @workflow_id, @run_id, @run_try
FROM hl7_messages m WHERE m.id = @message_id
ON CONFLICT (message_id, run_id, run_try) DO UPDATE SET status = hl7_processing_attempts.status
RETURNING id, attempt_number;

-- name: Hl7ProcessingAttemptFinishRunning :exec
-- Closes the attempts of a message still marked running, when the message is settled without
-- its run (Hl7MessageSettle).
UPDATE hl7_processing_attempts
SET status = @status, error_code = @error_code, error_detail = @error_detail, finished_at = now()
WHERE message_id = @message_id AND status = 'running';
