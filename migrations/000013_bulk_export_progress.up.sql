-- The work plan of a BulkExportJob: one row per (resource type, owner) the export reads, set
-- done when that part has written its last file. It drives X-Progress and tells support staff
-- which part of a slow export is still running.
CREATE TABLE bulk_export_tasks (
    job_id          uuid NOT NULL REFERENCES bulk_export_jobs (id) ON DELETE CASCADE,
    resource_type   text NOT NULL,
    owner_url       text NOT NULL,
    done            boolean NOT NULL DEFAULT false,
    resources       bigint NOT NULL DEFAULT 0 CHECK (resources >= 0),
    PRIMARY KEY (job_id, resource_type, owner_url)
);
