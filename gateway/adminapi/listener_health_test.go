package adminapi

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/gateway/inbound"
)

// lateListeners lets the API be built before the Listeners it reports on (they need its pool).
type lateListeners struct{ l *inbound.Listeners }

func (x *lateListeners) State(id uuid.UUID) (inbound.ListenerState, bool) { return x.l.State(id) }

// A connector activated on a port another process holds is active in the database but does
// not listen: its view says so (listening false, the bind error as lastError) and so does the
// interop_mllp_listener_up gauge, until the port is free and the listener opens.
func TestConnectorListenerHealth(t *testing.T) {
	t.Parallel()
	late := &lateListeners{}
	a := newConnAPI(t, func(d *Deps) { d.Listeners = late })
	reg := prometheus.NewRegistry()
	metrics := inbound.NewMetrics(reg)
	l := newListeners(t, a.pool)
	l.Metrics = metrics
	late.l = l
	ctx := context.Background()

	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer squatter.Close()
	port := int32(squatter.Addr().(*net.TCPAddr).Port) //nolint:gosec // a TCP port fits

	c := a.create(a.tokA, mllpInbound("squatted", "fac-1", port))
	require.Nil(t, c.Listener, "a draft has no listener to report")
	c = decodeConnector(t, a.move(a.tokA, c.ID, "activate", http.StatusOK))
	require.Equal(t, "active", c.Status)

	require.Error(t, l.Reconcile(ctx), "the port is taken")
	c = decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
	require.Equal(t, "active", c.Status)
	require.NotNil(t, c.Listener, "an active connector that failed to listen says so")
	require.False(t, c.Listener.Listening)
	require.Contains(t, c.Listener.LastError, "address already in use")
	require.Contains(t, c.Listener.LastError, strconv.Itoa(int(port)))
	require.NotNil(t, c.Listener.LastErrorAt)
	up := metrics.MLLPListenerUp.WithLabelValues("squatted", c.ID.String())
	require.InDelta(t, 0, testutil.ToFloat64(up), 0)
	require.InDelta(t, 1, testutil.ToFloat64(metrics.MLLPListenFailures.WithLabelValues("squatted", c.ID.String())), 0)

	// The list shows the same.
	rec := a.call(http.MethodGet, "/admin/connectors?status=active", a.tokA, "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"listening":false`)

	// The port frees: the next reconciliation opens the listener and clears the error.
	require.NoError(t, squatter.Close())
	require.NoError(t, l.Reconcile(ctx))
	c = decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
	require.NotNil(t, c.Listener)
	require.True(t, c.Listener.Listening)
	require.Empty(t, c.Listener.LastError)
	require.Equal(t, hostPort(port), c.Listener.Addr)
	require.InDelta(t, 1, testutil.ToFloat64(up), 0)
	requireAccepts(t, l.Addr(c.ID), "HEALTH-1")

	// Deactivated: no listener, nothing reported, the series goes.
	a.move(a.tokA, c.ID, "deactivate", http.StatusOK)
	require.NoError(t, l.Reconcile(ctx))
	c = decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
	require.Nil(t, c.Listener)
	n, err := testutil.GatherAndCount(reg, "interop_mllp_listener_up")
	require.NoError(t, err)
	require.Zero(t, n)

	// Another tenant cannot read it at all.
	requireAPIOutcome(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokB, "", nil), http.StatusNotFound, "not-found")
}
