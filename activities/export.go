package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gocloud.dev/blob"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/internal/owner"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// Error types of the export activities that no retry can mend.
const (
	ErrTypeExportInactive = "BulkExportInactive" // cancelled (DELETE) or finished meanwhile
	ErrTypeExportInvalid  = "BulkExportInvalid"  // the request cannot be served (unknown Group…)
)

// Defaults of the export file split and paging.
const (
	DefaultExportFileMaxBytes = 256 << 20
	DefaultExportFileMaxCount = 100_000
	exportPageRows            = 1000
)

// ExportTask is one part of a BulkExportJob: one resource type read from one owner.
type ExportTask struct {
	Type  string `json:"type"`
	Owner string `json:"owner"`
}

// ExportPlan is what BulkExportPlan decided the job reads.
type ExportPlan struct {
	Tasks []ExportTask `json:"tasks"`
}

// ExportTaskInput names the job and the task of one BulkExportType run.
type ExportTaskInput struct {
	JobID uuid.UUID  `json:"jobId"`
	Task  ExportTask `json:"task"`
}

// ExportTaskResult counts what one task wrote.
type ExportTaskResult struct {
	Files     int   `json:"files"`
	Resources int64 `json:"resources"`
	Deleted   int64 `json:"deleted"`
}

// exportCursor is the heartbeat of BulkExportType: the files committed so far and where the
// next one starts. A retried run resumes from it; a file written after the last recorded
// heartbeat is written again under the same key with the same lines, so resuming never
// duplicates or skips a resource.
type exportCursor struct {
	Phase     string `json:"phase"` // "output", then "deleted"
	Part      int    `json:"part"`  // number of the next file of the phase
	After     string `json:"after"` // last id in a committed file of the phase
	Files     int    `json:"files"`
	Resources int64  `json:"resources"`
	Deleted   int64  `json:"deleted"`
	// Batch, Page and PageIDs place a task of an external owner (see exportOwner): the batch
	// of Patients being searched, the URL of the owner's page that holds the last committed
	// resource, and the ids of that page's resources committed so far. A resumed run fetches
	// Page again and skips PageIDs. Page is "" until a file is committed.
	Batch   int      `json:"batch,omitempty"`
	Page    string   `json:"page,omitempty"`
	PageIDs []string `json:"pageIds,omitempty"`
}

// loadExportJob reads the job and its request; a job that is no longer active is a
// non-retryable ErrTypeExportInactive, so the workflow stops at once after a DELETE.
func (a *Activities) loadExportJob(ctx context.Context, jobID uuid.UUID) (db.BulkExportJob, export.Request, error) {
	job, err := db.New(a.Pool).BulkExportJobGetByID(ctx, jobID)
	if errors.Is(err, db.ErrNotFound) {
		return job, export.Request{}, temporal.NewNonRetryableApplicationError("export job "+jobID.String()+" does not exist", ErrTypeExportInactive, err)
	}
	if err != nil {
		return job, export.Request{}, fmt.Errorf("read export job %s: %w", jobID, err)
	}
	if job.Status != db.BulkExportStatusAccepted && job.Status != db.BulkExportStatusInProgress {
		return job, export.Request{}, temporal.NewNonRetryableApplicationError("export job "+jobID.String()+" is "+string(job.Status), ErrTypeExportInactive, nil)
	}
	var req export.Request
	if err := json.Unmarshal(job.Parameters, &req); err != nil {
		return job, req, temporal.NewNonRetryableApplicationError("export job "+jobID.String()+": unreadable request", ErrTypeExportInvalid, err)
	}
	return job, req, nil
}

