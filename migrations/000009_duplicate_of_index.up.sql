-- Flagged duplicates are looked up by their original (ingest numbering, retention's guard).
CREATE INDEX hl7_messages_duplicate_of ON hl7_messages (duplicate_of) WHERE duplicate_of IS NOT NULL;
