// Package auditlog writes the audit trail: the echo middleware that records every request of
// the rooms it guards as an AuditEvent (internal/audit builds them), and the Writer that puts
// them into PostgreSQL (audit_events) off the request path without ever dropping one.
//
// The Writer is a group commit: Record appends the built record to a local spool file (when
// SpoolDir is set) and to a bounded in-memory queue, and returns; one goroutine writes the
// queue in batches (one INSERT … SELECT FROM jsonb_to_recordset per batch, idempotent on the
// record's id), every FlushInterval or as soon as a batch is full. When the queue is full,
// Record blocks until there is room: requests slow down rather than go unaudited. A failed
// write keeps its batch and is retried with backoff for as long as it takes; Close drains the
// queue. The spool closes the last window: records of a process killed before its flush are
// in its spool directory, which the next Writer to start on the same SpoolDir adopts.
package auditlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/audit"
)

// Defaults of Writer.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 500
	DefaultFlushInterval = 150 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	// writeTimeout bounds one batch insert.
	writeTimeout = 30 * time.Second
)

// ErrClosed is returned by Record once the Writer has been closed (or was never started).
var ErrClosed = errors.New("audit writer is not running")

// Writer writes audit records to the database asynchronously, in batches, never dropping one.
// Set the fields, then Start; Close drains it.
type Writer struct {
	Pool *db.Pool
	// Observer is the server recording the events (AuditEvent.source, the server agent).
	Observer audit.Observer
	Logger   *slog.Logger
	// QueueSize bounds the records held in memory, written or not yet acknowledged; Record
	// blocks while it is full. 0 means DefaultQueueSize.
	QueueSize int
	// BatchSize is the most records one insert writes; 0 means DefaultBatchSize.
	BatchSize int
	// FlushInterval is the longest a record waits for its batch to fill; 0 means
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxBackoff bounds the wait between retries of a failed write; 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// SpoolDir, when set, is where records are appended (one file per process, under a
	// directory of its own) before Record returns, and removed once written: a process that
	// dies before writing them leaves them there, and the next Writer started on SpoolDir
	// writes them. "" keeps records in memory only.
	SpoolDir string
	// Now is the clock of Recorded; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	queue   []*item // waiting for a batch, FIFO
	flight  []*item // the batch being written
	slots   chan struct{}
	kick    chan struct{}
	closing chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	// closeCtx bounds the drain of Close.
	closeCtx atomic.Pointer[context.Context]
	started  atomic.Bool
	closed   atomic.Bool
	waiting  atomic.Int64
	spool    *spool
	metrics  *metrics
	initOnce sync.Once
}

type item struct {
	row  audit.Row
	line []byte // the row's JSON: a spool line and a batch element
	at   time.Time
	seg  *segment
}

// Start opens the spool (adopting those of dead processes) and starts writing. A Writer is
// started once.
func (w *Writer) Start(ctx context.Context) error {
	w.init()
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("audit writer already started")
	}
	var orphans []string
	if w.SpoolDir != "" {
		sp, found, err := openSpool(w.SpoolDir, w.logger())
		if err != nil {
			return fmt.Errorf("audit spool %s: %w", w.SpoolDir, err)
		}
		w.spool, orphans = sp, found
	}
	go w.run()
	if len(orphans) > 0 {
		go w.adopt(ctx, orphans)
	}
	return nil
}

func (w *Writer) init() {
	w.initOnce.Do(func() {
		if w.QueueSize <= 0 {
			w.QueueSize = DefaultQueueSize
		}
		if w.BatchSize <= 0 {
			w.BatchSize = DefaultBatchSize
		}
		if w.FlushInterval <= 0 {
			w.FlushInterval = DefaultFlushInterval
		}
		if w.MaxBackoff <= 0 {
			w.MaxBackoff = DefaultMaxBackoff
		}
		w.slots = make(chan struct{}, w.QueueSize)
		w.kick = make(chan struct{}, 1)
		w.closing = make(chan struct{})
		w.done = make(chan struct{})
		w.metrics = newMetrics(w)
	})
}

func (w *Writer) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Record builds r's AuditEvent (an id and the time are assigned when missing), spools it and
// queues it for writing. It blocks while the queue is full, whatever ctx says: a request is
// answered late rather than unaudited. It fails only when r cannot be built or the Writer is
// not running; a record spooled before Close gave up waiting is still written, by the next
// Writer on the spool.
func (w *Writer) Record(_ context.Context, r audit.Record) error {
	w.init()
	if r.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("audit record id: %w", err)
		}
		r.ID = id.String()
	}
	if r.Recorded.IsZero() {
		r.Recorded = w.now()
	}
	row, err := audit.Build(r, w.Observer)
	if err != nil {
		return err
	}
	return w.enqueue(row)
}

