package inbound

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/workflows"
)

// StartRequest asks for the InboundHL7 run of one stored message.
type StartRequest struct {
	WorkflowID string
	Input      workflows.InboundHL7Input
}

// Starter starts InboundHL7 workflows off the ACK path: ingest only needs PostgreSQL, and a
// message whose start fails (Temporal down, queue full) stays pending until the sweeper
// starts it. Starts are idempotent, so a message started twice still runs once. A start
// Temporal refuses (serviceerror.InvalidArgument: an id it will never take) dead-letters the
// message at once, whichever path tried it. Beside the sweeper, the reconciler (reconcile.go)
// settles messages whose run is closed or missing.
type Starter struct {
	Client    client.Client
	TaskQueue string
	// Pool is the database the messages are stored in; Queries, if nil, is made from it.
	Pool    *db.Pool
	Queries *db.Queries
	Metrics *Metrics
	Logger  *slog.Logger
	// Workers is the number of concurrent starters; QueueSize bounds waiting requests.
	Workers   int
	QueueSize int
	// SweepInterval is how often pending messages older than SweepAge are (re)started, at
	// most SweepBatch of them per pass.
	SweepInterval time.Duration
	SweepAge      time.Duration
	SweepBatch    int
	// ReconcileInterval is how often the reconciler checks the runs of at most ReconcileBatch
	// messages not done whose status has not moved for ReconcileAge (see reconcile).
	ReconcileInterval time.Duration
	ReconcileAge      time.Duration
	ReconcileBatch    int

	once  sync.Once
	queue chan StartRequest
	// sweepAfter and reconcileAfter are the cursors, (received_at, id), of the two passes:
	// each pass goes on after the last row the previous one handled, and wraps around at the
	// end, so no row, however many cannot be started or settled, keeps the others waiting.
	sweepAfter, reconcileAfter cursor
}

// cursor is a position in the (received_at, id) order of messages; the zero cursor is before
// the first.
type cursor struct {
	at time.Time
	id uuid.UUID
}

func (s *Starter) init() {
	s.once.Do(func() {
		if s.Workers <= 0 {
			// Eager starts wait on the server's persistence, not on CPU: more starters in
			// flight let the shards batch (bench/system: tune starter-64).
			s.Workers = 64
		}
		if s.QueueSize <= 0 {
			s.QueueSize = 10000
		}
		if s.SweepInterval <= 0 {
			s.SweepInterval = 10 * time.Second
		}
		if s.SweepAge <= 0 {
			s.SweepAge = 30 * time.Second
		}
		if s.SweepBatch <= 0 {
			s.SweepBatch = 500
		}
		if s.ReconcileInterval <= 0 {
			s.ReconcileInterval = time.Minute
		}
		if s.ReconcileAge <= 0 {
			s.ReconcileAge = 5 * time.Minute
		}
		if s.ReconcileBatch <= 0 {
			s.ReconcileBatch = 200
		}
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Queries == nil && s.Pool != nil {
			s.Queries = db.New(s.Pool)
		}
		s.queue = make(chan StartRequest, s.QueueSize)
	})
}

// Enqueue hands a request to the starters without blocking the ACK path. When the queue is
// full the message stays pending and the sweeper starts it later.
func (s *Starter) Enqueue(r StartRequest) {
	s.init()
	select {
	case s.queue <- r:
	default:
		s.count("deferred")
	}
}

// Run starts workflows from the queue, sweeps pending messages and reconciles messages with
// their runs until ctx ends.
func (s *Starter) Run(ctx context.Context) {
	s.init()
	var wg sync.WaitGroup
	for range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-s.queue:
					s.start(ctx, r, nil) // a failed start stays pending: the sweeper retries it
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(s.ReconcileInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				s.reconcile(ctx)
			}
		}
	}()
	ticker := time.NewTicker(s.SweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-ticker.C:
			s.sweep(ctx)
		}
	}
}

// startOutcome is what a start attempt means for the message and for the pass trying it.
type startOutcome int

const (
	// startOK: the run is started.
	startOK startOutcome = iota
	// startExisting: the run was already there (started by the ingest path or an earlier
	// pass, and not yet far enough to mark its message processing).
	startExisting
	// startRefused: Temporal refuses this start and always will (the message is dead-lettered).
	startRefused
	// startUnavailable: Temporal is unreachable or overloaded; later starts would fail the
	// same way, one timeout each, so a pass stops.
	startUnavailable
	// startFailed: this start failed for another reason; the message stays pending and the
	// pass goes on.
	startFailed
)

