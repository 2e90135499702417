DROP INDEX IF EXISTS fhir_resource_history_time;
DROP INDEX IF EXISTS fhir_resource_history_type_time;
