package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// GET /admin/backlog: per connector and status, the count and the oldest age of the
// caller's tenant's messages not yet done; other tenants' never show.
func TestBacklog(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	labA, adtA, labB := e.connector(apiTenantA, "lab"), e.connector(apiTenantA, "adt"), e.connector(apiTenantB, "lab-b")
	for i, st := range []db.Hl7MessageStatus{db.Hl7MessageStatusPending, db.Hl7MessageStatusPending, db.Hl7MessageStatusProcessing,
		db.Hl7MessageStatusFailed, db.Hl7MessageStatusProcessed, db.Hl7MessageStatusDeadLettered, db.Hl7MessageStatusUnmapped} {
		e.insert(&amsg{Tenant: apiTenantA, Connector: labA.ID, Control: "L-" + string(rune('a'+i)), Code: "ORU", Trigger: "R01", Status: st})
	}
	e.insert(&amsg{Tenant: apiTenantA, Connector: adtA.ID, Control: "A-1", Code: "ADT", Trigger: "A01"},
		&amsg{Tenant: apiTenantB, Connector: labB.ID, Control: "B-1", Code: "ADT", Trigger: "A01"})
	// The oldest pending message of lab arrived two hours ago.
	_, err := e.pool.Exec(context.Background(), `ALTER TABLE hl7_messages DISABLE TRIGGER hl7_messages_immutable`)
	require.NoError(t, err)
	_, err = e.pool.Exec(context.Background(), `UPDATE hl7_messages SET received_at = now() - interval '2 hours' WHERE message_control_id = 'L-a'`)
	require.NoError(t, err)
	_, err = e.pool.Exec(context.Background(), `ALTER TABLE hl7_messages ENABLE TRIGGER hl7_messages_immutable`)
	require.NoError(t, err)

	rec := e.get("/admin/backlog", e.adminA)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got struct {
		Backlog []backlogEntry `json:"backlog"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	type key struct{ conn, status string }
	counts := map[key]int64{}
	for _, b := range got.Backlog {
		counts[key{b.Connector, b.Status}] = b.Messages
		require.NotEqual(t, labB.ID, b.ConnectorID, "another tenant's connector")
		if b.Connector == "lab" && b.Status == "pending" {
			require.GreaterOrEqual(t, b.OldestSeconds, 7190.0)
			require.WithinDuration(t, time.Now().Add(-2*time.Hour), b.OldestAt, time.Minute)
		} else {
			require.Less(t, b.OldestSeconds, 600.0)
		}
	}
	require.Equal(t, map[key]int64{
		{"lab", "pending"}: 2, {"lab", "processing"}: 1, {"lab", "failed"}: 1, {"adt", "pending"}: 1,
	}, counts)

	rec = e.get("/admin/backlog", e.adminB)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Backlog, 1)
	require.Equal(t, "lab-b", got.Backlog[0].Connector)

	require.Equal(t, http.StatusForbidden, e.get("/admin/backlog", e.token(apiTenantA, "system/*.rs")).Code)
}