// BulkExportPlan starts the job (accepted → in_progress, BulkExportStarted once) and decides
// its tasks: every requested type (all the level covers when _type is absent) from each of
// its owners.
func (a *Activities) BulkExportPlan(ctx context.Context, jobID uuid.UUID) (ExportPlan, error) {
	job, req, err := a.loadExportJob(ctx, jobID)
	if err != nil {
		return ExportPlan{}, err
	}
	table, err := db.New(a.Pool).RoutingTable(ctx, job.TenantID, a.DefaultOwner)
	if err != nil {
		return ExportPlan{}, fmt.Errorf("export plan: %w", err)
	}
	if req.Level == export.LevelGroup {
		if _, err := a.groupMembers(ctx, job.TenantID, req.GroupID, job.TransactionTime); err != nil {
			return ExportPlan{}, err
		}
	}
	types := req.Types
	if len(types) == 0 {
		if o := table.FallbackOwner(); o != "" && o != routing.Builtin {
			return ExportPlan{}, temporal.NewNonRetryableApplicationError(
				"an export without _type cannot list the types of the service this tenant's unnamed types go to; name the types with _type", ErrTypeExportInvalid, nil)
		}
		if types, err = a.defaultExportTypes(ctx, job.TenantID, req.Level, table); err != nil {
			return ExportPlan{}, err
		}
	}
	var plan ExportPlan
	for _, typ := range types {
		owners, err := table.Owners(typ)
		if err != nil {
			return ExportPlan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRouting, err)
		}
		for _, o := range owners {
			if o != routing.Builtin {
				if err := export.CheckOwnerFilters(typ, req.TypeFilters[typ]); err != nil {
					return ExportPlan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeExportInvalid, err)
				}
			}
			plan.Tasks = append(plan.Tasks, ExportTask{Type: typ, Owner: o})
		}
	}
	err = db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		for _, t := range plan.Tasks {
			if err := q.BulkExportTaskInsert(ctx, db.BulkExportTaskInsertParams{JobID: jobID, ResourceType: t.Type, OwnerURL: t.Owner}); err != nil {
				return err
			}
		}
		if _, err := q.BulkExportJobStart(ctx, jobID); errors.Is(err, db.ErrNotFound) {
			return nil // started by an earlier try, which emitted the event
		} else if err != nil {
			return err
		}
		return outbox.Emit(ctx, q, job.TenantID, outbox.BulkExportStarted, jobID.String(), map[string]any{
			"jobId": jobID.String(), "groupId": job.GroupKey, "level": string(job.Level), "types": types,
		})
	})
	if err != nil {
		return ExportPlan{}, fmt.Errorf("start export job %s: %w", jobID, err)
	}
	return plan, nil
}

// defaultExportTypes is what an export without _type covers: at system level every type
// the tenant has in the built-in store and every type a rule gives another owner; at patient
// and group level the Patient compartment's types among those.
func (a *Activities) defaultExportTypes(ctx context.Context, tenant string, level export.Level, table routing.Table) ([]string, error) {
	stored, err := a.Store.ExportTypes(ctx, tenant)
	if err != nil {
		return nil, err
	}
	types := slices.Clone(stored)
	for _, r := range table.Rules {
		if r.ResourceType != "*" && r.OwnerURL != routing.Builtin && !slices.Contains(types, r.ResourceType) {
			types = append(types, r.ResourceType)
		}
	}
	if level != export.LevelSystem {
		compartment := store.PatientCompartmentTypes()
		types = slices.DeleteFunc(types, func(t string) bool { return !slices.Contains(compartment, t) })
	}
	slices.Sort(types)
	return types, nil
}

// groupMembers reads Group/id as it was at the export's transaction time and returns the ids
// of its Patient members. Every try of every task sees the same members, whatever happens to
// the Group meanwhile: a resumed task's Patient batches (see exportOwner) stay the same.
func (a *Activities) groupMembers(ctx context.Context, tenant, id string, transactionTime time.Time) ([]string, error) {
	var body []byte
	_, _, err := a.Store.ExportPage(ctx, store.ExportQuery{
		Tenant: tenant, Type: "Group", TransactionTime: transactionTime, Filters: []store.Query{{ID: id}}, Limit: 1,
	}, func(_ string, line []byte) error {
		body = slices.Clone(line)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read Group/%s: %w", id, err)
	}
	if body == nil {
		return nil, temporal.NewNonRetryableApplicationError("Group/"+id+" does not exist", ErrTypeExportInvalid, nil)
	}
	members, err := export.GroupPatients(body)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("Group/"+id+": "+err.Error(), ErrTypeExportInvalid, err)
	}
	return members, nil
}

