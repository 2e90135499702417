-- Search index of the built-in FHIR store: the values of each resource's search parameters,
-- extracted in Go and written in the same transaction as the resource, so that searches by
-- identifier, patient, code, date… are B-tree lookups instead of JSONB scans. Only current,
-- non-deleted versions are indexed.

-- Token parameters (identifier, code, category, status…): system is '' when the value has none.
CREATE TABLE fhir_search_tokens (
    tenant_id       text NOT NULL,
    resource_type   text NOT NULL,
    id              text NOT NULL,
    param           text NOT NULL,
    system          text NOT NULL,
    code            text NOT NULL
);
CREATE INDEX fhir_search_tokens_lookup ON fhir_search_tokens (tenant_id, resource_type, param, code, system);
CREATE INDEX fhir_search_tokens_resource ON fhir_search_tokens (tenant_id, resource_type, id);

-- Reference parameters (subject, patient…): the target as type and id; target_type is '' when
-- the reference names no type.
CREATE TABLE fhir_search_refs (
    tenant_id       text NOT NULL,
    resource_type   text NOT NULL,
    id              text NOT NULL,
    param           text NOT NULL,
    target_type     text NOT NULL,
    target_id       text NOT NULL
);
CREATE INDEX fhir_search_refs_lookup ON fhir_search_refs (tenant_id, resource_type, param, target_id, target_type);
CREATE INDEX fhir_search_refs_resource ON fhir_search_refs (tenant_id, resource_type, id);

-- Date parameters: the value as the half-open range [lo, hi) its precision spans; an open
-- Period end is 9999-12-31.
CREATE TABLE fhir_search_dates (
    tenant_id       text NOT NULL,
    resource_type   text NOT NULL,
    id              text NOT NULL,
    param           text NOT NULL,
    lo              timestamptz NOT NULL,
    hi              timestamptz NOT NULL,
    CHECK (lo <= hi)
);
CREATE INDEX fhir_search_dates_lookup ON fhir_search_dates (tenant_id, resource_type, param, lo, hi);
CREATE INDEX fhir_search_dates_resource ON fhir_search_dates (tenant_id, resource_type, id);

-- sort_date is the start of the resource's `date` parameter, for _sort=date; 0001-01-01 (the store's "no date") when it
-- has none. search_indexed is false for rows written before this migration, until
-- Store.Reindex has indexed them.
ALTER TABLE fhir_resources
    ADD COLUMN sort_date timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    ADD COLUMN search_indexed boolean NOT NULL DEFAULT false;
CREATE INDEX fhir_resources_sort_date ON fhir_resources (tenant_id, resource_type, sort_date, id);
CREATE INDEX fhir_resources_unindexed ON fhir_resources (tenant_id, resource_type, id) WHERE NOT search_indexed;

-- Identifiers of existing rows now, so that conditional writes keep finding them before
-- Reindex has run; Reindex indexes the other parameters.
INSERT INTO fhir_search_tokens (tenant_id, resource_type, id, param, system, code)
SELECT r.tenant_id, r.resource_type, r.id, 'identifier', coalesce(i ->> 'system', ''), i ->> 'value'
FROM fhir_resources r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.resource -> 'identifier') = 'array' THEN r.resource -> 'identifier' ELSE '[]'::jsonb END) i
WHERE NOT r.deleted AND jsonb_typeof(i -> 'value') = 'string';
