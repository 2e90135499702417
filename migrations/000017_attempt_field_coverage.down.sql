ALTER TABLE hl7_processing_attempts DROP COLUMN field_coverage;
