-- name: Hl7MessageInsert :one
-- Returns no row when the dedup key already exists; the caller then replays the stored ACK.
INSERT INTO hl7_messages (
    tenant_id, connector_id, message_control_id, sending_app, sending_facility, message_code,
    trigger_event, message_structure, hl7_version, message_time, raw, raw_sha256, ack_code, ack,
    workflow_id, remote_addr
) VALUES (
    @tenant_id, @connector_id, @message_control_id, @sending_app, @sending_facility, @message_code,
    @trigger_event, @message_structure, @hl7_version, @message_time, @raw, @raw_sha256, @ack_code, @ack,
    @workflow_id, @remote_addr
)
ON CONFLICT (connector_id, message_control_id, sending_app) WHERE duplicate_of IS NULL DO NOTHING
RETURNING id, received_at;

-- name: Hl7MessageInsertReceived :one
-- The common case of ingest in one statement (one round trip, one commit): the message, with
-- an id chosen by the caller, and its Hl7MessageReceived event. Returns no row, and writes
-- nothing, when the dedup key exists; the caller then takes the transactional path.
WITH m AS (
    INSERT INTO hl7_messages (
        id, tenant_id, connector_id, message_control_id, sending_app, sending_facility, message_code,
        trigger_event, message_structure, hl7_version, message_time, raw, raw_sha256, ack_code, ack,
        workflow_id, remote_addr
    ) VALUES (
        @id, @tenant_id, @connector_id, @message_control_id, @sending_app, @sending_facility, @message_code,
        @trigger_event, @message_structure, @hl7_version, @message_time, @raw, @raw_sha256, @ack_code, @ack,
        @workflow_id, @remote_addr
    )
    ON CONFLICT (connector_id, message_control_id, sending_app) WHERE duplicate_of IS NULL DO NOTHING
    RETURNING id, tenant_id, received_at
), e AS (
    INSERT INTO domain_events (tenant_id, event_type, aggregate_type, aggregate_id, payload)
    SELECT m.tenant_id, @event_type, @aggregate_type, m.id::text, @event_payload FROM m
)
SELECT id, received_at FROM m;

-- name: Hl7MessageGetByKey :one
SELECT id, tenant_id, raw_sha256, ack_code, ack, status, workflow_id
FROM hl7_messages
WHERE connector_id = @connector_id AND message_control_id = @message_control_id
  AND sending_app = @sending_app AND duplicate_of IS NULL;

-- name: Hl7MessageGet :one
SELECT * FROM hl7_messages WHERE id = @id;

-- name: Hl7MessageGetForTenant :one
SELECT * FROM hl7_messages WHERE tenant_id = @tenant_id AND id = @id;

-- name: Hl7MessageSetStatus :one
UPDATE hl7_messages
SET status = @status, last_error_code = @last_error_code, last_error = @last_error,
    processed_at = CASE WHEN @status::hl7_message_status IN ('processed', 'unmapped') THEN now() ELSE processed_at END
WHERE id = @id
RETURNING id, tenant_id, connector_id, status;

-- name: Hl7MessageListStale :many
-- Messages acknowledged but never started (Temporal was unreachable), oldest first, after the
-- sweeper's cursor (received_at, id), so that messages it cannot start never hide the rest.
SELECT id, tenant_id, connector_id, message_control_id, sending_app, message_code, trigger_event, workflow_id,
       received_at, status_changed_at
FROM hl7_messages
WHERE status = 'pending' AND received_at < @received_before
  AND (received_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY received_at, id
LIMIT @max_rows;

-- name: Hl7MessageListUnsettled :many
-- Messages not done (pending, processing, failed) whose status has not moved since
-- changed_before, after the reconciler's cursor (received_at, id): each pass checks their runs.
-- Served by the partial index hl7_messages_backlog.
SELECT id, tenant_id, connector_id, message_code, trigger_event, workflow_id, status,
       received_at, status_changed_at
FROM hl7_messages
WHERE status IN ('pending', 'processing', 'failed') AND status_changed_at < @changed_before
  AND (received_at, id) > (@after_at::timestamptz, @after_id::uuid)
ORDER BY received_at, id
LIMIT @max_rows;

-- name: Hl7MessageSettle :one
-- Ends a message that its run will not end (a start Temporal refuses, a run that closed
-- without writing the outcome). Only while the message is still pending, processing or failed
-- and, when seen_changed_at is given, its status has not moved since it was read: an outcome
-- written meanwhile is never overwritten. No row: nothing to settle.
UPDATE hl7_messages
SET status = @status, last_error_code = @last_error_code, last_error = @last_error,
    processed_at = CASE WHEN @status::hl7_message_status IN ('processed', 'unmapped') THEN now() ELSE processed_at END
WHERE id = @id AND status IN ('pending', 'processing', 'failed')
  AND (sqlc.narg(seen_changed_at)::timestamptz IS NULL OR status_changed_at = sqlc.narg(seen_changed_at))
RETURNING id, tenant_id;

-- name: Hl7MessageBacklogSummary :many
-- Support staff's backlog of one tenant: per connector and status (pending, processing,
-- failed), how many messages wait and how old the oldest is.
SELECT m.connector_id, c.name AS connector, m.status, count(*)::bigint AS messages,
       min(m.received_at)::timestamptz AS oldest_received_at,
       extract(epoch FROM now() - min(m.received_at))::float8 AS oldest_seconds
FROM hl7_messages m JOIN interop_connectors c ON c.id = m.connector_id
WHERE m.tenant_id = @tenant_id AND m.status IN ('pending', 'processing', 'failed')
GROUP BY m.connector_id, c.name, m.status
ORDER BY c.name, m.connector_id, m.status;

