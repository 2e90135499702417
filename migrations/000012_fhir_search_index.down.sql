DROP INDEX IF EXISTS fhir_resources_unindexed;
DROP INDEX IF EXISTS fhir_resources_sort_date;
ALTER TABLE fhir_resources DROP COLUMN IF EXISTS search_indexed, DROP COLUMN IF EXISTS sort_date;
DROP TABLE IF EXISTS fhir_search_dates;
DROP TABLE IF EXISTS fhir_search_refs;
DROP TABLE IF EXISTS fhir_search_tokens;
