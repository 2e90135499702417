-- name: DomainEventInsert :exec
INSERT INTO domain_events (tenant_id, event_type, aggregate_type, aggregate_id, payload)
VALUES (@tenant_id, @event_type, @aggregate_type, @aggregate_id, @payload);

-- name: DomainEventListAfter :many
-- Only events whose transaction is older than every running transaction are returned, so an
-- event that commits after a later one is never skipped by a reader's cursor.
SELECT seq, txid::text AS tx_id, event_id, tenant_id, event_type, aggregate_type, aggregate_id, payload, occurred_at
FROM domain_events
WHERE tenant_id = @tenant_id
  AND (txid, seq) > (CAST(sqlc.arg(after_tx_id)::text AS xid8), sqlc.arg(after_seq)::bigint)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, seq
LIMIT @max_rows;
