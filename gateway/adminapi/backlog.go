package adminapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
)

// backlogEntry is how many messages of one connector wait in one status (pending,
// processing, failed), and since when: the figures of the backlog metrics
// (interop_hl7_backlog_messages, interop_hl7_backlog_oldest_seconds) for one tenant.
type backlogEntry struct {
	ConnectorID   uuid.UUID `json:"connectorId"`
	Connector     string    `json:"connector"`
	Status        string    `json:"status"`
	Messages      int64     `json:"messages"`
	OldestAt      time.Time `json:"oldestReceivedAt"`
	OldestSeconds float64   `json:"oldestAgeSeconds"`
}

// getBacklog answers GET /admin/backlog: the caller's tenant's messages not yet done, per
// connector and status, with the age of the oldest — what support staff look at first when
// a sender says its messages do not arrive. Messages the pipeline ended (processed, unmapped,
// dead-lettered) are not a backlog.
func (h *API) getBacklog(c echo.Context) error {
	rows, err := db.New(h.d.Pool).Hl7MessageBacklogSummary(c.Request().Context(), httpkit.Principal(c).Tenant)
	if err != nil {
		return fmt.Errorf("read backlog: %w", err)
	}
	out := struct {
		Backlog []backlogEntry `json:"backlog"`
	}{Backlog: make([]backlogEntry, 0, len(rows))}
	for _, r := range rows {
		out.Backlog = append(out.Backlog, backlogEntry{
			ConnectorID: r.ConnectorID, Connector: r.Connector, Status: string(r.Status), Messages: r.Messages,
			OldestAt: r.OldestReceivedAt, OldestSeconds: r.OldestSeconds,
		})
	}
	return c.JSON(http.StatusOK, out)
}
