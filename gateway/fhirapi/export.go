package fhirapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"gocloud.dev/blob"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
	"github.com/nhp/interop/workflows"
)

// ExportOptions configure FHIR Bulk Data $export.
type ExportOptions struct {
	// Bucket holds the export files the gateway serves; nil leaves $export unserved.
	Bucket *blob.Bucket
	// SigningKey signs the files' URLs (HMAC-SHA256); replicas must share it. Nil means a
	// random key per process, so a URL works only on the replica that issued it.
	SigningKey []byte
	// Retention is how long completed files are kept; 0 means 24h.
	Retention time.Duration
	// Parallelism bounds the resource types one export reads at once; 0 means the workflow's
	// default.
	Parallelism int
}

// exporter serves kick-off, status, cancellation and files of $export (Bulk Data Access IG
// v2.0.0). The work itself is the BulkExport workflow.
type exporter struct {
	d    Deps
	o    ExportOptions
	base string
}

// Paths of the status and file URLs under /fhir.
const (
	exportStatusPath = "/$export-status/"
	exportFilePath   = "/$export-file/"
)

func exportRoutes(f *echo.Group, h *API) {
	if h.d.Exports.Bucket == nil || h.d.Temporal == nil {
		return
	}
	x := &exporter{d: h.d, o: h.d.Exports, base: strings.TrimRight(h.d.BaseURL, "/") + "/fhir"}
	if len(x.o.SigningKey) == 0 {
		x.o.SigningKey = make([]byte, 32)
		_, _ = rand.Read(x.o.SigningKey)
		h.d.Logger.Warn("export file URLs are signed with a per-process key: a URL works only on the replica that issued it")
	}
	if x.o.Retention <= 0 {
		x.o.Retention = 24 * time.Hour
	}
	// Files are fetched with their signed URL alone (requiresAccessToken is false).
	f.GET(exportFilePath+":job/:file", x.file)
	authed := f.Group("", h.authenticate, httpkit.CheckText)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		authed.Add(m, "/$export", x.kickoff(export.LevelSystem))
		authed.Add(m, "/Patient/$export", x.kickoff(export.LevelPatient))
		authed.Add(m, "/Group/:id/$export", x.kickoff(export.LevelGroup))
	}
	authed.GET(exportStatusPath+":job", x.status)
	authed.DELETE(exportStatusPath+":job", x.cancel)
}

func (x *exporter) kickoff(level export.Level) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		p := httpkit.Principal(c)
		prefer := fhir.ParsePrefer(c.Request().Header.Values("Prefer"))
		if !prefer.RespondAsync {
			return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "a $export kick-off needs the header Prefer: respond-async (Bulk Data IG)")
		}
		groupID := c.Param("id")
		if level == export.LevelGroup && !fhir.ValidID(groupID) {
			return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "Group/"+groupID+" does not exist")
		}
		var body []byte
		if c.Request().Method == http.MethodPost {
			var err error
			if body, err = io.ReadAll(c.Request().Body); err != nil {
				return err
			}
		}
		query := c.QueryParams()
		query.Del("_format")
		query.Del("_pretty")
		req, err := export.ParseKickoff(export.KickoffInput{
			Method: c.Request().Method, Level: level, GroupID: groupID, Query: query, Body: body,
			Lenient: prefer.Lenient, KnownType: routing.IsResourceType, Now: time.Now(),
		})
		if err != nil {
			return kickoffError(err)
		}
		if err := x.checkRequest(ctx, p, &req); err != nil {
			return err
		}
		return x.start(c, p, req)
	}
}

