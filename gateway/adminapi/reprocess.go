package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/workflows"
)

// maxReprocessBatch bounds one reprocess-by-filter call, so one click cannot flood Temporal.
const maxReprocessBatch = 1000

// reprocessable is the set of statuses a reprocess may start from without force: the message
// has no live run and did not succeed, or its type had no mapping (reprocessed once one exists).
var reprocessable = map[db.Hl7MessageStatus]bool{
	db.Hl7MessageStatusFailed: true, db.Hl7MessageStatusDeadLettered: true, db.Hl7MessageStatusPending: true,
	db.Hl7MessageStatusUnmapped: true,
}

type reprocessResult struct {
	MessageID   uuid.UUID `json:"messageId"`
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId,omitempty"`
	ReprocessOf string    `json:"reprocessOf,omitempty"`
	TemporalURL string    `json:"temporalUrl,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// reprocessMessage starts a new InboundHL7 run for one stored message (same workflow id, new
// run, linked to the previous run). ?force=true also re-runs a processed message, which is
// safe because every write is conditional.
func (h *API) reprocessMessage(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	ctx := c.Request().Context()
	m, err := db.New(h.d.Pool).Hl7MessageGetForTenant(ctx, db.Hl7MessageGetForTenantParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	if err != nil {
		return fmt.Errorf("get message: %w", err)
	}
	if !reprocessable[m.Status] && !(m.Status == db.Hl7MessageStatusProcessed && c.QueryParam("force") == "true") {
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, fmt.Sprintf("message is %s; only failed, dead_lettered, unmapped or pending messages are reprocessed (processed ones with ?force=true)", m.Status))
	}
	res, err := h.startReprocess(ctx, m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, res)
}

// reprocessMessages reprocesses every failed, dead-lettered, unmapped or pending message matching a filter
// (JSON body: status, messageType, connectorId, controlId, receivedFrom, receivedTo, limit).
func (h *API) reprocessMessages(c echo.Context) error {
	var body struct {
		messageFilter
		Limit int `json:"limit"`
	}
	if err := c.Bind(&body); err != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "body must be a JSON filter")
	}
	if body.Status == "" {
		body.Status = string(db.Hl7MessageStatusDeadLettered)
	}
	if !reprocessable[db.Hl7MessageStatus(body.Status)] {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "status must be failed, dead_lettered, unmapped or pending")
	}
	limit := maxReprocessBatch // when the body names none (0)
	switch {
	case body.Limit < 0 || body.Limit > maxReprocessBatch:
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, fmt.Sprintf("limit must be 1..%d", maxReprocessBatch))
	case body.Limit > 0:
		limit = body.Limit
	}
	tenant := httpkit.Principal(c).Tenant
	params, err := body.params(tenant)
	if err != nil {
		return err
	}
	params.MaxRows = int32(limit)
	ctx := c.Request().Context()
	q := db.New(h.d.Pool)
	rows, err := q.Hl7MessageList(ctx, params)
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	out := struct {
		Matched int               `json:"matched"`
		Started int               `json:"started"`
		Results []reprocessResult `json:"results"`
	}{Matched: len(rows), Results: make([]reprocessResult, 0, len(rows))}
	for _, r := range rows {
		m, err := q.Hl7MessageGetForTenant(ctx, db.Hl7MessageGetForTenantParams{TenantID: tenant, ID: r.ID})
		if err != nil {
			return fmt.Errorf("get message: %w", err)
		}
		res, err := h.startReprocess(ctx, m)
		if err != nil {
			var oe *httpkit.OutcomeError
			if !errors.As(err, &oe) {
				return err
			}
			res.Error = oe.Message
		} else {
			out.Started++
		}
		out.Results = append(out.Results, res)
	}
	return c.JSON(http.StatusAccepted, out)
}

func (h *API) startReprocess(ctx context.Context, m db.Hl7Message) (reprocessResult, error) {
	res := reprocessResult{MessageID: m.ID, WorkflowID: m.WorkflowID}
	if h.d.Temporal == nil {
		return res, httpkit.NewOutcome(http.StatusServiceUnavailable, fhir.IssueTransient, "workflow engine not configured")
	}
	attempts, err := db.New(h.d.Pool).Hl7ProcessingAttemptListByMessage(ctx, m.ID)
	if err != nil {
		return res, fmt.Errorf("list attempts: %w", err)
	}
	if n := len(attempts); n > 0 {
		res.ReprocessOf = attempts[n-1].RunID
	}
	// A new run of the same id: the history of earlier runs stays visible beside it.
	in := workflows.InboundHL7Input{
		MessageID: m.ID, TenantID: m.TenantID, ConnectorID: m.ConnectorID,
		MessageType: workflows.MessageType(m.MessageCode, m.TriggerEvent), ReprocessOf: res.ReprocessOf,
	}
	run, err := h.d.Temporal.ExecuteWorkflow(ctx, workflows.InboundHL7ReprocessOptions(m.WorkflowID, h.d.TaskQueue, in), workflows.InboundHL7Name, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return res, httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, "a run of this message is in progress")
	}
	if err != nil {
		return res, httpkit.NewOutcome(http.StatusBadGateway, fhir.IssueTransient, "could not start the reprocessing run; try again")
	}
	res.RunID = run.GetRunID()
	if h.d.TemporalUIURL != "" {
		res.TemporalURL = h.d.TemporalUIURL + "/namespaces/" + url.PathEscape(h.d.TemporalNamespace) + "/workflows/" + url.PathEscape(m.WorkflowID) + "/" + url.PathEscape(res.RunID)
	}
	return res, nil
}
