CREATE OR REPLACE FUNCTION fhir_routing_rules_unambiguous() RETURNS trigger LANGUAGE plpgsql AS $$
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

ALTER TABLE fhir_routing_rules DROP COLUMN IF EXISTS version;
