package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/outbox"
)

type eventJSON struct {
	Cursor        string          `json:"cursor"`
	EventID       uuid.UUID       `json:"eventId"`
	Type          string          `json:"type"`
	AggregateType string          `json:"aggregateType"`
	AggregateID   string          `json:"aggregateId"`
	OccurredAt    time.Time       `json:"occurredAt"`
	Payload       json.RawMessage `json:"payload"`
}

// listEvents returns the caller's tenant's domain events after a cursor, in commit order.
func (h *handlers) listEvents(c echo.Context) error {
	cur, err := outbox.ParseCursor(c.QueryParam("after"))
	if err != nil {
		return newOutcome(http.StatusBadRequest, fhir.IssueValue, "after: not a cursor returned by this endpoint")
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return newOutcome(http.StatusBadRequest, fhir.IssueValue, "limit must be 1..1000")
		}
		limit = n
	}
	rows, err := db.New(h.d.Pool).DomainEventListAfter(c.Request().Context(), db.DomainEventListAfterParams{
		TenantID: principal(c).Tenant, AfterTxID: cur.TxID, AfterSeq: cur.Seq, MaxRows: int32(limit),
	})
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	out := struct {
		Events []eventJSON `json:"events"`
		Next   string      `json:"next"`
	}{Events: make([]eventJSON, 0, len(rows)), Next: c.QueryParam("after")}
	for _, r := range rows {
		cursor := outbox.Cursor{TxID: r.TxID, Seq: r.Seq}.String()
		out.Events = append(out.Events, eventJSON{
			Cursor: cursor, EventID: r.EventID, Type: r.EventType, AggregateType: r.AggregateType,
			AggregateID: r.AggregateID, OccurredAt: r.OccurredAt, Payload: r.Payload,
		})
		out.Next = cursor
	}
	return c.JSON(http.StatusOK, out)
}

// getMessage shows one message of the caller's tenant with its attempts and resource links.
func (h *handlers) getMessage(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return newOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	ctx := c.Request().Context()
	q := db.New(h.d.Pool)
	m, err := q.Hl7MessageGetForTenant(ctx, db.Hl7MessageGetForTenantParams{TenantID: principal(c).Tenant, ID: id})
	if errors.Is(db.Interpret(err), db.ErrNotFound) {
		return newOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	if err != nil {
		return fmt.Errorf("get message: %w", err)
	}
	attempts, err := q.Hl7ProcessingAttemptListByMessage(ctx, id)
	if err != nil {
		return fmt.Errorf("list attempts: %w", err)
	}
	links, err := q.Hl7ResourceLinkListByMessage(ctx, id)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	type attemptJSON struct {
		Number      int32      `json:"number"`
		Status      string     `json:"status"`
		WorkflowID  string     `json:"workflowId"`
		RunID       string     `json:"runId"`
		ErrorCode   string     `json:"errorCode,omitempty"`
		ErrorDetail string     `json:"errorDetail,omitempty"`
		AttemptAt   time.Time  `json:"attemptAt"`
		FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	}
	type linkJSON struct {
		ResourceType string `json:"resourceType"`
		ResourceID   string `json:"resourceId"`
		Action       string `json:"action"`
		Owner        string `json:"owner"`
	}
	out := map[string]any{
		"id": m.ID, "connectorId": m.ConnectorID, "status": m.Status,
		"messageControlId": m.MessageControlID, "sendingApplication": m.SendingApp, "sendingFacility": m.SendingFacility,
		"messageType": m.MessageCode + "^" + m.TriggerEvent, "version": m.Hl7Version,
		"sizeBytes": len(m.Raw), "ackCode": m.AckCode, "receivedAt": m.ReceivedAt,
		"lastErrorCode": m.LastErrorCode, "lastError": m.LastError, "workflowId": m.WorkflowID,
	}
	if h.d.TemporalUIURL != "" {
		out["temporalUrl"] = h.d.TemporalUIURL + "/namespaces/" + url.PathEscape(h.d.TemporalNamespace) + "/workflows/" + url.PathEscape(m.WorkflowID)
	}
	as := make([]attemptJSON, 0, len(attempts))
	for _, a := range attempts {
		as = append(as, attemptJSON{a.AttemptNumber, string(a.Status), a.WorkflowID, a.RunID, a.ErrorCode, a.ErrorDetail, a.AttemptAt, a.FinishedAt})
	}
	ls := make([]linkJSON, 0, len(links))
	for _, l := range links {
		ls = append(ls, linkJSON{l.ResourceType, l.ResourceID, l.Action, l.Owner})
	}
	out["attempts"], out["resourceLinks"] = as, ls
	return c.JSON(http.StatusOK, out)
}
