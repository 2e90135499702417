-- Type- and system-level _history of the built-in FHIR store read the versions of a tenant
-- (of one type, or of all) newest first, from a keyset position: without these indexes each
-- page sorted every version of the type (or the tenant).
CREATE INDEX fhir_resource_history_type_time ON fhir_resource_history (tenant_id, resource_type, last_updated, id, version_id);
CREATE INDEX fhir_resource_history_time ON fhir_resource_history (tenant_id, last_updated, resource_type, id, version_id);
