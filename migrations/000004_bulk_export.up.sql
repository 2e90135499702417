-- BulkExportJob: the lifecycle of one FHIR Bulk Data $export request.
CREATE TYPE bulk_export_status AS ENUM ('accepted', 'in_progress', 'completed', 'failed', 'cancelled', 'expired');
CREATE TYPE bulk_export_level AS ENUM ('system', 'patient', 'group');

CREATE TABLE bulk_export_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           text NOT NULL,
    level               bulk_export_level NOT NULL,
    -- The (tenant, group) of the one-active-export invariant: '$system', '$patient' or the
    -- Group id, so system and patient level count as groups of their own.
    group_key           text NOT NULL,
    status              bulk_export_status NOT NULL DEFAULT 'accepted',
    request_url         text NOT NULL,
    parameters          jsonb NOT NULL DEFAULT '{}'::jsonb,
    transaction_time    timestamptz NOT NULL DEFAULT now(),
    workflow_id         text NOT NULL,
    progress            text NOT NULL DEFAULT '',
    error               text NOT NULL DEFAULT '',
    requested_by        text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    expires_at          timestamptz,
    CONSTRAINT bulk_export_jobs_group CHECK (
        (level = 'system' AND group_key = '$system')
        OR (level = 'patient' AND group_key = '$patient')
        OR (level = 'group' AND group_key NOT LIKE '$%')
    )
);

-- Domain invariant: one active export per (tenant, group).
CREATE UNIQUE INDEX bulk_export_jobs_one_active
    ON bulk_export_jobs (tenant_id, group_key)
    WHERE status IN ('accepted', 'in_progress');
CREATE INDEX bulk_export_jobs_tenant ON bulk_export_jobs (tenant_id, created_at DESC);

-- BulkExportFile: one NDJSON output (or error/deleted) file of a job.
CREATE TABLE bulk_export_files (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    job_id          uuid NOT NULL REFERENCES bulk_export_jobs (id) ON DELETE CASCADE,
    kind            text NOT NULL DEFAULT 'output' CHECK (kind IN ('output', 'error', 'deleted')),
    resource_type   text NOT NULL,
    blob_key        text NOT NULL,
    file_url        text NOT NULL DEFAULT '',
    count           bigint NOT NULL CHECK (count >= 0),
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bulk_export_files_blob UNIQUE (job_id, blob_key)
);

-- Domain invariant: output files are immutable after completion.
CREATE FUNCTION bulk_export_files_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'bulk export files are immutable' USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM bulk_export_jobs j WHERE j.id = NEW.job_id
               AND j.status NOT IN ('accepted', 'in_progress')) THEN
        RAISE EXCEPTION 'bulk export job % is finished: its files are immutable', NEW.job_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bulk_export_files_immutable BEFORE INSERT OR UPDATE ON bulk_export_files
    FOR EACH ROW EXECUTE FUNCTION bulk_export_files_immutable();
