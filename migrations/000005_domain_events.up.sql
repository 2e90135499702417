-- Transactional outbox: each domain event is inserted in the transaction of the change that
-- raised it, and delivered at least once.
CREATE TABLE domain_events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. Readers only see events whose transaction is older than every
    -- running one, so a cursor over (txid, seq) never skips an event that commits late.
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    tenant_id       text NOT NULL,
    event_type      text NOT NULL CHECK (event_type ~ '^[A-Z][A-Za-z0-9]+$'),
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    payload         jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);

CREATE INDEX domain_events_tenant_cursor ON domain_events (tenant_id, txid, seq);
CREATE INDEX domain_events_unpublished ON domain_events (txid, seq) WHERE published_at IS NULL;
