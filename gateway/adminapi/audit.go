package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/fhir"
)

// auditRoutes serves the tenant's audit trail (issue #14) as FHIR AuditEvents. Reading it is
// itself recorded, once per request, like every /admin request: who looked at whose trail
// is part of the trail. Writing a record goes to the database directly, never through HTTP,
// so a read cannot set off another.
func auditRoutes(admin *echo.Group, h *API) {
	admin.GET("/audit-events", h.searchAuditEvents)
	admin.GET("/audit-events/:id", h.getAuditEvent)
}

// searchAuditEvents answers a searchset Bundle of the tenant's AuditEvents, newest first:
// patient, agent, entity, action, outcome, date (ge/gt/le/lt/eq…), _count and the _cursor of
// a next link (audit.ParseSearch).
func (h *API) searchAuditEvents(c echo.Context) error {
	q := c.QueryParams()
	s, err := audit.ParseSearch(q)
	if err != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, err.Error())
	}
	params := db.AuditEventSearchParams{
		TenantID: httpkit.Principal(c).Tenant, Agent: nonEmpty(s.Agent), Entity: nonEmpty(s.Entity), Patient: nonEmpty(s.Patient),
		Actions: make([]string, 0, len(s.Actions)), Outcomes: s.Outcomes, RecordedFrom: s.From, RecordedBefore: s.Before,
		MaxRows: int32(s.Count + 1), //nolint:gosec // at most audit.MaxCount + 1
	}
	if params.Outcomes == nil {
		params.Outcomes = []int16{}
	}
	for _, a := range s.Actions {
		params.Actions = append(params.Actions, string(a))
	}
	if s.Cursor != "" {
		at, id, err := decodeMessageCursor(s.Cursor)
		if err != nil {
			return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "_cursor: not a cursor of this endpoint's next link")
		}
		params.BeforeRecorded, params.BeforeID = &at, &id
	}
	rows, err := db.New(h.d.Pool).AuditEventSearch(c.Request().Context(), params)
	if err != nil {
		return fmt.Errorf("search audit events: %w", err)
	}
	base := strings.TrimRight(h.d.BaseURL, "/") + "/admin/audit-events"
	b := fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: fhir.BundleSearchset,
		Link: []fhir.BundleLink{{Relation: "self", URL: pageURL(base, q, "")}}}
	if len(rows) > s.Count {
		rows = rows[:s.Count]
		last := rows[len(rows)-1]
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: pageURL(base, q, encodeMessageCursor(last.Recorded, last.ID))})
	}
	b.Entry = make([]fhir.BundleEntry, 0, len(rows))
	for _, r := range rows {
		b.Entry = append(b.Entry, fhir.BundleEntry{FullURL: base + "/" + r.ID.String(), Resource: json.RawMessage(r.Event),
			Search: &fhir.EntrySearch{Mode: "match"}})
	}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("audit events bundle: %w", err)
	}
	return c.Blob(http.StatusOK, fhir.MediaType+"; charset=utf-8", body)
}

// pageURL is the search's URL with its _cursor set to cursor ("": none).
func pageURL(base string, q url.Values, cursor string) string {
	page := url.Values{}
	for k, v := range q {
		if k != "_cursor" {
			page[k] = v
		}
	}
	if cursor != "" {
		page.Set("_cursor", cursor)
	}
	if len(page) == 0 {
		return base
	}
	return base + "?" + page.Encode()
}

// getAuditEvent answers one of the tenant's AuditEvents; another tenant's is 404.
func (h *API) getAuditEvent(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such audit event")
	}
	r, err := db.New(h.d.Pool).AuditEventGet(c.Request().Context(), db.AuditEventGetParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "no such audit event")
	}
	if err != nil {
		return fmt.Errorf("get audit event: %w", err)
	}
	var body bytes.Buffer
	if err := json.Compact(&body, r.Event); err != nil {
		return fmt.Errorf("audit event %s: %w", id, err)
	}
	return c.Blob(http.StatusOK, fhir.MediaType+"; charset=utf-8", body.Bytes())
}
