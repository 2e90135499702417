ALTER TABLE hl7_processing_attempts DROP COLUMN mapping_notes;
