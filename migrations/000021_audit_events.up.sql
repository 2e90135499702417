-- The audit trail (issue #14): one row per read or write of PHI through /fhir, /admin and the
-- export downloads, and per token issuance, each a FHIR R4 AuditEvent in the IHE BALP basic
-- shape (event). The other columns are what /admin/audit-events filters on, copied from the
-- event when it is built (gateway/auditlog), so that a search never digs into the JSON.
-- id is the AuditEvent's id, assigned by the gateway before the row is written: a retried or
-- replayed write of the same record inserts nothing (ON CONFLICT (id) DO NOTHING).
CREATE TABLE audit_events (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL,
    recorded        timestamptz NOT NULL,
    -- AuditEvent.type: 'rest' (audit-event-type), or a DICOM code: '110114' User Authentication,
    -- '110106' Export.
    type_code       text NOT NULL CHECK (type_code ~ '^[a-z0-9-]{1,32}$'),
    -- AuditEvent.subtype: the FHIR restful interaction (read, search-type, create, …), or
    -- '110122' Login for a token issuance.
    subtype         text NOT NULL DEFAULT '' CHECK (length(subtype) <= 64),
    action          char(1) NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
    -- AuditEvent.outcome: 0 success, 4 minor failure (a 4xx), 8 serious failure (a 5xx), 12
    -- major failure.
    outcome         smallint NOT NULL CHECK (outcome IN (0, 4, 8, 12)),
    -- The HTTP status answered; 0 when none was (outcome 12).
    http_status     smallint NOT NULL CHECK (http_status = 0 OR http_status BETWEEN 100 AND 599),
    -- The requesting agent: the bearer token's subject (a SMART client id, `interop token`'s
    -- subject), or the client id of a token request.
    agent           text NOT NULL CHECK (length(agent) <= 256),
    -- Every entity reference the event names ("Patient/123", "Observation/9/_history/2" as
    -- "Observation/9", "Hl7Message/<uuid>"), the Patient compartment included.
    entity_refs     text[] NOT NULL DEFAULT '{}',
    -- The Patients whose record was touched ("Patient/123").
    patient_refs    text[] NOT NULL DEFAULT '{}',
    source_address  text NOT NULL DEFAULT '' CHECK (length(source_address) <= 64),
    request_id      text NOT NULL DEFAULT '' CHECK (length(request_id) <= 128),
    event           jsonb NOT NULL,
    -- When the row reached the database (recorded is when the request was answered): the
    -- difference is the writer's delay.
    written_at      timestamptz NOT NULL DEFAULT now()
);

-- A tenant's trail newest first, the date filter, and the keyset paging on (recorded, id).
CREATE INDEX audit_events_tenant_recorded ON audit_events (tenant_id, recorded DESC, id DESC);
-- Who did what: ?agent=.
CREATE INDEX audit_events_tenant_agent ON audit_events (tenant_id, agent, recorded DESC, id DESC);
-- What was touched: ?entity= and ?patient= (array containment, @>).
CREATE INDEX audit_events_entity_refs ON audit_events USING gin (entity_refs);
CREATE INDEX audit_events_patient_refs ON audit_events USING gin (patient_refs);

-- Audit records are append-only: never updated, and deleted only by a retention job that says
-- so in its transaction (SET LOCAL interop.allow_purge = 'on'), as for hl7_messages.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('interop.allow_purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