// checkRequest refuses what the workflow would fail on, while the client still waits: types
// outside the Patient compartment at patient and group level, what the types' owners cannot
// be asked (checkOwners), scopes that do not allow reading every type, a Group that does not
// exist.
func (x *exporter) checkRequest(ctx context.Context, p auth.Principal, req *export.Request) error {
	if req.Level != export.LevelSystem {
		compartment := store.PatientCompartmentTypes()
		for _, t := range req.Types {
			if !slices.Contains(compartment, t) {
				return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueNotSupported,
					"_type "+t+" is not in the Patient compartment this server exports at patient and group level (supported: "+strings.Join(compartment, ", ")+")")

			}
		}
	}
	if err := x.checkOwners(ctx, p.Tenant, req); err != nil {
		return err
	}
	if err := exportScopeError(p.Scopes, *req); err != nil {
		return err
	}
	if req.Level == export.LevelGroup {
		g, err := x.d.Store.Read(ctx, p.Tenant, "Group", req.GroupID)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
			return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "Group/"+req.GroupID+" does not exist")
		} else if err != nil {
			return err
		}
		members, err := export.GroupPatients(g.Body)
		if err != nil {
			return httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueProcessing, "Group/"+req.GroupID+": "+err.Error())
		}
		for _, pid := range req.Patients {
			if !slices.Contains(members, pid) {
				return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "patient Patient/"+pid+" is not a member of Group/"+req.GroupID)
			}
		}
	}
	return nil
}

// exportScopeError is the 403 of scopes that do not read what req exports: every exported
// type (every type when _type was not given), and the Group of a group-level export. The
// kick-off needs them, and so do the job's status (its manifest holds the files' signed URLs)
// and its cancellation, whoever asks.
func exportScopeError(scopes auth.Scopes, req export.Request) error {
	if len(req.Types) == 0 {
		if !scopes.Allows("*", auth.Read) {
			return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "an export of every type needs a scope that reads every type (system/*.rs); name the types you may read with _type")
		}
	}
	for _, t := range req.Types {
		if !scopes.Allows(t, auth.Read) {
			return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "the token's scopes do not allow reading "+t)
		}
	}
	if req.Level == export.LevelGroup && !scopes.Allows("Group", auth.Read) {
		return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "the token's scopes do not allow reading Group")
	}
	return nil
}

// checkOwners refuses what reading the owners of the types cannot do. The built-in store runs
// _typeFilter queries itself, so they must be its searches; another service's search is read
// with the type's one query (export.CheckOwnerFilters), which that service checks. An export
// without _type lists the types the built-in store holds and the routing rules name, so types
// that fall to another service by default cannot be listed.
func (x *exporter) checkOwners(ctx context.Context, tenant string, req *export.Request) error {
	table, err := db.New(x.d.Pool).RoutingTable(ctx, tenant, x.d.DefaultOwner)
	if err != nil {
		return err
	}
	if len(req.Types) == 0 {
		if o := table.FallbackOwner(); o != "" && o != routing.Builtin {
			return httpkit.NewOutcome(http.StatusNotImplemented, fhir.IssueNotSupported,
				"this tenant's resource types default to another service, whose types an export cannot list; name the types with _type")

		}
	}
	for typ, filters := range req.TypeFilters {
		owners, err := table.Owners(typ)
		if err != nil {
			continue // no owner: nothing stored, an empty export of that type
		}
		for _, o := range owners {
			if o != routing.Builtin {
				if err := export.CheckOwnerFilters(typ, filters); err != nil {
					return kickoffError(err)
				}
				continue
			}
			for _, f := range filters {
				vals, err := url.ParseQuery(f)
				if err == nil {
					_, _, err = store.ParseQuery(typ, vals, false)
				}
				if err != nil {
					return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "_typeFilter "+typ+"?"+f+": "+err.Error())
				}
			}
		}
	}
	return nil
}