// exportScope is the part of the Patient compartment a task of a patient- or group-level
// export covers.
type exportScope struct {
	compartment bool
	// everyPatient: every Patient's compartment (patient level without `patient`); otherwise
	// the compartments of patients only (none, for a Group without matching members).
	everyPatient bool
	patients     []string
}

// BulkExportType writes one task's NDJSON files, resuming from its last heartbeat: from the
// built-in store, or from an external owner's FHIR search (exportOwner).
func (a *Activities) BulkExportType(ctx context.Context, in ExportTaskInput) (ExportTaskResult, error) {
	job, req, err := a.loadExportJob(ctx, in.JobID)
	if err != nil {
		return ExportTaskResult{}, err
	}
	if a.Exports == nil {
		return ExportTaskResult{}, temporal.NewNonRetryableApplicationError("no export bucket is configured", ErrTypeExportInvalid, nil)
	}
	var scope exportScope
	switch req.Level {
	case export.LevelPatient:
		scope = exportScope{compartment: true, everyPatient: len(req.Patients) == 0, patients: req.Patients}
	case export.LevelGroup:
		members, err := a.groupMembers(ctx, job.TenantID, req.GroupID, job.TransactionTime)
		if err != nil {
			return ExportTaskResult{}, err
		}
		if len(req.Patients) > 0 {
			members = slices.DeleteFunc(members, func(m string) bool { return !slices.Contains(req.Patients, m) })
		}
		scope = exportScope{compartment: true, patients: members}
	}

	cur := exportCursor{Phase: "output"}
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &cur); err != nil {
			a.logger().Warn("export: unreadable heartbeat, starting the task over", "job", in.JobID, "type", in.Task.Type, "error", err)
			cur = exportCursor{Phase: "output"}
		}
	}
	fw := a.newFileWriter(job, &cur, in.Task.Type, ownerFileTag(in.Task.Owner))
	defer fw.discard()
	// The built-in store reads the snapshot at the transaction time, deletions included;
	// any other owner is read through its FHIR search, which cannot ask for an instant.
	o := a.owner(job.TenantID, in.Task.Owner)
	if snap, ok := o.(owner.SnapshotReader); ok {
		err = a.exportSnapshot(ctx, job, req, in.Task.Type, snap, scope, fw)
	} else {
		err = a.exportOwner(ctx, job, req, in.Task, o, scope, fw)
	}
	if err != nil {
		return ExportTaskResult{}, err
	}
	if err := db.New(a.Pool).BulkExportTaskDone(ctx, db.BulkExportTaskDoneParams{
		JobID: in.JobID, ResourceType: in.Task.Type, OwnerURL: in.Task.Owner, Resources: cur.Resources,
	}); err != nil {
		return ExportTaskResult{}, fmt.Errorf("export %s: mark done: %w", in.Task.Type, err)
	}
	return ExportTaskResult{Files: cur.Files, Resources: cur.Resources, Deleted: cur.Deleted}, nil
}

// exportSnapshot writes typ's resources from an owner that keeps every version (the built-in
// store) as they were at the transaction time, then, for a system-level export with _since,
// the ids deleted since.
func (a *Activities) exportSnapshot(ctx context.Context, job db.BulkExportJob, req export.Request, typ string, snap owner.SnapshotReader, scope exportScope, fw *fileWriter) error {
	q := store.ExportQuery{Tenant: job.TenantID, Type: typ, TransactionTime: job.TransactionTime, Since: req.Since}
	if scope.compartment {
		q.Compartment = true
		if !scope.everyPatient {
			q.Patients = scope.patients
			if len(q.Patients) == 0 {
				q.Patients = []string{""} // a Group without (matching) Patients exports nothing
			}
		}
	}
	for _, f := range req.TypeFilters[typ] {
		vals, err := url.ParseQuery(f)
		if err != nil {
			return temporal.NewNonRetryableApplicationError("_typeFilter "+typ+"?"+f+": "+err.Error(), ErrTypeExportInvalid, err)
		}
		fq, _, err := store.ParseQuery(typ, vals, false)
		if err != nil {
			return temporal.NewNonRetryableApplicationError("_typeFilter "+typ+"?"+f+": "+err.Error(), ErrTypeExportInvalid, err)
		}
		q.Filters = append(q.Filters, fq)
	}
	cur := fw.cur
	if cur.Phase == "output" {
		if err := a.exportOutput(ctx, snap, q, fw); err != nil {
			return err
		}
		cur.Phase, cur.Part, cur.After = "deleted", 0, ""
		activity.RecordHeartbeat(ctx, *cur)
	}
	if !req.Since.IsZero() && !q.Compartment {
		if err := a.exportDeleted(ctx, snap, q, fw); err != nil {
			return err
		}
	}
	return nil
}

