-- InteropConnector: a configured integration channel per tenant and facility.
CREATE TYPE connector_protocol AS ENUM ('mllp', 'fhir-rest', 'sftp', 'api-polling');
CREATE TYPE connector_direction AS ENUM ('inbound', 'outbound', 'bidirectional');
CREATE TYPE connector_status AS ENUM ('draft', 'active', 'inactive', 'retired');

CREATE TABLE interop_connectors (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    facility_id         text NOT NULL CHECK (facility_id <> ''),
    name                text NOT NULL CHECK (name <> ''),
    protocol            connector_protocol NOT NULL,
    direction           connector_direction NOT NULL,
    status              connector_status NOT NULL DEFAULT 'draft',
    -- Listener address for inbound mllp connectors; NULL for the others.
    listen_host         text,
    listen_port         integer CHECK (listen_port BETWEEN 1 AND 65535),
    -- Non-secret settings: frame size, timeouts, retry policy, duplicate policy, charset fallback.
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    -- Secrets are sealed with an AEAD before they reach the database; key_id names the key so
    -- keys can rotate. Both or neither.
    auth_ciphertext     bytea,
    auth_key_id         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT interop_connectors_auth_sealed CHECK ((auth_ciphertext IS NULL) = (auth_key_id IS NULL)),
    CONSTRAINT interop_connectors_listener CHECK (
        protocol <> 'mllp' OR direction = 'outbound' OR status = 'draft' OR listen_port IS NOT NULL
    ),
    CONSTRAINT interop_connectors_tenant_name UNIQUE (tenant_id, name)
);

-- Domain invariant: one active connector per (tenant, facility, protocol, direction).
CREATE UNIQUE INDEX interop_connectors_one_active
    ON interop_connectors (tenant_id, facility_id, protocol, direction)
    WHERE status = 'active';

-- Two active listeners can never share a port on the gateway hosts.
CREATE UNIQUE INDEX interop_connectors_active_port
    ON interop_connectors (listen_port)
    WHERE status = 'active' AND listen_port IS NOT NULL;

-- A retired connector is final: it cannot come back to life.
CREATE FUNCTION interop_connectors_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'retired' AND NEW.status <> 'retired' THEN
        RAISE EXCEPTION 'connector % is retired', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.tenant_id <> OLD.tenant_id THEN
        RAISE EXCEPTION 'connector % cannot change tenant', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER interop_connectors_guard BEFORE UPDATE ON interop_connectors
    FOR EACH ROW EXECUTE FUNCTION interop_connectors_guard();
