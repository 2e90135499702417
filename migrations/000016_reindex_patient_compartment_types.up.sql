-- The built-in store now indexes RelatedPerson?patient=, Specimen?patient=/subject= and
-- Coverage?patient=/beneficiary= (and these types' other parameters). Rows stored before
-- have only their identifiers indexed: mark them for Store.Reindex, which serve and dev run
-- in the background at start. They stay findable by identifier meanwhile (their index rows
-- are replaced, not dropped, when reindexed).
UPDATE fhir_resources SET search_indexed = false
WHERE resource_type IN ('RelatedPerson', 'Specimen', 'Coverage') AND search_indexed;
