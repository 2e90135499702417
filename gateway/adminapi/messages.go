package adminapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/workflows"
)

// messageRoutes serves /admin/messages: support staff's view of the inbound message log.
func messageRoutes(admin *echo.Group, h *API) {
	admin.GET("/messages", h.listMessages)
	admin.GET("/backlog", h.getBacklog)
	admin.POST("/messages/reprocess", h.reprocessMessages)
	admin.GET("/messages/:id", h.getMessage)
	admin.GET("/messages/:id/raw", h.getMessageRaw)
	admin.POST("/messages/:id/reprocess", h.reprocessMessage)
}

// messageFilter is the filter of the list and of reprocess-by-filter.
type messageFilter struct {
	Status       string     `json:"status,omitempty"`
	MessageType  string     `json:"messageType,omitempty"` // "ADT" or "ADT^A01"
	ConnectorID  string     `json:"connectorId,omitempty"`
	ControlID    string     `json:"controlId,omitempty"`
	ReceivedFrom *time.Time `json:"receivedFrom,omitempty"`
	ReceivedTo   *time.Time `json:"receivedTo,omitempty"`
}

func (f messageFilter) params(tenant string) (db.Hl7MessageListParams, error) {
	p := db.Hl7MessageListParams{TenantID: tenant, ControlID: nonEmpty(f.ControlID), ReceivedFrom: f.ReceivedFrom, ReceivedTo: f.ReceivedTo}
	if f.Status != "" {
		st := db.Hl7MessageStatus(f.Status)
		if !st.Valid() {
			return p, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, fmt.Sprintf("status %q: want one of %v", f.Status, db.AllHl7MessageStatusValues()))
		}
		p.Status = &st
	}
	if f.MessageType != "" {
		code, trigger, _ := strings.Cut(f.MessageType, "^")
		p.MessageCode, p.TriggerEvent = nonEmpty(code), nonEmpty(trigger)
	}
	if f.ConnectorID != "" {
		id, err := uuid.Parse(f.ConnectorID)
		if err != nil {
			return p, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "connectorId is not a UUID")
		}
		p.ConnectorID = &id
	}
	return p, nil
}

type messageSummary struct {
	ID                 uuid.UUID  `json:"id"`
	ConnectorID        uuid.UUID  `json:"connectorId"`
	Status             string     `json:"status"`
	MessageControlID   string     `json:"messageControlId"`
	SendingApplication string     `json:"sendingApplication"`
	SendingFacility    string     `json:"sendingFacility"`
	MessageType        string     `json:"messageType"`
	Version            string     `json:"version"`
	SizeBytes          int32      `json:"sizeBytes"`
	AckCode            string     `json:"ackCode"`
	LastErrorCode      string     `json:"lastErrorCode,omitempty"`
	LastError          string     `json:"lastError,omitempty"`
	WorkflowID         string     `json:"workflowId"`
	DuplicateOf        *uuid.UUID `json:"duplicateOf,omitempty"`
	ReceivedAt         time.Time  `json:"receivedAt"`
	StatusChangedAt    time.Time  `json:"statusChangedAt"`
	ProcessedAt        *time.Time `json:"processedAt,omitempty"`
}

