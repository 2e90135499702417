-- FhirRoutingRule: (tenant, resourceType, category?) → owning service.
CREATE TABLE fhir_routing_rules (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    -- A FHIR resource type, or '*' for the tenant's default owner.
    resource_type   text NOT NULL CHECK (resource_type = '*' OR resource_type ~ '^[A-Z][A-Za-z]{1,63}$'),
    -- '' means the rule owns the whole type; otherwise it owns one category (split ownership).
    category        text NOT NULL DEFAULT '',
    -- Base URL of the owning FHIR service, or 'builtin' for the in-process FHIR store.
    owner_url       text NOT NULL CHECK (owner_url = 'builtin' OR owner_url ~ '^https?://'),
    enabled         boolean NOT NULL DEFAULT true,
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Domain invariant: one primary owner per (tenant, resourceType, category). Rules of one type
-- with different categories are the explicit fan-out for split ownership.
CREATE UNIQUE INDEX fhir_routing_rules_primary
    ON fhir_routing_rules (tenant_id, resource_type, category)
    WHERE enabled;

-- A type is either owned whole or split by category, never both: otherwise a search without a
-- category would be ambiguous.
CREATE FUNCTION fhir_routing_rules_unambiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.enabled AND EXISTS (
        SELECT 1 FROM fhir_routing_rules r
        WHERE r.tenant_id = NEW.tenant_id AND r.resource_type = NEW.resource_type
          AND r.enabled AND r.id <> NEW.id
          AND ((r.category = '') <> (NEW.category = ''))
    ) THEN
        RAISE EXCEPTION 'ambiguous routing for %: a type is owned whole or split by category, not both',
            NEW.resource_type USING ERRCODE = 'unique_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER fhir_routing_rules_unambiguous BEFORE INSERT OR UPDATE ON fhir_routing_rules
    FOR EACH ROW EXECUTE FUNCTION fhir_routing_rules_unambiguous();
