package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/workflows"
)

// startTemporal runs an embedded Temporal server on databases of its own, stopped and
// dropped when the test ends.
func startTemporal(t *testing.T) (*temporaldev.Server, client.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	dbtest.SkipUnlessReachable(t)
	prefix := dbtest.UniqueName("inbtemporal")
	opts := temporaldev.Options{
		DatabaseURL:            dbtest.ClusterURL(),
		DatabaseName:           prefix + "_core",
		VisibilityDatabaseName: prefix + "_vis",
		FrontendAddr:           "127.0.0.1:0",
		DisableUI:              true,
		SearchAttributes:       workflows.SearchAttributes(),
		Logger:                 discardLogger(),
	}
	t.Cleanup(func() {
		dbtest.DropDatabase(t, opts.DatabaseName)
		dbtest.DropDatabase(t, opts.VisibilityDatabaseName)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := temporaldev.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() }) // runs before the drops
	c, err := srv.NewClient(ctx, client.Options{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return srv, c
}

// starterWorld is a database with one connector, and a Starter on a task queue no worker
// polls: the runs it starts stay open.
type starterWorld struct {
	pool    *db.Pool
	q       *db.Queries
	conn    db.InteropConnector
	c       client.Client
	starter *Starter
	metrics *Metrics
}

func newStarterWorld(t *testing.T, c client.Client) *starterWorld {
	t.Helper()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	conn := insertConnector(t, q, connectorSpec{Tenant: ingestTenant, Facility: "f", Name: "lab-in", Port: freePort(t)})
	m := NewMetrics(prometheus.NewRegistry())
	st := &Starter{
		Client: c, TaskQueue: "interop-test-" + uuid.NewString(), Pool: pool, Metrics: m, Logger: discardLogger(),
		SweepAge: time.Millisecond,
	}
	return &starterWorld{pool: pool, q: q, conn: conn, c: c, starter: st, metrics: m}
}

// stored is a message row as a test inserts it.
type stored struct {
	id         uuid.UUID
	workflowID string
	status     db.Hl7MessageStatus
	// code and trigger are MSH-9; the fake workflow reads them as what to do.
	code, trigger string
	// age is how long ago the message arrived and its status last moved.
	age time.Duration
}

func (w *starterWorld) insert(t *testing.T, m *stored) {
	t.Helper()
	ctl := uuid.NewString()
	if m.workflowID == "" {
		m.workflowID = workflows.InboundHL7WorkflowID(workflows.MessageKey{TenantID: ingestTenant, ConnectorID: w.conn.ID, SendingApp: "LAB", ControlID: ctl})
	}
	if m.status == "" {
		m.status = db.Hl7MessageStatusPending
	}
	if m.age == 0 {
		m.age = time.Hour
	}
	require.NoError(t, w.pool.QueryRow(context.Background(), `INSERT INTO hl7_messages (tenant_id, connector_id, message_control_id,
		sending_app, message_code, trigger_event, raw, raw_sha256, ack_code, ack, workflow_id, status, received_at, status_changed_at)
		VALUES ($1, $2, $3::text, 'LAB', $4, $5, 'MSH', sha256(convert_to($3::text, 'UTF8')), 'AA', '', $6, $7, now() - $8::interval, now() - $8::interval)
		RETURNING id`, ingestTenant, w.conn.ID, ctl, m.code, m.trigger, m.workflowID, m.status, fmt.Sprintf("%f seconds", m.age.Seconds())).Scan(&m.id))
}

func (w *starterWorld) message(t *testing.T, id uuid.UUID) db.Hl7Message {
	t.Helper()
	m, err := w.q.Hl7MessageGet(context.Background(), id)
	require.NoError(t, err)
	return m
}

func (w *starterWorld) events(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT event_type FROM domain_events WHERE aggregate_id = $1 ORDER BY seq`, id.String())
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}

func requireRun(t *testing.T, c client.Client, workflowID string) {
	t.Helper()
	_, err := c.DescribeWorkflowExecution(context.Background(), workflowID, "")
	require.NoError(t, err, "workflow %s must have a run", workflowID)
}

func requireNoRun(t *testing.T, c client.Client, workflowID string) {
	t.Helper()
	_, err := c.DescribeWorkflowExecution(context.Background(), workflowID, "")
	var nf *serviceerror.NotFound
	require.True(t, errors.As(err, &nf), "workflow %s must have no run: %v", workflowID, err)
}

// An id Temporal refuses, stored before ids were bounded (1,200 bytes).
func legacyLongID(conn uuid.UUID) string {
	return "HL7Message:" + ingestTenant + ":" + conn.String() + ":LAB:" + strings.Repeat("x", 1200)
}

func TestStarterWithTemporal(t *testing.T) {
	// Not parallel: the Temporal server holds dozens of PostgreSQL connections, so it runs
	// before the package's parallel tests open their own databases.
	_, c := startTemporal(t)

	// Issue 14, defect 1: the sweeper read oldest first and stopped at the first failed
	// start, so one message Temporal refuses held every later one pending.
	t.Run("sweep skips what Temporal refuses and dead-letters it", func(t *testing.T) {
		w := newStarterWorld(t, c)
		refused := &stored{workflowID: legacyLongID(w.conn.ID), age: 2 * time.Hour}
		w.insert(t, refused)
		var later []*stored
		for range 3 {
			m := &stored{code: "ADT", trigger: "A01"}
			w.insert(t, m)
			later = append(later, m)
		}
		for _, m := range later {
			requireNoRun(t, c, m.workflowID)
		}
		w.starter.sweep(context.Background())
		for _, m := range later {
			requireRun(t, c, m.workflowID)
		}
		got := w.message(t, refused.id)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, got.Status)
		require.Equal(t, ErrCodeStartRefused, got.LastErrorCode)
		require.Contains(t, got.LastError, "Temporal refused to start its workflow")
		require.Equal(t, []string{"Hl7MessageFailed", "Hl7MessageDeadLettered"}, w.events(t, refused.id))
		require.Equal(t, 1.0, testutil.ToFloat64(w.metrics.WorkflowStarts.WithLabelValues("refused")))

		// A second sweep finds nothing left to start and changes nothing.
		w.starter.sweep(context.Background())
		require.Equal(t, db.Hl7MessageStatusDeadLettered, w.message(t, refused.id).Status)
		require.Len(t, w.events(t, refused.id), 2)
	})

	// Whatever a sender puts in MSH-3 and MSH-10, the stored id is one Temporal takes.
	t.Run("hostile keys through ingest all start", func(t *testing.T) {
		w := newStarterWorld(t, c)
		conn, _, err := ConnectorFromRow(w.conn)
		require.NoError(t, err)
		in, _ := newIngestor(w.pool)
		in.Starter = w.starter
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.starter.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		msgs := [][]byte{
			message(t, "été-1"),
			message(t, strings.Repeat("1", 1000)),
			withMSH(t, message(t, "M-3"), 3, strings.Repeat("A", 10000)),
			message(t, "tab\there"),
		}
		for _, msg := range msgs {
			in.Handler(conn).ServeMLLP(ctx, mllp.ConnInfo{}, msg)
		}
		rows, err := w.q.Hl7MessageList(ctx, db.Hl7MessageListParams{TenantID: ingestTenant, MaxRows: 10})
		require.NoError(t, err)
		require.Len(t, rows, len(msgs))
		for _, r := range rows {
			require.True(t, workflows.ValidInboundHL7WorkflowID(r.WorkflowID), r.WorkflowID)
			require.Eventually(t, func() bool {
				_, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, "")
				return err == nil
			}, 30*time.Second, 100*time.Millisecond, "no run for %s", r.WorkflowID)
		}
	})

	t.Run("reconciler settles closed and missing runs", func(t *testing.T) {
		w := newStarterWorld(t, c)
		ctx := context.Background()
		// A worker runs a stand-in for InboundHL7 that ends as MSH-9 says, writing nothing.
		closedQueue := "interop-closed-" + uuid.NewString()
		wk := worker.New(c, closedQueue, worker.Options{})
		wk.RegisterWorkflowWithOptions(fakeInbound, workflow.RegisterOptions{Name: workflows.InboundHL7Name})
		require.NoError(t, wk.Start())
		t.Cleanup(wk.Stop)
		run := func(m *stored, wait bool) string {
			in := workflows.InboundHL7Input{MessageID: m.id, TenantID: ingestTenant, ConnectorID: w.conn.ID, MessageType: m.code + "^" + m.trigger}
			r, err := c.ExecuteWorkflow(ctx, workflows.InboundHL7StartOptions(m.workflowID, closedQueue, in), workflows.InboundHL7Name, in)
			require.NoError(t, err)
			if wait {
				_ = r.Get(ctx, nil)
			}
			return r.GetRunID()
		}

		missing := &stored{code: "ADT", trigger: "A01"}
		processed := &stored{status: db.Hl7MessageStatusProcessing, code: "OK", trigger: "P"}
		unmapped := &stored{status: db.Hl7MessageStatusFailed, code: "OK", trigger: "U"}
		failed := &stored{status: db.Hl7MessageStatusProcessing, code: "FAIL", trigger: "X"}
		terminated := &stored{status: db.Hl7MessageStatusProcessing, code: "HOLD", trigger: "X"}
		running := &stored{status: db.Hl7MessageStatusProcessing, code: "HOLD", trigger: "X"}
		refused := &stored{status: db.Hl7MessageStatusProcessing, workflowID: legacyLongID(w.conn.ID)}
		recent := &stored{status: db.Hl7MessageStatusProcessing, code: "FAIL", trigger: "X", age: time.Second}
		all := []*stored{missing, processed, unmapped, failed, terminated, running, refused, recent}
		for _, m := range all {
			w.insert(t, m)
		}
		attempt, err := w.q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{MessageID: processed.id, WorkflowID: processed.workflowID, RunID: "r"})
		require.NoError(t, err)
		run(processed, true)
		run(unmapped, true)
		failedRun := run(failed, true)
		run(recent, true)
		run(running, false)
		termRun := run(terminated, false)
		require.NoError(t, c.TerminateWorkflow(ctx, terminated.workflowID, termRun, "support staff"))

		w.starter.ReconcileBatch = 3
		w.starter.reconcile(ctx)
		settledFirst := 0
		for _, m := range all {
			if w.message(t, m.id).Status != m.status {
				settledFirst++
			}
		}
		require.LessOrEqual(t, settledFirst, 3, "one pass checks at most ReconcileBatch messages")
		for range 4 {
			w.starter.reconcile(ctx)
		}

		requireRun(t, c, missing.workflowID)
		require.Equal(t, db.Hl7MessageStatusPending, w.message(t, missing.id).Status, "its new run will write the status")

		got := w.message(t, processed.id)
		require.Equal(t, db.Hl7MessageStatusProcessed, got.Status)
		require.NotNil(t, got.ProcessedAt)
		att, err := w.q.Hl7ProcessingAttemptGet(ctx, attempt.ID)
		require.NoError(t, err)
		require.Equal(t, db.Hl7AttemptStatusSucceeded, att.Status)
		require.Equal(t, db.Hl7MessageStatusUnmapped, w.message(t, unmapped.id).Status)

		got = w.message(t, failed.id)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, got.Status)
		require.Equal(t, ErrCodeRunClosed, got.LastErrorCode)
		require.Contains(t, got.LastError, failedRun)
		require.Contains(t, got.LastError, "boom: the owner refused")
		require.Equal(t, []string{"Hl7MessageFailed", "Hl7MessageDeadLettered"}, w.events(t, failed.id))

		got = w.message(t, terminated.id)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, got.Status)
		require.Contains(t, got.LastError, "was terminated")

		got = w.message(t, refused.id)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, got.Status)
		require.Equal(t, ErrCodeStartRefused, got.LastErrorCode)

		require.Equal(t, db.Hl7MessageStatusProcessing, w.message(t, running.id).Status, "an open run writes its own outcome")
		require.Equal(t, db.Hl7MessageStatusProcessing, w.message(t, recent.id).Status, "a status that moved recently is left alone")

		counts := map[string]float64{}
		for _, o := range []string{"restarted", "processed", "unmapped", "dead_lettered"} {
			counts[o] = testutil.ToFloat64(w.metrics.Reconciled.WithLabelValues(o))
		}
		require.Equal(t, map[string]float64{"restarted": 1, "processed": 1, "unmapped": 1, "dead_lettered": 3}, counts)

		// Idempotent: more passes settle nothing more.
		for range 3 {
			w.starter.reconcile(ctx)
		}
		for o, n := range counts {
			require.Equal(t, n, testutil.ToFloat64(w.metrics.Reconciled.WithLabelValues(o)), o)
		}
		require.Len(t, w.events(t, failed.id), 2)
	})
}

// fakeInbound stands in for InboundHL7 in the reconciler's test: it ends as the message type
// says, without writing the message's status, as a run whose last write was lost would.
func fakeInbound(ctx workflow.Context, in workflows.InboundHL7Input) (workflows.InboundHL7Result, error) {
	switch in.MessageType {
	case "OK^P":
		return workflows.InboundHL7Result{Status: workflows.StatusProcessed}, nil
	case "OK^U":
		return workflows.InboundHL7Result{Status: workflows.StatusUnmapped}, nil
	case "FAIL^X":
		return workflows.InboundHL7Result{}, temporal.NewNonRetryableApplicationError("boom: the owner refused", "Test", nil)
	default:
		workflow.GetSignalChannel(ctx, "never").Receive(ctx, nil)
		return workflows.InboundHL7Result{}, nil
	}
}
