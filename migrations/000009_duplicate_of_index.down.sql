DROP INDEX IF EXISTS hl7_messages_duplicate_of;
