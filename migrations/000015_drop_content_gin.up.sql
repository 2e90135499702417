-- The GIN index over whole resources served the first search implementation (jsonb
-- containment). Searches and conditional writes now use the extracted search tables
-- (000012), so it only cost every write an update of a large inverted index.
DROP INDEX IF EXISTS fhir_resources_content;