// start records the job and starts its workflow. The one-active-export invariant holds twice:
// the partial unique index refuses a second active row, and the workflow id of (tenant,
// group) refuses a second run.
func (x *exporter) start(c echo.Context, p auth.Principal, req export.Request) error {
	ctx := c.Request().Context()
	params, err := json.Marshal(req)
	if err != nil {
		return err
	}
	q := db.New(x.d.Pool)
	wfID := workflows.BulkExportWorkflowID(p.Tenant, req.GroupKey())
	job, err := q.BulkExportJobInsert(ctx, db.BulkExportJobInsertParams{
		TenantID: p.Tenant, Level: db.BulkExportLevel(req.Level), GroupKey: req.GroupKey(),
		RequestURL: x.base + strings.TrimPrefix(c.Request().URL.RequestURI(), "/fhir"), Parameters: params,
		TransactionTime: time.Now().UTC().Truncate(time.Millisecond), WorkflowID: wfID, RequestedBy: p.Subject,
	})
	if errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == "bulk_export_jobs_one_active" {
		return x.busy(c, p.Tenant, req.GroupKey())
	}
	if err != nil {
		return err
	}
	err = x.startWorkflow(ctx, wfID, workflows.BulkExportInput{JobID: job.ID, Retention: x.o.Retention, Parallelism: x.o.Parallelism})
	if err != nil {
		// Undo the row, so that the group is free again; the client may retry.
		if derr := q.BulkExportJobDelete(context.WithoutCancel(ctx), job.ID); derr != nil {
			x.d.Logger.Error("export: undo kick-off", "job", job.ID, "error", derr)
		}
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return x.busy(c, p.Tenant, req.GroupKey())
		}
		x.d.Logger.Error("export: start workflow", "job", job.ID, "error", err)
		c.Response().Header().Set("Retry-After", "30")
		return httpkit.NewOutcome(http.StatusServiceUnavailable, fhir.IssueTransient, "the export could not be started now; retry later")
	}
	c.Response().Header().Set("Content-Location", x.base+exportStatusPath+job.ID.String())
	return writeOutcome(c, http.StatusAccepted, fhir.SeverityInformation, fhir.IssueInformational,
		"export "+job.ID.String()+" accepted; poll its Content-Location for the manifest")
}

// startWorkflow starts the export's workflow under the group's id. The database has just
// admitted the job, so a run still holding the id is one that completed its job and is
// closing (it starts the expiry workflow last): wait a little for it, then start again,
// rather than answer 429 for an export the client has already downloaded. The SDK must
// report the running workflow as an error: by default it would return that run as if it were
// ours, and the new job would never start.
func (x *exporter) startWorkflow(ctx context.Context, wfID string, in workflows.BulkExportInput) error {
	opts := workflows.BulkExportStartOptions(wfID, x.d.TaskQueue)
	var err error
	for range 3 {
		if _, err = x.d.Temporal.ExecuteWorkflow(ctx, opts, workflows.BulkExportName, in); err == nil {
			return nil
		}
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &started) {
			return err
		}
		wait, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = x.d.Temporal.GetWorkflow(wait, wfID, "").Get(wait, nil)
		cancel()
	}
	return err
}

// busy is the 429 of a second export of a (tenant, group) while one is active.
func (x *exporter) busy(c echo.Context, tenant, groupKey string) error {
	c.Response().Header().Set("Retry-After", "60")
	msg := "an export of this group is already running; wait for it to finish, or cancel it"
	if job, err := db.New(x.d.Pool).BulkExportJobActive(c.Request().Context(), db.BulkExportJobActiveParams{TenantID: tenant, GroupKey: groupKey}); err == nil {
		msg += " (DELETE " + x.base + exportStatusPath + job.ID.String() + ")"
	}
	return httpkit.NewOutcome(http.StatusTooManyRequests, fhir.IssueThrottled, msg)
}

func kickoffError(err error) error {
	var pe *export.ParamError
	if errors.As(err, &pe) {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueType(pe.IssueCode()), pe.Error())
	}
	return err
}

// writeOutcome answers with an OperationOutcome that is not an error (202 of a kick-off).
func writeOutcome(c echo.Context, status int, severity fhir.IssueSeverity, code fhir.IssueType, msg string) error {
	c.Response().Header().Set(echo.HeaderContentType, fhir.MediaType+"; charset=utf-8")
	return c.JSON(status, fhir.NewOutcome(severity, code, msg))
}
