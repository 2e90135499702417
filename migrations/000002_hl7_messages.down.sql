DROP TABLE IF EXISTS hl7_resource_links;
DROP TABLE IF EXISTS hl7_processing_attempts;
DROP TYPE IF EXISTS hl7_attempt_status;
DROP TABLE IF EXISTS hl7_rejected_inputs;
DROP TABLE IF EXISTS hl7_messages;
DROP FUNCTION IF EXISTS hl7_messages_immutable();
DROP TYPE IF EXISTS hl7_message_direction;
DROP TYPE IF EXISTS hl7_message_status;
