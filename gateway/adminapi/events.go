package adminapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
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
func (h *API) listEvents(c echo.Context) error {
	cur, err := outbox.ParseCursor(c.QueryParam("after"))
	if err != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "after: not a cursor returned by this endpoint")
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "limit must be 1..1000")
		}
		limit = n
	}
	rows, err := db.New(h.d.Pool).DomainEventListAfter(c.Request().Context(), db.DomainEventListAfterParams{
		TenantID: httpkit.Principal(c).Tenant, AfterTxID: cur.TxID, AfterSeq: cur.Seq, MaxRows: int32(limit),
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
