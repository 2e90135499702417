-- A version number for optimistic concurrency on the admin API (ETag / If-Match): every update
-- of a routing rule bumps it, so a client that read version N can only overwrite version N.
ALTER TABLE fhir_routing_rules ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version > 0);

-- The "owned whole or split by category, never both" check, made safe under concurrency: two
-- transactions adding a whole-type rule and a category rule of the same (tenant, type) at once
-- would each pass a plain EXISTS check. A transaction-scoped advisory lock on (tenant, type)
-- serialises them; the check after it runs on a fresh snapshot (the function is volatile), so
-- the second sees the first's committed row. The violation names itself (CONSTRAINT) so the
-- API can tell it from the unique index fhir_routing_rules_primary.
CREATE OR REPLACE FUNCTION fhir_routing_rules_unambiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.tenant_id <> OLD.tenant_id THEN
            RAISE EXCEPTION 'routing rule % cannot change tenant', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        NEW.version := OLD.version + 1;
    END IF;
    IF NEW.enabled THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('fhir_routing_rules:' || NEW.tenant_id || ':' || NEW.resource_type, 0));
        IF EXISTS (
            SELECT 1 FROM fhir_routing_rules r
            WHERE r.tenant_id = NEW.tenant_id AND r.resource_type = NEW.resource_type
              AND r.enabled AND r.id <> NEW.id
              AND ((r.category = '') <> (NEW.category = ''))
        ) THEN
            RAISE EXCEPTION 'ambiguous routing for %: a type is owned whole or split by category, not both',
                NEW.resource_type USING ERRCODE = 'unique_violation', CONSTRAINT = 'fhir_routing_rules_unambiguous';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