// listMessages lists the tenant's messages newest first: filters status, type, connector,
// controlId, receivedFrom/receivedTo (RFC 3339), limit (≤ 500) and an opaque cursor.
func (h *API) listMessages(c echo.Context) error {
	q := c.QueryParams()
	f := messageFilter{Status: q.Get("status"), MessageType: q.Get("type"), ConnectorID: q.Get("connector"), ControlID: q.Get("controlId")}
	for name, dst := range map[string]**time.Time{"receivedFrom": &f.ReceivedFrom, "receivedTo": &f.ReceivedTo} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, name+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			}
			*dst = &t
		}
	}
	params, err := f.params(httpkit.Principal(c).Tenant)
	if err != nil {
		return err
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "limit must be 1..500")
		}
		limit = n
	}
	params.MaxRows = int32(limit)
	if cur := q.Get("cursor"); cur != "" {
		at, id, err := decodeMessageCursor(cur)
		if err != nil {
			return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "cursor: not a cursor returned by this endpoint")
		}
		params.BeforeAt, params.BeforeID = &at, &id
	}
	rows, err := db.New(h.d.Pool).Hl7MessageList(c.Request().Context(), params)
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	out := struct {
		Messages []messageSummary `json:"messages"`
		Next     string           `json:"next,omitempty"`
	}{Messages: make([]messageSummary, 0, len(rows))}
	for _, r := range rows {
		out.Messages = append(out.Messages, messageSummary{
			ID: r.ID, ConnectorID: r.ConnectorID, Status: string(r.Status), MessageControlID: r.MessageControlID,
			SendingApplication: r.SendingApp, SendingFacility: r.SendingFacility, MessageType: workflows.MessageType(r.MessageCode, r.TriggerEvent),
			Version: r.HL7Version, SizeBytes: r.SizeBytes, AckCode: r.AckCode, LastErrorCode: r.LastErrorCode, LastError: r.LastError,
			WorkflowID: r.WorkflowID, DuplicateOf: r.DuplicateOf, ReceivedAt: r.ReceivedAt, StatusChangedAt: r.StatusChangedAt, ProcessedAt: r.ProcessedAt,
		})
	}
	if len(rows) == limit {
		last := rows[len(rows)-1]
		out.Next = encodeMessageCursor(last.ReceivedAt, last.ID)
	}
	return c.JSON(http.StatusOK, out)
}

// getMessageRaw returns the stored bytes exactly as received.
func (h *API) getMessageRaw(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	raw, err := db.New(h.d.Pool).Hl7MessageRaw(c.Request().Context(), db.Hl7MessageRawParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	if err != nil {
		return fmt.Errorf("read raw message: %w", err)
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+id.String()+`.hl7"`)
	return c.Blob(http.StatusOK, "application/hl7-v2", raw)
}

func encodeMessageCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeMessageCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	ts, idStr, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, uuid.Nil, errors.New("no separator")
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, err
	}
	id, err := uuid.Parse(idStr)
	return at, id, err
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// getMessage shows one message of the caller's tenant with its attempts and resource links.
func (h *API) getMessage(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
	}
	ctx := c.Request().Context()
	q := db.New(h.d.Pool)
	m, err := q.Hl7MessageGetForTenant(ctx, db.Hl7MessageGetForTenantParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "message not found")
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
		// MappingNotes is what the Map step noted without failing (ignored Z-segments, …).
		MappingNotes []string `json:"mappingNotes,omitempty"`
		// FieldCoverage is the Map step's field accounting: every populated component of
		// the message, mapped or not mapped (mapping.Coverage).
		FieldCoverage json.RawMessage `json:"fieldCoverage,omitempty"`
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
		"messageType": workflows.MessageType(m.MessageCode, m.TriggerEvent), "version": m.HL7Version,
		"sizeBytes": len(m.Raw), "ackCode": m.AckCode, "receivedAt": m.ReceivedAt,
		"lastErrorCode": m.LastErrorCode, "lastError": m.LastError, "workflowId": m.WorkflowID,
	}
	if h.d.TemporalUIURL != "" {
		out["temporalUrl"] = h.d.TemporalUIURL + "/namespaces/" + url.PathEscape(h.d.TemporalNamespace) + "/workflows/" + url.PathEscape(m.WorkflowID)
	}
	as := make([]attemptJSON, 0, len(attempts))
	for _, a := range attempts {
		as = append(as, attemptJSON{a.AttemptNumber, string(a.Status), a.WorkflowID, a.RunID, a.ErrorCode, a.ErrorDetail, a.AttemptAt, a.FinishedAt, a.MappingNotes, a.FieldCoverage})
	}
	ls := make([]linkJSON, 0, len(links))
	for _, l := range links {
		ls = append(ls, linkJSON{l.ResourceType, l.ResourceID, l.Action, l.Owner})
	}
	out["attempts"], out["resourceLinks"] = as, ls
	return c.JSON(http.StatusOK, out)
}