-- name: Hl7RejectedInputInsert :one
-- raw is a bounded prefix of what arrived; size_bytes and raw_sha256 describe all of it.
INSERT INTO hl7_rejected_inputs (tenant_id, connector_id, raw, size_bytes, raw_sha256, reason, remote_addr)
VALUES (@tenant_id, @connector_id, @raw, @size_bytes, @raw_sha256, @reason, @remote_addr)
RETURNING id;

-- name: Hl7MessageList :many
-- Support staff's message log, newest first, with optional filters and keyset paging on
-- (received_at, id).
SELECT id, connector_id, message_control_id, sending_app, sending_facility, message_code,
       trigger_event, hl7_version, status, ack_code, last_error_code, last_error, workflow_id,
       received_at, status_changed_at, processed_at, octet_length(raw)::int AS size_bytes,
       duplicate_of
FROM hl7_messages
WHERE tenant_id = @tenant_id
  AND (sqlc.narg(status)::hl7_message_status IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(message_code)::text IS NULL OR message_code = sqlc.narg(message_code))
  AND (sqlc.narg(trigger_event)::text IS NULL OR trigger_event = sqlc.narg(trigger_event))
  AND (sqlc.narg(connector_id)::uuid IS NULL OR connector_id = sqlc.narg(connector_id))
  AND (sqlc.narg(control_id)::text IS NULL OR message_control_id = sqlc.narg(control_id))
  AND (sqlc.narg(received_from)::timestamptz IS NULL OR received_at >= sqlc.narg(received_from))
  AND (sqlc.narg(received_to)::timestamptz IS NULL OR received_at < sqlc.narg(received_to))
  AND (sqlc.narg(before_at)::timestamptz IS NULL
       OR (received_at, id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY received_at DESC, id DESC
LIMIT @max_rows;

-- name: Hl7MessageRaw :one
SELECT raw FROM hl7_messages WHERE tenant_id = @tenant_id AND id = @id;

-- name: Hl7MessageConnectorSettings :one
-- The settings of the connector a message arrived on (its retry policy, among others).
SELECT c.settings FROM interop_connectors c JOIN hl7_messages m ON m.connector_id = c.id WHERE m.id = @message_id;

-- name: Hl7MessageBacklog :many
-- Messages not yet done, per connector and status, with the age of the oldest: the backlog
-- metrics. Served by the partial index hl7_messages_backlog.
SELECT c.tenant_id, c.name AS connector, m.status, count(*)::bigint AS messages,
       extract(epoch FROM now() - min(m.received_at))::float8 AS oldest_seconds
FROM hl7_messages m JOIN interop_connectors c ON c.id = m.connector_id
WHERE m.status IN ('pending', 'processing', 'failed')
GROUP BY c.tenant_id, c.name, m.status;

-- name: Hl7MessagePruneProcessed :execrows
-- Deletes one batch of processed messages older than the retention age (attempts and links
-- go with them). Failed and dead-lettered messages are never pruned here, nor an original that
-- a flagged duplicate still points at. The immutability trigger allows the delete only with
-- interop.allow_purge set in the same transaction.
DELETE FROM hl7_messages
WHERE id IN (
    SELECT m.id FROM hl7_messages m
    WHERE m.status = 'processed' AND m.processed_at < @processed_before
      AND NOT EXISTS (SELECT 1 FROM hl7_messages d WHERE d.duplicate_of = m.id)
    ORDER BY m.processed_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);

-- name: AllowPurge :exec
SELECT set_config('interop.allow_purge', 'on', true);

-- name: Hl7MessageInsertDuplicate :one
-- A resend with the dedup key of a stored message but other bytes, accepted (connector setting
-- duplicatePolicy "accept") as a new message flagged duplicate_of the original. The dedup index
-- is partial (duplicate_of IS NULL), so this insert never conflicts.
INSERT INTO hl7_messages (
    tenant_id, connector_id, message_control_id, sending_app, sending_facility, message_code,
    trigger_event, message_structure, hl7_version, message_time, raw, raw_sha256, ack_code, ack,
    workflow_id, remote_addr, duplicate_of
) VALUES (
    @tenant_id, @connector_id, @message_control_id, @sending_app, @sending_facility, @message_code,
    @trigger_event, @message_structure, @hl7_version, @message_time, @raw, @raw_sha256, @ack_code, @ack,
    @workflow_id, @remote_addr, @duplicate_of
)
RETURNING id, received_at;

-- name: Hl7MessageLockForDuplicate :one
-- Locks the original message of a dedup key until the transaction ends, so that resends with
-- other bytes accepted as flagged duplicates of it are counted and numbered one at a time.
-- NO KEY UPDATE: it still lets the foreign key checks of duplicate_of through.
SELECT id FROM hl7_messages WHERE id = @id FOR NO KEY UPDATE;

-- name: Hl7MessageListDuplicates :many
-- The flagged duplicates of a message (resends of its key with other bytes), oldest first:
-- a resend of one of them replays its ACK, and their number names the next one's workflow.
SELECT id, raw_sha256, ack_code, ack, workflow_id
FROM hl7_messages
WHERE duplicate_of = @original_id
ORDER BY received_at, id;

-- name: Hl7MessageParseInput :one
-- What the Parse and Map steps read: the raw bytes, the tenant, and the settings of the
-- connector the message arrived on (internal/connector: its charset decodes the bytes when
-- MSH-18 is silent, its time zone reads times without a UTC offset).
SELECT m.raw, m.tenant_id, c.settings
FROM hl7_messages m JOIN interop_connectors c ON c.id = m.connector_id
WHERE m.id = @id;
