package inbound

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// An oversize frame keeps only a bounded prefix for audit, with the size received and the
// SHA-256 of every byte received: one sender cannot make each refused frame cost the database
// maxMessageSize bytes.
func TestOversizeFrameKeepsBoundedPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)
	const maxSize = 1 << 20
	c := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f1", Name: "big", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: fmt.Sprintf(`{"maxMessageSize": %d}`, maxSize)})
	require.NoError(t, l.Reconcile(ctx))

	payload := []byte(strings.Repeat("MSH|^~\\&|BIG|x\r", 3*maxSize/15))
	nc, err := net.DialTimeout("tcp", l.Addr(c.ID), 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(30*time.Second)))
	_, _ = nc.Write(append([]byte{0x0b}, payload...)) // the server closes mid-write: an error is expected

	var raw, sum []byte
	var size int64
	require.Eventually(t, func() bool {
		err := pool.QueryRow(ctx, "SELECT raw, size_bytes, raw_sha256 FROM hl7_rejected_inputs WHERE connector_id = $1 AND reason = $2",
			c.ID, mllp.ErrFrameTooLarge.Error()).Scan(&raw, &size, &sum)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, DefaultRejectedKeepBytes, len(raw), "only a bounded prefix is stored")
	require.Equal(t, payload[:DefaultRejectedKeepBytes], raw)
	require.GreaterOrEqual(t, size, int64(maxSize), "the size received is recorded")
	require.LessOrEqual(t, size, int64(maxSize)+1)
	want := sha256.Sum256(payload[:size])
	require.Equal(t, want[:], sum, "the hash covers every byte received, not only the prefix")

	// Small rejected input is kept whole, with its size and hash.
	junk := []byte("not an hl7 message at all")
	addr := l.Addr(c.ID)
	_, ack := sendOn(t, dial(t, addr), junk)
	require.Equal(t, hl7v2.AppReject, ack.Code)
	require.NoError(t, pool.QueryRow(ctx, "SELECT raw, size_bytes, raw_sha256 FROM hl7_rejected_inputs WHERE connector_id = $1 AND reason LIKE 'unreadable MSH%'",
		c.ID).Scan(&raw, &size, &sum))
	require.Equal(t, junk, raw)
	require.Equal(t, int64(len(junk)), size)
	want = sha256.Sum256(junk)
	require.Equal(t, want[:], sum)
}

// A flood of rejected input stores at most the connector's budget; the rest is counted, not
// stored. Each connector has a budget of its own.
func TestRejectedInputStorageIsRateLimited(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	const budget = 5
	e := setupWithSettings(t, "", func(in *Ingestor) {
		in.RejectedPerMinute = budget
		in.Metrics = metrics
	})
	const flood = 30
	msgs := make([][]byte, flood)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "garbage %d", i)
	}
	replies := pipeline(t, e.addr, msgs, flood)
	for _, r := range replies {
		ack, err := hl7v2.ParseAck(r)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppReject, ack.Code, "every rejected message is still answered")
	}
	require.Equal(t, budget, e.rejectedCount(t), "at most the budget is stored")
	require.InDelta(t, flood-budget, testutil.ToFloat64(metrics.MLLPRejectedDropped.WithLabelValues(e.conn.Name)), 0)

	// Another connector's budget is untouched.
	other := insertActiveConnector(t, e.q, ingestTenant, "fac-2", "other-in", freePort(t))
	oc, _, err := ConnectorFromRow(other)
	require.NoError(t, err)
	addr := serveMLLP(t, nil, e.in, oc)
	for i := range 3 {
		_, ack := sendOn(t, dial(t, addr), fmt.Appendf(nil, "other garbage %d", i))
		require.Equal(t, hl7v2.AppReject, ack.Code)
	}
	require.Equal(t, 3, count(t, e.pool, "SELECT count(*) FROM hl7_rejected_inputs WHERE connector_id = $1", other.ID))
}

// A connector without maxConnections gets connector.DefaultMaxConnections: connection N+1 is
// closed at once while N are open.
func TestDefaultMaxConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)
	c := insertActiveConnector(t, q, "t-one", "f1", "default-limits", freePort(t))
	require.NoError(t, l.Reconcile(ctx))
	addr := l.Addr(c.ID)

	n := connector.DefaultMaxConnections
	require.Positive(t, n)
	clients := make([]*mllp.Client, 0, n)
	for i := range n {
		clients = append(clients, servedClient(t, addr, fmt.Sprintf("CONN-%d", i)))
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := dial(t, addr).Send(sctx, message(t, "CONN-EXTRA"))
	cancel()
	require.Error(t, err, "connection %d is refused", n+1)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "closed at once, not left waiting: %v", err)

	// A slot frees when a connection closes.
	require.NoError(t, clients[0].Close())
	servedClient(t, addr, "CONN-AFTER")
}
