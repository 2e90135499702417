DROP TABLE IF EXISTS fhir_resource_history;
DROP TABLE IF EXISTS fhir_resources;
