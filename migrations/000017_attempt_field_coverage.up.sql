-- The Map step's field accounting (mapping.Coverage): every populated component of the message
-- and whether the mapping read it, so support staff can see what of a message reached FHIR.
ALTER TABLE hl7_processing_attempts ADD COLUMN field_coverage jsonb;
