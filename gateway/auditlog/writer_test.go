package auditlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/dbtest"
)

// The Writer against a real PostgreSQL: batches, backpressure while the database is gone,
// drain on Close, the spool surviving a kill -9, idempotent rewrites, and a record the database
// refuses not holding up the others.

var observer = audit.Observer{Name: "interop", BaseURL: "http://interop.test"}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rec is a record of tenant, told apart by n.
func rec(tenant string, n int) audit.Record {
	return audit.Record{Tenant: tenant, Subtype: audit.InteractionRead, Action: audit.Read, Status: 200,
		Agent: "client-" + strconv.Itoa(n%3), Entities: []string{"Observation/o" + strconv.Itoa(n)}, Patients: []string{"Patient/p1"}}
}

func count(t *testing.T, pool *db.Pool, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_events WHERE tenant_id = $1", tenant).Scan(&n))
	return n
}

func waitCount(t *testing.T, pool *db.Pool, tenant string, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return count(t, pool, tenant) >= want }, 20*time.Second, 20*time.Millisecond,
		"want %d records of %s", want, tenant)
	require.Equal(t, want, count(t, pool, tenant), "every record once, no more")
}

func start(t *testing.T, w *Writer) {
	t.Helper()
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
}

func TestWriterBatchesEveryRecord(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), BatchSize: 100, FlushInterval: 20 * time.Millisecond}
	start(t, w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				require.NoError(t, w.Record(context.Background(), rec("t1", g*1000+i)))
			}
		}()
	}
	wg.Wait()
	waitCount(t, pool, "t1", 1200)
	require.InDelta(t, 1200, testutil.ToFloat64(w.metrics.written), 0)
	require.Zero(t, testutil.ToFloat64(w.metrics.failures))

	// Each row carries the AuditEvent and the columns the search uses.
	var action, agent, event string
	var outcome, status int
	var entities, patients []string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT action, outcome, http_status, agent, entity_refs, patient_refs, event::text
		FROM audit_events WHERE entity_refs @> ARRAY['Observation/o7']`).Scan(&action, &outcome, &status, &agent, &entities, &patients, &event))
	require.Equal(t, "R", action)
	require.Equal(t, 0, outcome)
	require.Equal(t, 200, status)
	require.Equal(t, "client-1", agent)
	require.ElementsMatch(t, []string{"Patient/p1", "Observation/o7"}, entities)
	require.Equal(t, []string{"Patient/p1"}, patients)
	require.Contains(t, event, `"resourceType": "AuditEvent"`)
}

// proxy forwards TCP connections to PostgreSQL until cut: then it closes every connection
// and refuses new ones, as a database that went away.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// throughProxy opens a pool to the database at u through a proxy.
func throughProxy(t *testing.T, u string) (*proxy, *db.Pool) {
	t.Helper()
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	port := parsed.Port()
	if port == "" {
		port = "5432"
	}
	p := newProxy(t, net.JoinHostPort(parsed.Hostname(), port))
	parsed.Host = p.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := db.OpenWith(ctx, parsed.String(), db.Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return p, pool
}

// With the database gone, the Writer holds what it has, a full queue makes Record wait (the
// request is slowed, nothing is dropped), and once the database is back every record is
// written exactly once.
func TestWriterBackpressureWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	u, direct := dbtest.New(t)
	px, pool := throughProxy(t, u)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), QueueSize: 5, BatchSize: 5,
		FlushInterval: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	start(t, w)

	px.cut()
	for i := range 5 {
		require.NoError(t, w.Record(context.Background(), rec("t1", i)))
	}
	// The queue is full: the next records wait for room.
	const blocked = 10
	var returned sync.WaitGroup
	done := make(chan struct{})
	for i := range blocked {
		returned.Add(1)
		go func() {
			defer returned.Done()
			require.NoError(t, w.Record(context.Background(), rec("t1", 100+i)))
		}()
	}
	go func() { returned.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("Record returned while the queue was full and the database down")
	case <-time.After(500 * time.Millisecond):
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.metrics.failures) >= 2 }, 10*time.Second, 10*time.Millisecond,
		"the batch is retried")
	require.InDelta(t, blocked, testutil.ToFloat64(w.metrics.blocked), 0)
	require.Equal(t, 5, w.depth(), "the full queue is held")
	require.Greater(t, w.oldest(), 400*time.Millisecond, "the oldest unwritten record's age grows")
	require.Zero(t, count(t, direct, "t1"))

	px.restore()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Record still blocked after the database came back")
	}
	waitCount(t, direct, "t1", 5+blocked)
	require.Eventually(t, func() bool { return w.depth() == 0 && w.oldest() == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(w.metrics.lost))
}

// Close writes what is queued before it returns, even records no flush had taken yet.
func TestWriterCloseDrains(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), QueueSize: 1000, BatchSize: 1000, FlushInterval: time.Hour,
		SpoolDir: t.TempDir()}
	require.NoError(t, w.Start(context.Background()))
	for i := range 300 {
		require.NoError(t, w.Record(context.Background(), rec("t1", i)))
	}
	require.Zero(t, count(t, pool, "t1"), "nothing flushed yet: the interval is an hour")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))
	require.Equal(t, 300, count(t, pool, "t1"))
	require.ErrorIs(t, w.Record(context.Background(), rec("t1", 1)), ErrClosed)
	entries, err := os.ReadDir(w.SpoolDir)
	require.NoError(t, err)
	require.Empty(t, entries, "a clean stop leaves no spool behind")
	require.NoError(t, w.Close(ctx), "a second Close is a no-op")
}

// Close with the database down gives up when its context ends; the records stay in the spool
// and the next Writer on it writes them.
func TestWriterCloseWithTheDatabaseDownKeepsTheSpool(t *testing.T) {
	t.Parallel()
	u, direct := dbtest.New(t)
	px, pool := throughProxy(t, u)
	spool := t.TempDir()
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), FlushInterval: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, SpoolDir: spool}
	require.NoError(t, w.Start(context.Background()))
	px.cut()
	for i := range 40 {
		require.NoError(t, w.Record(context.Background(), rec("t1", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	require.ErrorContains(t, err, "40 records not written (40 of them kept in the spool")
	require.Zero(t, testutil.ToFloat64(w.metrics.lost))
	px.restore()

	next := &Writer{Pool: direct, Observer: observer, Logger: discard(), FlushInterval: 10 * time.Millisecond, SpoolDir: spool}
	start(t, next)
	waitCount(t, direct, "t1", 40)
	require.Eventually(t, func() bool { return testutil.ToFloat64(next.metrics.adopted) == 40 }, 5*time.Second, 10*time.Millisecond)
	entries, err := os.ReadDir(spool)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the adopted spool is gone; only the running writer's is left")
}

// The spool closes the last window: a process killed (SIGKILL) before it wrote its records
// leaves them in its spool, and the next Writer started on the same directory writes them.
func TestWriterSpoolSurvivesKill9(t *testing.T) {
	t.Parallel()
	u, pool := dbtest.New(t)
	spool := t.TempDir()
	const n = 250
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolChildProcess$", "-test.count=1") //nolint:gosec // G702: the test binary runs itself
	cmd.Env = append(os.Environ(), "AUDITLOG_CHILD_DB="+u, "AUDITLOG_CHILD_SPOOL="+spool, "AUDITLOG_CHILD_N="+strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	recorded := false
	for lines.Scan() {
		if lines.Text() == fmt.Sprintf("recorded %d", n) {
			recorded = true
			break
		}
	}
	require.True(t, recorded, "the child recorded its events")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Zero(t, count(t, pool, "t-kill"), "the child wrote nothing: its flush interval is an hour")

	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), FlushInterval: 10 * time.Millisecond, SpoolDir: spool}
	start(t, w)
	waitCount(t, pool, "t-kill", n)
	var distinct int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(DISTINCT entity_refs) FROM audit_events WHERE tenant_id = 't-kill'").Scan(&distinct))
	require.Equal(t, n, distinct, "each record once")
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(spool)
		return err == nil && len(entries) == 1
	}, 5*time.Second, 10*time.Millisecond, "the dead process's spool is removed once adopted")
}

// TestSpoolChildProcess is the process TestWriterSpoolSurvivesKill9 kills: it records
// AUDITLOG_CHILD_N events with a writer that never flushes on its own, says so, and waits.
func TestSpoolChildProcess(t *testing.T) {
	u := os.Getenv("AUDITLOG_CHILD_DB")
	if u == "" {
		t.Skip("run by TestWriterSpoolSurvivesKill9")
	}
	n, err := strconv.Atoi(os.Getenv("AUDITLOG_CHILD_N"))
	require.NoError(t, err)
	pool, err := db.OpenWith(context.Background(), u, db.Options{MaxConns: 1})
	require.NoError(t, err)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), BatchSize: 10 * n, QueueSize: 10 * n,
		FlushInterval: time.Hour, SpoolDir: os.Getenv("AUDITLOG_CHILD_SPOOL")}
	require.NoError(t, w.Start(context.Background()))
	for i := range n {
		require.NoError(t, w.Record(context.Background(), rec("t-kill", i)))
	}
	fmt.Printf("recorded %d\n", n)
	time.Sleep(time.Minute) // killed before this ends
}

// A record written twice (a batch whose commit was lost, a spool adopted twice) is one row.
func TestWriterRewriteIsIdempotent(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), FlushInterval: 10 * time.Millisecond}
	start(t, w)
	row, err := audit.Build(audit.Record{ID: "0190f1d2-0000-7000-8000-000000000001", Recorded: time.Now(), Tenant: "t1",
		Subtype: audit.InteractionRead, Action: audit.Read, Status: 200}, observer)
	require.NoError(t, err)
	require.NoError(t, w.enqueue(row))
	require.NoError(t, w.enqueue(row))
	require.NoError(t, w.enqueue(row))
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.metrics.written) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, count(t, pool, "t1"))
}

// A record the database refuses (here, a forged action) is isolated by splitting its batch and
// dropped, counted and logged; the records around it are written.
func TestWriterIsolatesARecordTheDatabaseRefuses(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	w := &Writer{Pool: pool, Observer: observer, Logger: discard(), BatchSize: 16, FlushInterval: time.Hour}
	require.NoError(t, w.Start(context.Background()))
	for i := range 15 {
		if i == 9 {
			row, err := audit.Build(audit.Record{ID: "0190f1d2-0000-7000-8000-0000000000ff", Recorded: time.Now(), Tenant: "t1",
				Action: audit.Read, Status: 200}, observer)
			require.NoError(t, err)
			row.Action = "X"
			require.NoError(t, w.enqueue(row))
			continue
		}
		require.NoError(t, w.Record(context.Background(), rec("t1", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))
	require.Equal(t, 14, count(t, pool, "t1"))
	require.InDelta(t, 1, testutil.ToFloat64(w.metrics.rejected), 0)
}

// Record before Start, and Start twice, are refused.
func TestWriterLifecycle(t *testing.T) {
	t.Parallel()
	w := &Writer{Observer: observer, Logger: discard()}
	require.ErrorIs(t, w.Record(context.Background(), rec("t1", 1)), ErrClosed)
	require.NoError(t, w.Close(context.Background()), "Close before Start")
	_, pool := dbtest.New(t)
	w = &Writer{Pool: pool, Observer: observer, Logger: discard()}
	start(t, w)
	require.Error(t, w.Start(context.Background()))
	require.Error(t, w.Record(context.Background(), audit.Record{Action: audit.Read}), "a record without a tenant")
	require.False(t, errors.Is(w.Record(context.Background(), rec("t1", 1)), ErrClosed))
}

// Two writers on one spool directory each have their own subdirectory; a running one's is
// never adopted.
func TestWriterSpoolOfARunningWriterIsNotAdopted(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	spool := t.TempDir()
	a := &Writer{Pool: pool, Observer: observer, Logger: discard(), FlushInterval: time.Hour, BatchSize: 1000, SpoolDir: spool}
	start(t, a)
	for i := range 20 {
		require.NoError(t, a.Record(context.Background(), rec("t1", i)))
	}
	b := &Writer{Pool: pool, Observer: observer, Logger: discard(), FlushInterval: 10 * time.Millisecond, SpoolDir: spool}
	start(t, b)
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, count(t, pool, "t1"), "b does not write a's records")
	require.Zero(t, testutil.ToFloat64(b.metrics.adopted))
	dirs, err := filepath.Glob(filepath.Join(spool, "w*"))
	require.NoError(t, err)
	require.Len(t, dirs, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.Close(ctx))
	require.Equal(t, 20, count(t, pool, "t1"))
}
