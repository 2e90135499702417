-- Rejected input keeps a bounded prefix of what arrived (gateway/inbound: 64 KiB by default),
-- with the number of bytes received and the SHA-256 of all of them, so that a sender of
-- oversize or garbage frames cannot fill the disk with "audit" bytes.
ALTER TABLE hl7_rejected_inputs
    ADD COLUMN size_bytes bigint,
    ADD COLUMN raw_sha256 bytea;

UPDATE hl7_rejected_inputs SET size_bytes = octet_length(raw), raw_sha256 = sha256(raw);

ALTER TABLE hl7_rejected_inputs
    ALTER COLUMN size_bytes SET NOT NULL,
    ALTER COLUMN raw_sha256 SET NOT NULL,
    ADD CONSTRAINT hl7_rejected_inputs_prefix CHECK (octet_length(raw) <= size_bytes),
    ADD CONSTRAINT hl7_rejected_inputs_sha256 CHECK (octet_length(raw_sha256) = 32);
