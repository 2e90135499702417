-- Hl7Message: an immutable, append-only record of a received or sent HL7 v2 message.
CREATE TYPE hl7_message_status AS ENUM ('pending', 'processing', 'processed', 'failed', 'dead_lettered');
CREATE TYPE hl7_message_direction AS ENUM ('inbound', 'outbound');

CREATE TABLE hl7_messages (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           text NOT NULL,
    -- RESTRICT: deactivating or retiring a connector never deletes its message log.
    connector_id        uuid NOT NULL REFERENCES interop_connectors (id) ON DELETE RESTRICT,
    direction           hl7_message_direction NOT NULL DEFAULT 'inbound',
    message_control_id  text NOT NULL,
    sending_app         text NOT NULL,
    sending_facility    text NOT NULL DEFAULT '',
    message_code        text NOT NULL DEFAULT '',
    trigger_event       text NOT NULL DEFAULT '',
    message_structure   text NOT NULL DEFAULT '',
    hl7_version         text NOT NULL DEFAULT '',
    message_time        timestamptz,
    raw                 bytea NOT NULL,
    raw_sha256          bytea NOT NULL CHECK (octet_length(raw_sha256) = 32),
    -- Set when a resend with the same key but different bytes is accepted as a new message.
    duplicate_of        uuid REFERENCES hl7_messages (id),
    status              hl7_message_status NOT NULL DEFAULT 'pending',
    -- The ACK sent for this message, replayed byte for byte when the sender resends it.
    ack_code            text NOT NULL,
    ack                 bytea NOT NULL,
    workflow_id         text NOT NULL,
    remote_addr         text NOT NULL DEFAULT '',
    last_error_code     text NOT NULL DEFAULT '',
    last_error          text NOT NULL DEFAULT '',
    received_at         timestamptz NOT NULL DEFAULT now(),
    status_changed_at   timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz
);

-- Domain invariant: deduplication on (connector, control id, sending application). A resend that
-- was accepted as a flagged new message (duplicate_of set) is outside the key.
CREATE UNIQUE INDEX hl7_messages_dedup
    ON hl7_messages (connector_id, message_control_id, sending_app)
    WHERE duplicate_of IS NULL;

CREATE INDEX hl7_messages_tenant_received ON hl7_messages (tenant_id, received_at DESC, id DESC);
CREATE INDEX hl7_messages_backlog ON hl7_messages (received_at) WHERE status IN ('pending', 'processing', 'failed');
CREATE INDEX hl7_messages_status ON hl7_messages (tenant_id, status, received_at DESC);

-- Raw bytes and identity never change after storage; only processing state moves.
CREATE FUNCTION hl7_messages_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF coalesce(current_setting('interop.allow_purge', true), '') <> 'on' THEN
            RAISE EXCEPTION 'hl7_messages is append-only' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.raw IS DISTINCT FROM OLD.raw
        OR NEW.raw_sha256 IS DISTINCT FROM OLD.raw_sha256
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.connector_id IS DISTINCT FROM OLD.connector_id
        OR NEW.message_control_id IS DISTINCT FROM OLD.message_control_id
        OR NEW.sending_app IS DISTINCT FROM OLD.sending_app
        OR NEW.received_at IS DISTINCT FROM OLD.received_at
        OR NEW.ack IS DISTINCT FROM OLD.ack THEN
        RAISE EXCEPTION 'hl7 message % is immutable', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_changed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER hl7_messages_immutable BEFORE UPDATE OR DELETE ON hl7_messages
    FOR EACH ROW EXECUTE FUNCTION hl7_messages_immutable();

-- Input that could not be framed or whose MSH could not be read: NAKed, but kept for audit.
CREATE TABLE hl7_rejected_inputs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    connector_id    uuid NOT NULL REFERENCES interop_connectors (id) ON DELETE RESTRICT,
    raw             bytea NOT NULL,
    reason          text NOT NULL,
    remote_addr     text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hl7_rejected_inputs_tenant ON hl7_rejected_inputs (tenant_id, received_at DESC);

-- Hl7ProcessingAttempt: one try of the parse → map → route pipeline.
CREATE TYPE hl7_attempt_status AS ENUM ('running', 'succeeded', 'failed');

CREATE TABLE hl7_processing_attempts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    message_id      uuid NOT NULL REFERENCES hl7_messages (id) ON DELETE CASCADE,
    attempt_number  integer NOT NULL CHECK (attempt_number > 0),
    workflow_id     text NOT NULL,
    run_id          text NOT NULL,
    status          hl7_attempt_status NOT NULL DEFAULT 'running',
    -- The FHIR transaction Bundle the Map step produced; Route reads it from here so that
    -- PHI never enters the workflow history.
    mapped_bundle   jsonb,
    error_code      text NOT NULL DEFAULT '',
    error_detail    text NOT NULL DEFAULT '',
    attempt_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT hl7_processing_attempts_number UNIQUE (message_id, attempt_number),
    -- An activity retry of "start attempt" for the same run must not open a second attempt.
    CONSTRAINT hl7_processing_attempts_run UNIQUE (message_id, run_id)
);

-- Hl7ResourceLink: every FHIR resource a message created or updated.
CREATE TABLE hl7_resource_links (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    message_id      uuid NOT NULL REFERENCES hl7_messages (id) ON DELETE CASCADE,
    attempt_id      uuid REFERENCES hl7_processing_attempts (id) ON DELETE SET NULL,
    resource_type   text NOT NULL,
    resource_id     text NOT NULL,
    action          text NOT NULL CHECK (action IN ('created', 'updated', 'unchanged', 'deleted')),
    owner           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hl7_resource_links_unique UNIQUE (message_id, resource_type, resource_id)
);
CREATE INDEX hl7_resource_links_resource ON hl7_resource_links (tenant_id, resource_type, resource_id);