// classifyStart tells a start Temporal refuses for this message (InvalidArgument: an id too
// long, a value it will not take) from Temporal being unreachable or overloaded.
func classifyStart(err error) startOutcome {
	var (
		invalid     *serviceerror.InvalidArgument
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
		canceled    *serviceerror.Canceled
	)
	switch {
	case err == nil:
		return startOK
	case isAlreadyStarted(err):
		return startExisting
	case errors.As(err, &invalid):
		return startRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &unavailable), errors.As(err, &deadline), errors.As(err, &exhausted), errors.As(err, &canceled):
		return startUnavailable
	default:
		return startFailed
	}
}

// start starts the run of r. seen is the status_changed_at the caller read the message with
// (nil: not read); a refused start dead-letters the message only if its status has not moved
// since.
func (s *Starter) start(ctx context.Context, r StartRequest, seen *time.Time) startOutcome {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := StartInbound(sctx, s.Client, s.TaskQueue, r)
	o := classifyStart(err)
	switch {
	case err == nil:
		s.count("started")
	case o == startExisting:
		s.count("existing")
	case o == startRefused:
		s.count("refused")
		reason := "Temporal refused to start its workflow, and will refuse every retry: " + err.Error()
		s.Logger.Error("start inbound workflow refused; dead-lettering the message", "workflow_id", r.WorkflowID, "message_id", r.Input.MessageID, "error", err)
		if _, derr := s.settle(ctx, settlement{
			MessageID: r.Input.MessageID, Seen: seen, Status: db.Hl7MessageStatusDeadLettered, Code: ErrCodeStartRefused, Reason: reason,
		}); derr != nil {
			s.Logger.Warn("dead-letter a message whose start was refused; the sweeper will try again", "message_id", r.Input.MessageID, "error", derr)
		}
	default:
		s.count("error")
		s.Logger.Warn("start inbound workflow; the sweeper will retry", "workflow_id", r.WorkflowID, "message_id", r.Input.MessageID, "error", err)
	}
	return o
}

// sweep (re)starts messages acknowledged but still pending, e.g. after a Temporal outage,
// going on from the previous pass's cursor. A message whose start is refused is dead-lettered,
// one whose start fails otherwise is skipped (and tried again next time round); only
// Temporal being unreachable stops the pass, before the message that found it so.
func (s *Starter) sweep(ctx context.Context) {
	s.init()
	rows, err := s.Queries.Hl7MessageListStale(ctx, db.Hl7MessageListStaleParams{
		ReceivedBefore: time.Now().Add(-s.SweepAge), AfterAt: s.sweepAfter.at, AfterID: s.sweepAfter.id,
		MaxRows: clampInt32(s.SweepBatch),
	})
	if err != nil {
		s.Logger.Warn("sweep pending messages", "error", err)
		return
	}
	var started, existing, refused, skipped int
	for _, m := range rows {
		if ctx.Err() != nil {
			return
		}
		changed := m.StatusChangedAt
		switch s.start(ctx, StartRequest{WorkflowID: m.WorkflowID, Input: workflows.InboundHL7Input{
			MessageID: m.ID, TenantID: m.TenantID, ConnectorID: m.ConnectorID, MessageType: workflows.MessageType(m.MessageCode, m.TriggerEvent),
		}}, &changed) {
		case startUnavailable:
			// Trying the remaining rows one timeout at a time would hold the sweep for
			// minutes; the next pass starts again from this message.
			s.Logger.Warn("sweep stopped early; Temporal is not accepting starts", "remaining", len(rows)-started-existing-refused-skipped)
			return
		case startRefused:
			refused++
		case startFailed:
			skipped++
		case startExisting:
			existing++
		default:
			started++
		}
		s.sweepAfter = cursor{at: m.ReceivedAt, id: m.ID}
	}
	if len(rows) < s.SweepBatch {
		s.sweepAfter = cursor{} // the end: the next pass starts from the oldest again
	}
	if len(rows) > 0 {
		s.Logger.Info("swept pending messages", "count", len(rows), "started", started, "already_running", existing, "dead_lettered", refused, "skipped", skipped)
	}
}

func clampInt32(n int) int32 {
	return int32(min(max(n, 0), math.MaxInt32)) //nolint:gosec // G115: clamped to the int32 range on this line
}

// StartInbound starts (or finds) the InboundHL7 run of a message. A running run is reused and
// a closed one is not re-run: reprocessing is a separate, explicit start.
func StartInbound(ctx context.Context, c client.Client, taskQueue string, r StartRequest) error {
	_, err := c.ExecuteWorkflow(ctx, workflows.InboundHL7StartOptions(r.WorkflowID, taskQueue, r.Input), workflows.InboundHL7Name, r.Input)
	return err
}

func isAlreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}

func (s *Starter) count(outcome string) {
	if s.Metrics != nil {
		s.Metrics.WorkflowStarts.WithLabelValues(outcome).Inc()
	}
}
