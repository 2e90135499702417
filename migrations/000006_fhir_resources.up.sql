-- The built-in FHIR store: current versions of resources, as JSONB, per tenant.
CREATE TABLE fhir_resources (
    tenant_id       text NOT NULL,
    resource_type   text NOT NULL,
    id              text NOT NULL CHECK (id ~ '^[A-Za-z0-9.-]{1,64}$'),
    version_id      bigint NOT NULL CHECK (version_id > 0),
    last_updated    timestamptz NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    resource        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, id)
);

-- Search by identifier (and other containment queries) without a scan.
CREATE INDEX fhir_resources_content ON fhir_resources USING gin (resource jsonb_path_ops);
CREATE INDEX fhir_resources_last_updated ON fhir_resources (tenant_id, resource_type, last_updated, id);

-- Every version ever stored, for vread and _history.
CREATE TABLE fhir_resource_history (
    tenant_id       text NOT NULL,
    resource_type   text NOT NULL,
    id              text NOT NULL,
    version_id      bigint NOT NULL,
    last_updated    timestamptz NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    -- The request that made this version: create, update or delete.
    method          text NOT NULL CHECK (method IN ('POST', 'PUT', 'DELETE')),
    resource        jsonb,
    PRIMARY KEY (tenant_id, resource_type, id, version_id)
);