func (a *Activities) exportOutput(ctx context.Context, snap owner.SnapshotReader, q store.ExportQuery, fw *fileWriter) error {
	return a.exportPages(ctx, q, fw, "output", func(q store.ExportQuery) (int, error) {
		n, _, err := snap.ExportPage(ctx, q, func(id string, line []byte) error {
			return fw.write(ctx, id, line)
		})
		return n, err
	})
}

func (a *Activities) exportDeleted(ctx context.Context, snap owner.SnapshotReader, q store.ExportQuery, fw *fileWriter) error {
	return a.exportPages(ctx, q, fw, "deleted", func(q store.ExportQuery) (int, error) {
		ids, err := snap.ExportDeletedPage(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, id := range ids {
			line, err := export.DeletedEntry(q.Type, id)
			if err != nil {
				return 0, err
			}
			if err := fw.write(ctx, id, line); err != nil {
				return 0, err
			}
		}
		return len(ids), nil
	})
}

// exportPages runs page over q from the writer's position (after its open file's last line,
// else after its last committed file) until a short page, heartbeating the committed cursor
// after each, then commits the last file.
func (a *Activities) exportPages(ctx context.Context, q store.ExportQuery, fw *fileWriter, kind string, page func(store.ExportQuery) (int, error)) error {
	fw.kind = kind
	for {
		q.After, q.Limit = fw.cur.After, exportPageRows
		if fw.open() {
			q.After = fw.lastID
		}
		n, err := page(q)
		if err != nil {
			return a.exportError(ctx, q.Type, err)
		}
		activity.RecordHeartbeat(ctx, *fw.cur)
		if n < q.Limit {
			return a.exportError(ctx, q.Type, fw.commit(ctx))
		}
	}
}

// exportError classifies a failure of an export task: a finished job (its files are
// immutable: the database refuses new ones) stops the retries; anything else is retried.
func (a *Activities) exportError(ctx context.Context, typ string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	if errors.Is(err, store.ErrInvalidSearch) || errors.Is(err, store.ErrNotInCompartment) {
		return temporal.NewNonRetryableApplicationError("export "+typ+": "+err.Error(), ErrTypeExportInvalid, err)
	}
	if errors.Is(err, db.ErrCheckViolation) { // the only one a file insert can meet: bulk_export_files_immutable
		return temporal.NewNonRetryableApplicationError("export "+typ+": the job was cancelled", ErrTypeExportInactive, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("export %s: %w", typ, err)
}

// ExportCompleteInput closes a job.
type ExportCompleteInput struct {
	JobID     uuid.UUID     `json:"jobId"`
	Retention time.Duration `json:"retention"`
}

// ExportCompleteResult is when the completed job's files expire.
type ExportCompleteResult struct {
	ExpiresAt time.Time `json:"expiresAt"`
	Files     int       `json:"files"`
}

// BulkExportComplete writes the error file of a lenient request's ignored parameters, then
// marks the job completed (its files immutable from then on) and emits BulkExportCompleted.
func (a *Activities) BulkExportComplete(ctx context.Context, in ExportCompleteInput) (ExportCompleteResult, error) {
	job, req, err := a.loadExportJob(ctx, in.JobID)
	if err != nil {
		return ExportCompleteResult{}, err
	}
	if len(req.Ignored) > 0 {
		cur := exportCursor{}
		fw := a.newFileWriter(job, &cur, "OperationOutcome", "")
		fw.kind = "error"
		lines, err := export.IgnoredOutcomes(req.Ignored)
		if err != nil {
			return ExportCompleteResult{}, err
		}
		for _, line := range lines {
			if err := fw.write(ctx, "", line); err != nil {
				return ExportCompleteResult{}, a.exportError(ctx, "OperationOutcome", err)
			}
		}
		if err := fw.commit(ctx); err != nil {
			return ExportCompleteResult{}, a.exportError(ctx, "OperationOutcome", err)
		}
	}
	var res ExportCompleteResult
	err = db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		files, err := q.BulkExportFileList(ctx, in.JobID)
		if err != nil {
			return err
		}
		res.Files = len(files)
		var total int64
		for _, f := range files {
			if f.Kind == "output" {
				total += f.Count
			}
		}
		done, err := q.BulkExportJobComplete(ctx, db.BulkExportJobCompleteParams{
			ID: in.JobID, ExpiresAt: ptr(time.Now().Add(in.Retention).UTC()),
			Progress: fmt.Sprintf("completed: %d resources in %d files", total, len(files)),
		})
		if err != nil {
			return err
		}
		res.ExpiresAt = *done.ExpiresAt
		return outbox.Emit(ctx, q, job.TenantID, outbox.BulkExportCompleted, in.JobID.String(), map[string]any{
			"jobId": in.JobID.String(), "fileCount": len(files), "resourceCount": total,
		})
	})
	if errors.Is(err, db.ErrNotFound) {
		return res, temporal.NewNonRetryableApplicationError("export job "+in.JobID.String()+" was cancelled", ErrTypeExportInactive, err)
	}
	if err != nil {
		return res, fmt.Errorf("complete export job %s: %w", in.JobID, err)
	}
	a.countExportJob(job.TenantID, "completed")
	return res, nil
}

// ExportFailInput records why a job failed.
type ExportFailInput struct {
	JobID   uuid.UUID `json:"jobId"`
	Message string    `json:"message"`
}

// BulkExportFail marks the job failed with a message for the status URL's OperationOutcome,
// and deletes what it had written.
func (a *Activities) BulkExportFail(ctx context.Context, in ExportFailInput) error {
	job, err := db.New(a.Pool).BulkExportJobFail(ctx, db.BulkExportJobFailParams{ID: in.JobID, Error: in.Message})
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("fail export job %s: %w", in.JobID, err)
	}
	if err == nil {
		a.countExportJob(job.TenantID, "failed")
		a.logger().Warn("export failed", "job", in.JobID, "tenant", job.TenantID, "reason", in.Message)
	}
	return a.deleteExportFiles(ctx, in.JobID)
}

