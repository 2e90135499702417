-- What the Map step noted without failing (ignored Z-segments, values kept as text, …), for
-- support staff reading a message's attempts.
ALTER TABLE hl7_processing_attempts ADD COLUMN mapping_notes text[] NOT NULL DEFAULT '{}';
