ALTER TABLE hl7_rejected_inputs
    DROP CONSTRAINT hl7_rejected_inputs_sha256,
    DROP CONSTRAINT hl7_rejected_inputs_prefix,
    DROP COLUMN raw_sha256,
    DROP COLUMN size_bytes;
