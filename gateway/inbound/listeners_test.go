package inbound

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// newListeners returns Listeners on pool whose listeners all close when the test ends.
func newListeners(t testing.TB, pool *db.Pool) *Listeners {
	t.Helper()
	in, _ := newIngestor(pool)
	l := &Listeners{Pool: pool, Ingestor: in, Logger: discardLogger(), DefaultHost: "127.0.0.1", Interval: 20 * time.Millisecond}
	t.Cleanup(l.Close) // registered after dbtest.New: runs before the pool closes
	return l
}

func requireListening(t testing.TB, addr string) {
	t.Helper()
	require.NotEmpty(t, addr)
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err, "dial %s", addr)
	_ = nc.Close()
}

func setStatus(t testing.TB, q *db.Queries, c db.InteropConnector, s db.ConnectorStatus) {
	t.Helper()
	_, err := q.ConnectorSetStatus(context.Background(), db.ConnectorSetStatusParams{TenantID: c.TenantID, ID: c.ID, Status: s})
	require.NoError(t, err)
}

func storedConnector(t testing.TB, pool *db.Pool, id string) uuid.UUID {
	t.Helper()
	var c uuid.UUID
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT connector_id FROM hl7_messages WHERE message_control_id = $1", id).Scan(&c))
	return c
}

func TestListenersReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)

	portA := freePort(t)
	a := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f1", Name: "a", Port: portA, Status: db.ConnectorStatusActive})
	// Not listeners: a draft, an outbound connector.
	draft := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f2", Name: "draft", Port: freePort(t)})
	out := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f3", Name: "out", Port: freePort(t),
		Direction: db.ConnectorDirectionOutbound, Status: db.ConnectorStatusActive})

	// One active inbound connector: one listener, on DefaultHost since it has no listen_host.
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(portA), l.Addr(a.ID))
	requireListening(t, l.Addr(a.ID))
	require.Empty(t, l.Addr(draft.ID))
	require.Empty(t, l.Addr(out.ID))
	require.Empty(t, l.Addr(uuid.New()))
	requireAccepts(t, l.Addr(a.ID), "A-1")
	require.Equal(t, a.ID, storedConnector(t, pool, "A-1"), "the listener stores for its own connector")

	// Reconciling with nothing changed leaves the listener, and its connections, alone.
	client := dial(t, l.Addr(a.ID))
	_, ack := sendOn(t, client, message(t, "A-2"))
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.NoError(t, l.Reconcile(ctx))
	_, ack = sendOn(t, client, message(t, "A-3"))
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	// Deactivated: closed, port refused.
	setStatus(t, q, a, db.ConnectorStatusInactive)
	require.NoError(t, l.Reconcile(ctx))
	require.Empty(t, l.Addr(a.ID))
	requireRefused(t, hostPort(portA))
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := client.Send(sctx, message(t, "A-4"))
	cancel()
	require.Error(t, err, "connections of a closed listener are closed too")

	// Activated again: reopened on the same port.
	setStatus(t, q, a, db.ConnectorStatusActive)
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(portA), l.Addr(a.ID))
	requireAccepts(t, l.Addr(a.ID), "A-5")

	// Updated (new port): reopened on the new port, the old one closed.
	portA2 := freePort(t)
	require.NoError(t, q.ConnectorSetListenAddr(ctx, db.ConnectorSetListenAddrParams{ListenPort: &portA2, ID: a.ID}))
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(portA2), l.Addr(a.ID))
	requireRefused(t, hostPort(portA))
	requireAccepts(t, l.Addr(a.ID), "A-6")

	// A second connector, another tenant and port: both open, each storing for itself.
	portB := freePort(t)
	b := insertActiveConnector(t, q, "t-two", "f1", "b", portB)
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(portA2), l.Addr(a.ID))
	require.Equal(t, hostPort(portB), l.Addr(b.ID))
	requireAccepts(t, l.Addr(a.ID), "A-7")
	requireAccepts(t, l.Addr(b.ID), "B-1")
	require.Equal(t, b.ID, storedConnector(t, pool, "B-1"))
	var tenant string
	require.NoError(t, pool.QueryRow(ctx, "SELECT tenant_id FROM hl7_messages WHERE message_control_id = 'B-1'").Scan(&tenant))
	require.Equal(t, "t-two", tenant)

	// Retired: closed like inactive.
	setStatus(t, q, b, db.ConnectorStatusRetired)
	require.NoError(t, l.Reconcile(ctx))
	require.Empty(t, l.Addr(b.ID))
	requireRefused(t, hostPort(portB))
	require.Equal(t, hostPort(portA2), l.Addr(a.ID))
}

