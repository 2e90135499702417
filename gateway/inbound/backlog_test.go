package inbound

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
)

func TestBacklogCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	var connID string
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO interop_connectors (tenant_id, facility_id, name, protocol, direction)
		VALUES ('t1', 'f', 'lab-feed', 'mllp', 'inbound') RETURNING id`).Scan(&connID))
	for i, status := range []string{"pending", "pending", "failed", "processed"} {
		_, err := pool.Exec(ctx, `INSERT INTO hl7_messages (tenant_id, connector_id, message_control_id, sending_app, raw, raw_sha256, ack_code, ack, workflow_id, status, received_at)
			VALUES ('t1', $1, $2, 'A', 'MSH', sha256('x'), 'AA', '', 'w', $3, now() - interval '90 seconds')`, connID, "c"+string(rune('0'+i)), status)
		require.NoError(t, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&BacklogCollector{Pool: pool})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP interop_hl7_backlog_messages Inbound messages not yet processed or dead-lettered, by tenant, connector and status.
# TYPE interop_hl7_backlog_messages gauge
interop_hl7_backlog_messages{connector="lab-feed",status="failed",tenant="t1"} 1
interop_hl7_backlog_messages{connector="lab-feed",status="pending",tenant="t1"} 2
`), "interop_hl7_backlog_messages"))
	n, err := testutil.GatherAndCount(reg, "interop_hl7_backlog_oldest_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "interop_hl7_backlog_oldest_seconds" {
			for _, m := range mf.GetMetric() {
				require.GreaterOrEqual(t, m.GetGauge().GetValue(), 89.0)
			}
		}
	}
}