func (w *Writer) enqueue(row audit.Row) error {
	// waiting counts the records on their way into the queue: a closing Writer drains until
	// none is left (a record that arrives after Close began is refused below).
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	if !w.started.Load() || w.closed.Load() {
		return ErrClosed
	}
	line, err := marshalRow(row)
	if err != nil {
		return err
	}
	it := &item{row: row, line: line, at: w.now()}
	if w.spool != nil {
		w.mu.Lock()
		it.seg, err = w.spool.append(line)
		w.mu.Unlock()
		if err != nil {
			w.metrics.spoolErrors.Inc()
			w.logger().Error("audit spool: append failed; the record is held in memory only", "error", err, "audit_event_id", row.ID)
		}
	}
	select {
	case w.slots <- struct{}{}:
	default:
		w.metrics.blocked.Inc()
		start := time.Now()
		select {
		case w.slots <- struct{}{}:
			w.metrics.blockedSeconds.Add(time.Since(start).Seconds())
		case <-w.done:
			return w.lost(it)
		}
	}
	w.mu.Lock()
	if w.isDone() {
		w.mu.Unlock()
		<-w.slots
		return w.lost(it)
	}
	w.queue = append(w.queue, it)
	full := len(w.queue) >= w.BatchSize
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// lost reports a record the Writer stopped before queueing.
func (w *Writer) lost(it *item) error {
	if it.seg != nil {
		return nil // in the spool: the next Writer writes it
	}
	w.metrics.lost.Inc()
	return fmt.Errorf("audit record %s: %w before it was written", it.row.ID, ErrClosed)
}

func (w *Writer) isDone() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Close stops accepting records and writes every queued one, retrying failed writes until ctx
// ends. Records left then are counted in the error (and, with a spool, written by the next
// Writer on it). Close before Start, or twice, returns nil.
func (w *Writer) Close(ctx context.Context) error {
	w.init()
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if !w.started.Load() || w.closed.Load() {
		return nil
	}
	w.closeCtx.Store(&ctx)
	w.closed.Store(true)
	close(w.closing)
	<-w.done
	w.mu.Lock()
	left := len(w.queue) + len(w.flight)
	spooled := 0
	for _, list := range [][]*item{w.queue, w.flight} {
		for _, it := range list {
			if it.seg != nil {
				spooled++
			}
		}
	}
	w.queue, w.flight = nil, nil
	var err error
	if w.spool != nil {
		err = w.spool.close(left == 0)
	}
	w.mu.Unlock()
	if left > 0 {
		w.metrics.lost.Add(float64(left - spooled))
		return fmt.Errorf("audit writer closed with %d records not written (%d of them kept in the spool for the next start): %w",
			left, spooled, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("close audit spool: %w", err)
	}
	return nil
}

// run writes batches until Close, then drains.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.FlushInterval)
	defer t.Stop()
	closing := false
	for {
		if !closing {
			select {
			case <-w.kick:
			case <-t.C:
			case <-w.closing:
				closing = true
			}
		}
		for {
			batch := w.take()
			if len(batch) == 0 {
				break
			}
			if !w.write(batch) {
				return // Close gave up: what is left is counted by Close
			}
			if len(batch) < w.BatchSize && !closing {
				break // a partial batch: the queue is drained, wait for more
			}
		}
		if closing {
			if w.waiting.Load() == 0 && w.queued() == 0 {
				return
			}
			// Requests still waiting for room get it as batches complete; give them a moment
			// to queue.
			select {
			case <-t.C:
			case <-w.kick:
			case <-w.closeDone():
				return
			}
		}
	}
}

func (w *Writer) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// closeDone is the end of Close's patience; nil (never) before Close.
func (w *Writer) closeDone() <-chan struct{} {
	if p := w.closeCtx.Load(); p != nil {
		return (*p).Done()
	}
	return nil
}

// take moves up to BatchSize queued records into flight.
func (w *Writer) take() []*item {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.queue), w.BatchSize)
	if n == 0 {
		return nil
	}
	batch := make([]*item, n)
	copy(batch, w.queue)
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil // let the backing array go
	}
	w.flight = batch
	return batch
}

// write inserts batch, retrying with backoff until it is written; false when Close's context
// ended first. A record the database refuses as invalid (which Build is meant to make
// impossible) is isolated by splitting the batch and then dropped, logged and counted, so that
// it cannot hold up every record behind it.
func (w *Writer) write(batch []*item) bool {
	backoff := 100 * time.Millisecond
	failures := 0
	for {
		err := w.insert(batch)
		if err == nil {
			w.settle(batch)
			if failures > 0 {
				w.logger().Info("audit writer: writing again after failures", "failures", failures, "records", len(batch))
			}
			return true
		}
		if errors.Is(err, db.ErrInvalidData) || errors.Is(err, db.ErrCheckViolation) {
			return w.isolate(batch, err)
		}
		failures++
		w.metrics.failures.Inc()
		if failures == 1 || failures%20 == 0 {
			w.logger().Warn("audit writer: batch not written; holding it and retrying", "error", err,
				"records", len(batch), "failures", failures, "queue_depth", w.depth())
		}
		wait := backoff/2 + rand.N(backoff/2+1) //nolint:gosec // jitter, not a secret
		select {
		case <-time.After(wait):
		case <-w.closeDone():
			return false
		}
		backoff = min(backoff*2, w.MaxBackoff)
	}
}

