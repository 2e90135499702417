package fhirapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"gocloud.dev/gcerrors"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/workflows"
)

// pollInterval is the Retry-After of a running export's status.
const pollInterval = 2 * time.Second

// jobOf reads the job named in the path, within the caller's tenant: another tenant's job is
// as absent as one that never existed. The caller's scopes must allow what the job's kick-off
// needed (exportScopeError): the tenant alone does not entitle a token to the manifest's
// signed URLs, or to cancel another client's export. A job whose recorded request cannot be
// read needs a scope reading every type.
func (x *exporter) jobOf(c echo.Context) (db.BulkExportJob, error) {
	id, err := uuid.Parse(c.Param("job"))
	if err != nil {
		return db.BulkExportJob{}, httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such export")
	}
	p := httpkit.Principal(c)
	job, err := db.New(x.d.Pool).BulkExportJobGet(c.Request().Context(), db.BulkExportJobGetParams{TenantID: p.Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return job, httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such export")
	}
	if err != nil {
		return job, err
	}
	var req export.Request
	if err := json.Unmarshal(job.Parameters, &req); err != nil {
		req = export.Request{Level: export.Level(job.Level)} // every type
	}
	if err := exportScopeError(p.Scopes, req); err != nil {
		x.d.Logger.Info("export: status or cancel refused for want of scopes", "job", job.ID,
			"subject", p.Subject, "requested_by", job.RequestedBy)
		return job, err
	}
	return job, nil
}

// status answers a poll: 202 with X-Progress while running, 200 with the manifest when
// done, the failure as an OperationOutcome, and 404 once cancelled or expired.
func (x *exporter) status(c echo.Context) error {
	job, err := x.jobOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := db.New(x.d.Pool)
	switch job.Status {
	case db.BulkExportStatusAccepted, db.BulkExportStatusInProgress:
		pr, err := q.BulkExportProgress(ctx, job.ID)
		if err != nil {
			return err
		}
		c.Response().Header().Set("X-Progress", export.ProgressText(int(pr.TasksDone), int(pr.Tasks), pr.Resources))
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(pollInterval/time.Second)))
		return c.NoContent(http.StatusAccepted)
	case db.BulkExportStatusCompleted:
		files, err := q.BulkExportFileList(ctx, job.ID)
		if err != nil {
			return err
		}
		expires := time.Now().Add(time.Hour)
		if job.ExpiresAt != nil {
			expires = *job.ExpiresAt
		}
		list := make([]export.File, 0, len(files))
		for _, f := range files {
			path := "/fhir" + exportFilePath + job.ID.String() + "/" + f.ID.String()
			list = append(list, export.File{
				Kind: f.Kind, Type: f.ResourceType, Count: f.Count,
				URL: x.base + export.SignFilePath(x.o.SigningKey, path, expires)[len("/fhir"):],
			})
		}
		m := export.BuildManifest(job.TransactionTime, job.RequestURL, false, list)
		c.Response().Header().Set("Expires", expires.UTC().Format(http.TimeFormat))
		c.Response().Header().Set(echo.HeaderContentType, "application/json")
		return c.JSON(http.StatusOK, m)
	case db.BulkExportStatusFailed:
		msg := job.Error
		if msg == "" {
			msg = "the export failed"
		}
		return httpkit.NewOutcome(http.StatusInternalServerError, fhir.IssueException, "export "+job.ID.String()+" failed: "+msg)
	case db.BulkExportStatusExpired:
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "export "+job.ID.String()+" has expired and its files are deleted; start a new export")
	default:
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "export "+job.ID.String()+" was cancelled")
	}
}

// cancel is DELETE on the status URL: the job is cancelled at once (every later poll is 404),
// then its workflow is told, which stops the tasks and deletes the files; after completion,
// the expiry workflow deletes them.
func (x *exporter) cancel(c echo.Context) error {
	job, err := x.jobOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	row, err := db.New(x.d.Pool).BulkExportJobCancel(ctx, db.BulkExportJobCancelParams{TenantID: job.TenantID, ID: job.ID})
	if errors.Is(err, db.ErrNotFound) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "export "+job.ID.String()+" is "+string(job.Status)+": nothing to cancel")
	}
	if err != nil {
		return err
	}
	wfID := row.WorkflowID
	if row.PreviousStatus == db.BulkExportStatusCompleted {
		wfID = workflows.BulkExportExpiryWorkflowID(job.ID)
	}
	if err := x.d.Temporal.CancelWorkflow(ctx, wfID, ""); err != nil {
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			// The job is cancelled for every client already; its files go at expiry at the latest.
			x.d.Logger.Warn("export: cancel workflow", "job", job.ID, "workflow_id", wfID, "error", err)
		}
	}
	return writeOutcome(c, http.StatusAccepted, fhir.SeverityInformation, fhir.IssueInformational, "export "+job.ID.String()+" cancelled")
}

// file serves one export file to whoever holds its signed URL, as long as the URL has not
// expired and the job is still completed.
func (x *exporter) file(c echo.Context) error {
	path := c.Request().URL.Path
	switch err := export.VerifyFilePath(x.o.SigningKey, path, c.QueryParams(), time.Now()); {
	case errors.Is(err, export.ErrURLExpired):
		return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "this file URL has expired; poll the export's status URL for fresh ones, or start a new export")
	case err != nil:
		return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "this file URL is not valid (its signature does not match)")
	}
	jobID, err1 := uuid.Parse(c.Param("job"))
	fileID, err2 := uuid.Parse(c.Param("file"))
	if err1 != nil || err2 != nil {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such export file")
	}
	ctx := c.Request().Context()
	f, err := db.New(x.d.Pool).BulkExportFileGet(ctx, db.BulkExportFileGetParams{JobID: jobID, ID: fileID})
	if errors.Is(err, db.ErrNotFound) || (err == nil && f.JobStatus != db.BulkExportStatusCompleted) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such export file: the export was cancelled or has expired")
	}
	if err != nil {
		return err
	}
	// The URL is the credential: the record names the export's requester and tenant.
	note := auditlog.Note(c)
	note.Tenant, note.Agent = f.TenantID, f.JobRequestedBy
	if f.JobLevel == db.BulkExportLevelGroup {
		note.Entities = append(note.Entities, "Group/"+f.JobGroupKey)
	}
	r, err := x.o.Bucket.NewReader(ctx, f.BlobKey, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such export file: it has been deleted")
	}
	if err != nil {
		return err
	}
	defer r.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, fhir.NDJSONMediaType)
	h.Set("Cache-Control", "private, no-store")
	http.ServeContent(c.Response(), c.Request(), "", f.CreatedAt, r)
	return nil
}