// A connector that cannot be opened (its port is taken) does not stop the others, and is
// opened by a later reconciliation once the port is free.
func TestListenersPortInUseConverges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)

	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	busyPort := int32(squatter.Addr().(*net.TCPAddr).Port)
	busy := insertActiveConnector(t, q, "t-one", "f1", "busy", busyPort)
	ok := insertActiveConnector(t, q, "t-one", "f2", "ok", freePort(t))

	err = l.Reconcile(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), busy.ID.String())
	require.Empty(t, l.Addr(busy.ID))
	requireListening(t, l.Addr(ok.ID))

	require.NoError(t, squatter.Close())
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(busyPort), l.Addr(busy.ID))
	requireAccepts(t, l.Addr(busy.ID), "BUSY-1")
}

// The connector's settings reach its server.
func TestListenersApplySettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)
	c := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f1", Name: "small", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: `{"maxMessageSize": 400, "maxConnections": 1}`})
	bad := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f2", Name: "bad", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: `{"maxMessageSize": "big"}`})

	err := l.Reconcile(ctx)
	require.Error(t, err, "unreadable settings are reported")
	require.Contains(t, err.Error(), bad.ID.String())
	require.Empty(t, l.Addr(bad.ID))
	addr := l.Addr(c.ID)
	requireListening(t, addr)

	// maxConnections 1: while one connection is open, another is closed at once. (The
	// server frees a slot only once it has seen a closed connection's EOF, hence servedClient.)
	first := servedClient(t, addr, "S-1")
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = dial(t, addr).Send(sctx, message(t, "S-2"))
	cancel()
	require.Error(t, err)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "closed at once, not left waiting: %v", err)
	require.NoError(t, first.Close())

	// maxMessageSize 400: a bigger message is not acknowledged, and is kept for audit.
	big := withMSH(t, message(t, "S-3"), 8, "SECURITY-"+strings.Repeat("x", 500))
	require.Greater(t, len(big), 400)
	c2 := servedClient(t, addr, "S-4")
	sctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, err = c2.Send(sctx, big)
	cancel()
	require.Error(t, err)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "closed at once, not left waiting: %v", err)
	require.Zero(t, count(t, pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'S-3'"))
	require.Eventually(t, func() bool {
		return count(t, pool, "SELECT count(*) FROM hl7_rejected_inputs WHERE reason = $1", mllp.ErrFrameTooLarge.Error()) == 1
	}, 5*time.Second, 10*time.Millisecond)
}

// servedClient dials addr until a connection is served (accepted and not closed at once for
// lack of a slot), and returns it after its message id was accepted.
func servedClient(t testing.TB, addr, id string) *mllp.Client {
	t.Helper()
	msg := message(t, id)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dial(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reply, err := c.Send(ctx, msg)
		cancel()
		if err != nil {
			_ = c.Close()
			require.True(t, time.Now().Before(deadline), "no connection served: %v", err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ack, err := hl7v2.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, id, ack.ControlID)
		return c
	}
}

func TestListenersRun(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)
	a := insertActiveConnector(t, q, "t-one", "f1", "a", freePort(t))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	open := func(id uuid.UUID) func() bool { return func() bool { return l.Addr(id) != "" } }
	closed := func(id uuid.UUID) func() bool { return func() bool { return l.Addr(id) == "" } }
	const wait, tick = 10 * time.Second, 10 * time.Millisecond

	require.Eventually(t, open(a.ID), wait, tick)
	requireAccepts(t, l.Addr(a.ID), "RUN-A")

	b := insertActiveConnector(t, q, "t-two", "f1", "b", freePort(t))
	require.Eventually(t, open(b.ID), wait, tick, "a connector activated later opens without a restart")
	requireAccepts(t, l.Addr(b.ID), "RUN-B")

	addrA := l.Addr(a.ID)
	setStatus(t, q, a, db.ConnectorStatusInactive)
	require.Eventually(t, closed(a.ID), wait, tick)
	requireRefused(t, addrA)
	require.NotEmpty(t, l.Addr(b.ID))

	setStatus(t, q, a, db.ConnectorStatusActive)
	require.Eventually(t, open(a.ID), wait, tick)
	requireListening(t, l.Addr(a.ID))

	addrA, addrB := l.Addr(a.ID), l.Addr(b.ID)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("Run did not return after its context ended")
	}
	require.Empty(t, l.Addr(a.ID))
	require.Empty(t, l.Addr(b.ID))
	requireRefused(t, addrA)
	requireRefused(t, addrB)
}