func (w *Writer) isolate(batch []*item, cause error) bool {
	if len(batch) == 1 {
		w.metrics.rejected.Inc()
		w.logger().Error("audit writer: the database refuses an audit record; it is dropped", "error", cause,
			"audit_event_id", batch[0].row.ID, "tenant_id", batch[0].row.Tenant)
		w.settle(batch)
		return true
	}
	half := len(batch) / 2
	return w.write(batch[:half]) && w.write(batch[half:])
}

func (w *Writer) insert(batch []*item) error {
	size := 2
	for _, it := range batch {
		size += len(it.line) + 1
	}
	payload := make([]byte, 0, size)
	payload = append(payload, '[')
	for i, it := range batch {
		if i > 0 {
			payload = append(payload, ',')
		}
		payload = append(payload, it.line...)
	}
	payload = append(payload, ']')
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	_, err := db.New(w.Pool).AuditEventInsertBatch(ctx, payload)
	return err
}

// settle releases written records: their queue slots and spool lines.
func (w *Writer) settle(batch []*item) {
	w.mu.Lock()
	for _, it := range batch {
		if it.seg != nil && w.spool != nil {
			w.spool.done(it.seg)
		}
	}
	// batch is flight or, when isolate splits it, its first records.
	if len(w.flight) >= len(batch) && len(batch) > 0 && w.flight[0] == batch[0] {
		w.flight = w.flight[len(batch):]
	}
	if len(w.flight) == 0 {
		w.flight = nil
	}
	if w.spool != nil {
		w.spool.compact(w.logger())
	}
	w.mu.Unlock()
	w.metrics.written.Add(float64(len(batch)))
	for range batch {
		<-w.slots
	}
}

// depth is the records held: queued and in flight.
func (w *Writer) depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) + len(w.flight)
}

// oldest is the age of the oldest record not yet written; 0 when none waits.
func (w *Writer) oldest() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first *item
	switch {
	case len(w.flight) > 0:
		first = w.flight[0]
	case len(w.queue) > 0:
		first = w.queue[0]
	default:
		return 0
	}
	return w.now().Sub(first.at)
}

// adopt queues the records of dead processes' spools (through this Writer's own spool, so
// that they are never only in memory), then removes those spools.
func (w *Writer) adopt(_ context.Context, orphans []string) {
	for _, dir := range orphans {
		n, err := drainSpoolDir(dir, func(row audit.Row) error { return w.enqueue(row) })
		w.metrics.adopted.Add(float64(n))
		if err != nil {
			w.logger().Error("audit spool: adopting a dead process's records failed; they stay for the next start",
				"dir", dir, "error", err, "records_queued", n)
			continue
		}
		if n == 0 {
			continue
		}
		w.logger().Info("audit spool: records of a process that stopped before writing them are being written", "dir", dir, "records", n)
	}
}

// metrics are the Writer's Prometheus collectors; Register exposes them.
type metrics struct {
	written, failures, rejected, blocked, blockedSeconds, spoolErrors, adopted, lost prometheus.Counter
	depth, oldest                                                                    prometheus.GaugeFunc
}

func newMetrics(w *Writer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return &metrics{
		written:        counter("interop_audit_events_written_total", "Audit records written to the database."),
		failures:       counter("interop_audit_write_failures_total", "Failed attempts to write a batch of audit records (each is retried)."),
		rejected:       counter("interop_audit_events_rejected_total", "Audit records the database refused as invalid, dropped after isolating them (should stay 0)."),
		blocked:        counter("interop_audit_backpressure_total", "Requests that waited for room in the full audit queue."),
		blockedSeconds: counter("interop_audit_backpressure_seconds_total", "Time requests spent waiting for room in the audit queue."),
		spoolErrors:    counter("interop_audit_spool_errors_total", "Audit records that could not be appended to the local spool (held in memory only)."),
		adopted:        counter("interop_audit_spool_adopted_total", "Audit records found in the spool of a process that stopped before writing them."),
		lost:           counter("interop_audit_events_lost_total", "Audit records neither written nor spooled when the writer stopped (should stay 0)."),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "interop_audit_queue_depth", Help: "Audit records waiting to be written (queued and in flight).",
		}, func() float64 { return float64(w.depth()) }),
		oldest: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "interop_audit_oldest_unwritten_seconds", Help: "Age of the oldest audit record not yet written (0 when none waits).",
		}, func() float64 { return w.oldest().Seconds() }),
	}
}

// Register registers the Writer's metrics with reg.
func (w *Writer) Register(reg prometheus.Registerer) error {
	w.init()
	m := w.metrics
	for _, c := range []prometheus.Collector{m.written, m.failures, m.rejected, m.blocked, m.blockedSeconds,
		m.spoolErrors, m.adopted, m.lost, m.depth, m.oldest} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register audit metrics: %w", err)
		}
	}
	return nil
}