// ExportCleanupInput ends a job's files: at expiry, or after a DELETE.
type ExportCleanupInput struct {
	JobID uuid.UUID `json:"jobId"`
	// Expire marks a completed job expired; otherwise the job was cancelled (already marked).
	Expire bool `json:"expire"`
}

// BulkExportCleanup deletes every file of the job from the bucket and the database.
func (a *Activities) BulkExportCleanup(ctx context.Context, in ExportCleanupInput) error {
	if in.Expire {
		if _, err := db.New(a.Pool).BulkExportJobExpire(ctx, in.JobID); err != nil && !errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("expire export job %s: %w", in.JobID, err)
		}
	}
	return a.deleteExportFiles(ctx, in.JobID)
}

func (a *Activities) deleteExportFiles(ctx context.Context, jobID uuid.UUID) error {
	if a.Exports != nil {
		prefix := jobID.String() + "/"
		it := a.Exports.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("list export files of %s: %w", jobID, err)
			}
			if err := a.Exports.Delete(ctx, obj.Key); err != nil && !isBlobNotFound(err) {
				return fmt.Errorf("delete export file %s: %w", obj.Key, err)
			}
		}
	}
	if err := db.New(a.Pool).BulkExportFileDeleteAll(ctx, jobID); err != nil {
		return fmt.Errorf("delete export file rows of %s: %w", jobID, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
