-- Later tries of a run cannot be represented without run_try: they are dropped.
DELETE FROM hl7_processing_attempts WHERE run_try > 1;
ALTER TABLE hl7_processing_attempts DROP CONSTRAINT hl7_processing_attempts_run;
ALTER TABLE hl7_processing_attempts ADD CONSTRAINT hl7_processing_attempts_run UNIQUE (message_id, run_id);
ALTER TABLE hl7_processing_attempts DROP COLUMN run_try;
