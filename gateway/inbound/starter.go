package inbound

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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
// starts it. Starts are idempotent, so a message started twice still runs once.
type Starter struct {
	Client    client.Client
	TaskQueue string
	Queries   *db.Queries
	Metrics   *Metrics
	Logger    *slog.Logger
	// Workers is the number of concurrent starters; QueueSize bounds waiting requests.
	Workers   int
	QueueSize int
	// SweepInterval is how often pending messages older than SweepAge are (re)started.
	SweepInterval time.Duration
	SweepAge      time.Duration

	once  sync.Once
	queue chan StartRequest
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
		if s.Logger == nil {
			s.Logger = slog.Default()
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

// Run starts workflows from the queue and sweeps pending messages until ctx ends.
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
					_ = s.start(ctx, r) // a failed start stays pending: the sweeper retries it
				}
			}
		}()
	}
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

func (s *Starter) start(ctx context.Context, r StartRequest) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := StartInbound(ctx, s.Client, s.TaskQueue, r)
	switch {
	case err == nil:
		s.count("started")
	case isAlreadyStarted(err):
		s.count("existing")
		return nil
	default:
		s.count("error")
		s.Logger.Warn("start inbound workflow; the sweeper will retry", "workflow_id", r.WorkflowID, "message_id", r.Input.MessageID, "error", err)
	}
	return err
}

// sweep restarts messages acknowledged but still pending, e.g. after a Temporal outage.
func (s *Starter) sweep(ctx context.Context) {
	rows, err := s.Queries.Hl7MessageListStale(ctx, db.Hl7MessageListStaleParams{
		ReceivedBefore: time.Now().Add(-s.SweepAge), MaxRows: 500,
	})
	if err != nil {
		s.Logger.Warn("sweep pending messages", "error", err)
		return
	}
	for _, m := range rows {
		if ctx.Err() != nil {
			return
		}
		err := s.start(ctx, StartRequest{WorkflowID: m.WorkflowID, Input: workflows.InboundHL7Input{
			MessageID: m.ID, TenantID: m.TenantID, ConnectorID: m.ConnectorID, MessageType: workflows.MessageType(m.MessageCode, m.TriggerEvent),
		}})
		if err != nil {
			// Temporal is still unreachable: one failure is enough to know, and trying the
			// remaining rows one timeout at a time would hold the sweep for minutes.
			s.Logger.Warn("sweep stopped early; Temporal is not accepting starts", "remaining", len(rows))
			return
		}
	}
	if len(rows) > 0 {
		s.Logger.Info("swept pending messages", "count", len(rows))
	}
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
