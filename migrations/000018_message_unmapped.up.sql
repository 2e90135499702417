-- 'unmapped': a message of a type the service has no mapping for (a query response, a financial
-- transaction, an ACK…). It is stored and processed, and nothing is written for it; support
-- staff find it by status and reprocess it once a mapping exists.
ALTER TYPE hl7_message_status ADD VALUE IF NOT EXISTS 'unmapped';
