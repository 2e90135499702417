-- name: BulkExportJobInsert :one
-- Kick-off. The partial unique index bulk_export_jobs_one_active refuses a second active job
-- for the same (tenant, group).
INSERT INTO bulk_export_jobs (tenant_id, level, group_key, request_url, parameters, transaction_time, workflow_id, requested_by)
VALUES (@tenant_id, @level, @group_key, @request_url, @parameters, @transaction_time, @workflow_id, @requested_by)
RETURNING *;

-- name: BulkExportJobGet :one
SELECT * FROM bulk_export_jobs WHERE tenant_id = @tenant_id AND id = @id;

-- name: BulkExportJobGetByID :one
-- For the worker, which is given a job id and finds its tenant from it.
SELECT * FROM bulk_export_jobs WHERE id = @id;

-- name: BulkExportJobActive :one
SELECT * FROM bulk_export_jobs
WHERE tenant_id = @tenant_id AND group_key = @group_key AND status IN ('accepted', 'in_progress');

-- name: BulkExportJobDelete :exec
-- Undoes a kick-off whose workflow could not be started.
DELETE FROM bulk_export_jobs WHERE id = @id AND status = 'accepted';

-- name: BulkExportJobStart :one
-- accepted → in_progress; the caller emits BulkExportStarted when a row comes back (once).
UPDATE bulk_export_jobs SET status = 'in_progress'
WHERE id = @id AND status = 'accepted'
RETURNING *;

-- name: BulkExportJobComplete :one
-- in_progress → completed; the caller emits BulkExportCompleted when a row comes back (once).
UPDATE bulk_export_jobs SET status = 'completed', completed_at = now(), expires_at = @expires_at, progress = @progress
WHERE id = @id AND status = 'in_progress'
RETURNING *;

-- name: BulkExportJobFail :one
UPDATE bulk_export_jobs SET status = 'failed', completed_at = now(), error = @error
WHERE id = @id AND status IN ('accepted', 'in_progress')
RETURNING *;

-- name: BulkExportJobCancel :one
-- DELETE on the status URL: an active or completed job becomes cancelled at once, so every
-- later poll answers 404 whatever the workflow is still doing. Returns the status it had.
UPDATE bulk_export_jobs j SET status = 'cancelled', completed_at = coalesce(j.completed_at, now())
FROM (SELECT b.id, b.status FROM bulk_export_jobs b WHERE b.tenant_id = @tenant_id AND b.id = @id FOR UPDATE) old
WHERE j.id = old.id AND old.status IN ('accepted', 'in_progress', 'completed')
RETURNING old.status AS previous_status, j.workflow_id;

-- name: BulkExportJobExpire :one
UPDATE bulk_export_jobs SET status = 'expired'
WHERE id = @id AND status = 'completed'
RETURNING *;

-- name: BulkExportFileInsert :one
INSERT INTO bulk_export_files (tenant_id, job_id, kind, resource_type, blob_key, count, size_bytes)
VALUES (@tenant_id, @job_id, @kind, @resource_type, @blob_key, @count, @size_bytes)
ON CONFLICT (job_id, blob_key) DO NOTHING
RETURNING *;

-- name: BulkExportFileList :many
SELECT * FROM bulk_export_files WHERE job_id = @job_id ORDER BY kind DESC, resource_type, blob_key;

-- name: BulkExportFileGet :one
SELECT f.*, j.status AS job_status, j.expires_at AS job_expires_at, j.requested_by AS job_requested_by,
       j.level AS job_level, j.group_key AS job_group_key
FROM bulk_export_files f JOIN bulk_export_jobs j ON j.id = f.job_id
WHERE f.job_id = @job_id AND f.id = @id;

-- name: BulkExportFileDeleteAll :exec
DELETE FROM bulk_export_files WHERE job_id = @job_id;

-- name: BulkExportTaskInsert :exec
INSERT INTO bulk_export_tasks (job_id, resource_type, owner_url)
VALUES (@job_id, @resource_type, @owner_url)
ON CONFLICT DO NOTHING;

-- name: BulkExportTaskDone :exec
UPDATE bulk_export_tasks SET done = true, resources = @resources
WHERE job_id = @job_id AND resource_type = @resource_type AND owner_url = @owner_url;

-- name: BulkExportProgress :one
-- What a status poll reports while the job runs.
SELECT
    (SELECT count(*) FROM bulk_export_tasks t WHERE t.job_id = @job_id)::bigint AS tasks,
    (SELECT count(*) FROM bulk_export_tasks t WHERE t.job_id = @job_id AND t.done)::bigint AS tasks_done,
    (SELECT coalesce(sum(f.count), 0) FROM bulk_export_files f WHERE f.job_id = @job_id AND f.kind = 'output')::bigint AS resources;
