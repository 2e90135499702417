-- PostgreSQL cannot drop an enum value: rebuild the type without it. Unmapped messages go back
-- to 'processed', what the previous version recorded for them.
UPDATE hl7_messages SET status = 'processed' WHERE status = 'unmapped';
DROP INDEX hl7_messages_backlog;
ALTER TYPE hl7_message_status RENAME TO hl7_message_status_old;
CREATE TYPE hl7_message_status AS ENUM ('pending', 'processing', 'processed', 'failed', 'dead_lettered');
ALTER TABLE hl7_messages
    ALTER COLUMN status DROP DEFAULT,
    ALTER COLUMN status TYPE hl7_message_status USING status::text::hl7_message_status,
    ALTER COLUMN status SET DEFAULT 'pending';
DROP TYPE hl7_message_status_old;
CREATE INDEX hl7_messages_backlog ON hl7_messages (received_at) WHERE status IN ('pending', 'processing', 'failed');
