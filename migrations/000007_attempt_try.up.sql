-- A workflow run may now try the pipeline several times (the message is `failed` while the next
-- try waits); each try is its own Hl7ProcessingAttempt, idempotent per (run, try).
ALTER TABLE hl7_processing_attempts ADD COLUMN run_try integer NOT NULL DEFAULT 1 CHECK (run_try > 0);
ALTER TABLE hl7_processing_attempts DROP CONSTRAINT hl7_processing_attempts_run;
ALTER TABLE hl7_processing_attempts ADD CONSTRAINT hl7_processing_attempts_run UNIQUE (message_id, run_id, run_try);
