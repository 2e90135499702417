package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/gateway/inbound"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/worker"
	"github.com/nhp/interop/workflows"
)

// e2eOptions are the knobs of one end-to-end configuration. The zero value of a field means
// what `interop dev` does.
type e2eOptions struct {
	name       string
	shards     int32 // history shards (fixed when the database is created); 0: the service's 4
	eager      bool  // system.enableEagerWorkflowStart (the starter always asks for it)
	wfPollers  int   // SDK MaxConcurrentWorkflowTaskPollers; 0: SDK default (2)
	actPollers int   // SDK MaxConcurrentActivityTaskPollers; 0: SDK default (2)
	maxActs    int   // SDK MaxConcurrentActivityExecutionSize; 0: SDK default (1000)
	// stickyTimeout is the SDK's StickyScheduleToStartTimeout; 0: SDK default (5 s).
	stickyTimeout time.Duration
	pipeline      string
	dc            map[string]any // dynamic config over temporaldev's defaults
	// poolMaxConns sizes the service's pgx pool; 0: db.Open's default (db.DefaultMaxConns).
	poolMaxConns int
	gogc         int  // GOGC for the run; 0: leave as is
	syncOff      bool // ALTER DATABASE <temporal dbs> SET synchronous_commit = off (diagnostic only)
	logSQL       bool // ALTER DATABASE <temporal dbs> SET log_statement = 'all' (diagnostic only)
	starters     int  // concurrent starters of the no-op baseline
	// starterWorkers is inbound.Starter.Workers, the goroutines starting InboundHL7 runs; 0:
	// the gateway's default (64).
	starterWorkers int
}

func (o e2eOptions) describe() string {
	var parts []string
	parts = append(parts, fmt.Sprintf("shards=%d", o.shards), fmt.Sprintf("eager=%t", o.eager))
	if o.wfPollers > 0 || o.actPollers > 0 {
		parts = append(parts, fmt.Sprintf("pollers=%d/%d", o.wfPollers, o.actPollers))
	}
	if o.maxActs > 0 {
		parts = append(parts, fmt.Sprintf("maxActs=%d", o.maxActs))
	}
	if o.stickyTimeout > 0 {
		parts = append(parts, "sticky="+o.stickyTimeout.String())
	}
	if o.pipeline != pipeProduction {
		parts = append(parts, "pipeline="+o.pipeline)
	}
	if o.poolMaxConns > 0 {
		parts = append(parts, fmt.Sprintf("pool=%d", o.poolMaxConns))
	}
	if o.gogc > 0 {
		parts = append(parts, fmt.Sprintf("GOGC=%d", o.gogc))
	}
	if o.starters != 48 {
		parts = append(parts, fmt.Sprintf("noop starters=%d", o.starters))
	}
	if o.starterWorkers > 0 {
		parts = append(parts, fmt.Sprintf("starter.Workers=%d", o.starterWorkers))
	}
	if o.syncOff {
		parts = append(parts, "temporal synchronous_commit=off")
	}
	if o.logSQL {
		parts = append(parts, "temporal log_statement=all")
	}
	for _, k := range slices.Sorted(maps.Keys(o.dc)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, o.dc[k]))
	}
	return strings.Join(parts, " ")
}

// stack is `interop dev` assembled from its building blocks, in process: a fresh service
// database, the embedded Temporal server on fresh databases, the worker, and the ingest path
// (Ingestor + Starter behind an mllp.Server). The UI, HTTP gateway and retention are left out.
type stack struct {
	opts     e2eOptions
	names    []string // service, temporal, visibility databases
	svc      *serviceDB
	srv      *temporaldev.Server
	tc       client.Client
	workers  []sdkworker.Worker
	mllp     *mllp.Server
	mllpDone chan error
	addr     string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stats    *statsConn
	tconn    *pgx.Conn // to the Temporal database, to count closed runs
	sconn    *pgx.Conn // to the service database, to count processed messages
	logger   *slog.Logger
	prevGC   int
}

func startStack(ctx context.Context, o e2eOptions, queueSize int, logger *slog.Logger) (st *stack, err error) {
	base := uniqueName()
	st = &stack{opts: o, names: []string{base, base + "_temporal", base + "_visibility"}, logger: logger, prevGC: -1}
	defer func() {
		if err != nil {
			st.stop()
			st = nil
		}
	}()
	if o.gogc > 0 {
		st.prevGC = debug.SetGCPercent(o.gogc)
	}
	if o.syncOff || o.logSQL {
		// Created here so that the settings apply to every connection the server opens.
		for _, n := range st.names[1:] {
			if err := createDatabase(ctx, n); err != nil {
				return st, err
			}
			if o.syncOff {
				if err := maintenanceExec(ctx, "ALTER DATABASE "+pgx.Identifier{n}.Sanitize()+" SET synchronous_commit = off"); err != nil {
					return st, err
				}
			}
			if o.logSQL {
				if err := maintenanceExec(ctx, "ALTER DATABASE "+pgx.Identifier{n}.Sanitize()+" SET log_statement = 'all'"); err != nil {
					return st, err
				}
			}
		}
		logger.Warn("temporal databases created by the bench", "databases", strings.Join(st.names[1:], ", "), "synchronous_commit_off", o.syncOff, "log_statement_all", o.logSQL)
	}
	ln, port, err := listen()
	if err != nil {
		return st, err
	}
	if st.svc, err = newServiceDB(ctx, base, o.poolMaxConns, port); err != nil {
		_ = ln.Close()
		return st, err
	}
	dc := maps.Clone(o.dc)
	if dc == nil {
		dc = map[string]any{}
	}
	dc["system.enableEagerWorkflowStart"] = o.eager
	began := time.Now()
	st.srv, err = temporaldev.Start(ctx, temporaldev.Options{
		DatabaseURL:            clusterURL(),
		DatabaseName:           st.names[1],
		VisibilityDatabaseName: st.names[2],
		FrontendAddr:           "127.0.0.1:0",
		DisableUI:              true,
		Namespace:              "default",
		SearchAttributes:       workflows.SearchAttributes(),
		NumHistoryShards:       o.shards,
		DynamicConfig:          dc,
		Logger:                 logger.With("component", "temporal-server"),
	})
	if err != nil {
		_ = ln.Close()
		return st, fmt.Errorf("start embedded temporal: %w", err)
	}
	logger.Info("embedded temporal up", "variant", o.name, "elapsed", time.Since(began).Round(time.Millisecond))
	if st.tc, err = st.srv.NewClient(ctx, client.Options{}); err != nil {
		_ = ln.Close()
		return st, err
	}

	// The no-op baseline's worker, with the same SDK options as the pipeline's.
	sdkOpts := sdkworker.Options{
		MaxConcurrentActivityExecutionSize: o.maxActs,
		MaxConcurrentActivityTaskPollers:   o.actPollers,
		MaxConcurrentWorkflowTaskPollers:   o.wfPollers,
		StickyScheduleToStartTimeout:       o.stickyTimeout,
		WorkflowPanicPolicy:                sdkworker.BlockWorkflow,
	}
	nw := sdkworker.New(st.tc, noopTaskQueue, sdkOpts)
	nw.RegisterWorkflowWithOptions(benchNoop, workflow.RegisterOptions{Name: noopWorkflow})
	nw.RegisterActivity(noopActivity)
	st.workers = append(st.workers, nw)

	// The pipeline's worker: production as `interop dev` builds it, or a prototype.
	acts := &activities.Activities{
		Pool: st.svc.pool, Store: &store.Store{Pool: st.svc.pool}, HTTP: &http.Client{Timeout: 30 * time.Second},
		DefaultOwner: routing.Builtin, Logger: logger,
	}
	taskQueue := "interop"
	switch {
	case o.pipeline == pipeProduction && o.stickyTimeout == 0:
		st.workers = append(st.workers, worker.New(st.tc, taskQueue, acts, worker.Options{
			MaxConcurrentActivities: o.maxActs, ActivityPollers: o.actPollers, WorkflowPollers: o.wfPollers,
		}))
	case o.pipeline == pipeProduction:
		// An SDK option worker.Options does not offer: the same registration, by hand.
		w := sdkworker.New(st.tc, taskQueue, sdkOpts)
		worker.Register(w, acts)
		st.workers = append(st.workers, w)
	default:
		proto, err := newProto(acts, o.pipeline)
		if err != nil {
			_ = ln.Close()
			return st, err
		}
		taskQueue = protoTaskQueue
		pw := sdkworker.New(st.tc, taskQueue, sdkOpts)
		pw.RegisterWorkflowWithOptions(proto.run, workflow.RegisterOptions{Name: workflows.InboundHL7Name})
		pw.RegisterActivity(acts)
		st.workers = append(st.workers, pw)
	}
	for _, w := range st.workers {
		if err := w.Start(); err != nil {
			_ = ln.Close()
			return st, fmt.Errorf("start worker: %w", err)
		}
	}

	// The ingest path, as runGateway wires it.
	runCtx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	starter := &inbound.Starter{
		Client: st.tc, TaskQueue: taskQueue, Pool: st.svc.pool, Logger: logger,
		QueueSize: queueSize, // the default (10,000) unless -n is larger: no start waits for the sweeper
		Workers:   o.starterWorkers,
	}
	// The goroutines capture what they use, not the named result st.
	wg, done := &st.wg, make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		starter.Run(runCtx)
	}()
	in := &inbound.Ingestor{Pool: st.svc.pool, Starter: starter, Logger: logger}
	c := inbound.Connector{ID: st.svc.connector.ID, TenantID: st.svc.connector.TenantID, Name: st.svc.connector.Name}
	srv := newMLLPServer(in, c, logger)
	st.mllp, st.mllpDone = srv, done
	st.addr = ln.Addr().String()
	go func() { done <- srv.Serve(ln) }()

	if st.stats, err = newStatsConn(ctx, st.names...); err != nil {
		return st, err
	}
	if st.sconn, err = pgx.Connect(ctx, st.svc.url); err != nil {
		return st, err
	}
	turl, err := withDatabase(clusterURL(), st.names[1], nil)
	if err != nil {
		return st, err
	}
	if st.tconn, err = pgx.Connect(ctx, turl); err != nil {
		return st, err
	}
	return st, nil
}

// stop tears the stack down in the order runGateway and devCmd do, then drops the databases.
func (st *stack) stop() {
	if st.mllp != nil {
		_ = st.mllp.Close()
		<-st.mllpDone //nolint:errcheck // Serve's answer to Close: ErrServerClosed
	}
	if st.cancel != nil {
		st.cancel()
		st.wg.Wait()
	}
	for _, w := range st.workers {
		w.Stop()
	}
	for _, c := range []*pgx.Conn{st.sconn, st.tconn} {
		if c != nil {
			_ = c.Close(context.Background())
		}
	}
	if st.stats != nil {
		st.stats.close()
	}
	if st.tc != nil {
		st.tc.Close()
	}
	if st.srv != nil {
		if err := st.srv.Stop(); err != nil {
			st.logger.Warn("stop embedded temporal", "error", err)
		}
	}
	if st.svc != nil {
		st.svc.close()
	}
	for _, n := range st.names {
		if err := dropDatabase(n); err != nil {
			st.logger.Warn("cleanup", "error", err)
		}
	}
	if st.prevGC >= 0 {
		debug.SetGCPercent(st.prevGC)
	}
}

// phase is one measured run of n items (messages or baseline workflows) to completion.
type phase struct {
	n        int
	done     int // items completed when the phase ended
	failed   int // messages dead-lettered or failed
	t0, tEnd time.Time
	complete bool
	// Resource counters at the first send and just after the last completion.
	sStart, sEnd *snapshot
	// sendElapsed is how long the MLLP sends took (E2E only).
	sendElapsed time.Duration
	// hist summarises the histories of a sample of the phase's runs.
	hist histStats
}

// histStats counts history events over a sample of runs.
type histStats struct {
	runs, events, wftTimeouts, wftFailed, actTimeouts, wfts int
}

func (h histStats) String() string {
	if h.runs == 0 {
		return "no histories sampled"
	}
	n := float64(h.runs)
	return fmt.Sprintf("%.1f events, %.1f workflow tasks, %.2f WFT timeouts, %.2f WFT failures, %.2f activity timeouts per run (%d sampled)",
		float64(h.events)/n, float64(h.wfts)/n, float64(h.wftTimeouts)/n, float64(h.wftFailed)/n, float64(h.actTimeouts)/n, h.runs)
}

// sampleHistories reads the histories of up to 20 of ids, spread over the phase.
func (st *stack) sampleHistories(ctx context.Context, ids []string) histStats {
	var h histStats
	step := max(len(ids)/20, 1)
	for i := 0; i < len(ids); i += step {
		it := st.tc.GetWorkflowHistory(ctx, ids[i], "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h.runs++
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			h.events++
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				h.wfts++
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				h.wftTimeouts++
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				h.wftFailed++
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				h.actTimeouts++
			}
		}
	}
	return h
}

// rate is items per second from the first send (or start) to the last completion. The system
// works breadth-first on a burst (every run advances a step before any finishes), so
// completions come in a wave at the end and only the whole interval measures the work rate.
func (p phase) rate() float64 {
	if d := p.tEnd.Sub(p.t0).Seconds(); d > 0 {
		return float64(p.done) / d
	}
	return 0
}

// usage is what the whole phase cost, and the items it completed.
func (p phase) usage() (usage, int, bool) {
	if p.sStart == nil || p.sEnd == nil {
		return usage{}, 0, false
	}
	return diff(*p.sStart, *p.sEnd), p.done, true
}

// track polls count every 100 ms until it reaches n or the time budget is spent. The caller
// took p.sStart at p.t0; track takes p.sEnd a moment after the end, once the last transactions'
// statistics are flushed (backends report them about once a second).
func (st *stack) track(ctx context.Context, p *phase, budget time.Duration, count func(context.Context) (done, failed int, err error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		done, failed, err := count(ctx)
		if err != nil {
			return err
		}
		p.done, p.failed = done, failed
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			st.logger.Info("progress", "elapsed", time.Since(p.t0).Round(100*time.Millisecond), "done", done, "failed", failed, "of", p.n)
		}
		end := done+failed >= p.n
		if end || time.Since(p.t0) > budget {
			p.tEnd, p.complete = time.Now(), end && failed == 0
			time.Sleep(1500 * time.Millisecond)
			s := st.stats.take(ctx)
			p.sEnd = &s
			return nil
		}
	}
}

// runNoop starts n no-op workflows from o.starters goroutines (eager start requested, as the
// gateway does) and waits until all are closed, counted in the Temporal database's
// current_executions (written in the completing transaction itself, unlike visibility).
func (st *stack) runNoop(ctx context.Context, prefix string, n int, budget time.Duration) (phase, error) {
	p := phase{n: n}
	ids := make(chan int, n)
	for i := range n {
		ids <- i
	}
	close(ids)
	var wg sync.WaitGroup
	errc := make(chan error, st.opts.starters)
	s0 := st.stats.take(ctx)
	p.sStart = &s0
	p.t0 = time.Now()
	for range st.opts.starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := st.tc.ExecuteWorkflow(sctx, client.StartWorkflowOptions{
					ID: fmt.Sprintf("%s%07d", prefix, i), TaskQueue: noopTaskQueue, EnableEagerStart: true,
				}, noopWorkflow)
				cancel()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	err := st.track(ctx, &p, budget, func(ctx context.Context) (int, int, error) {
		var done, failed int
		err := st.tconn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status > 2)
			FROM current_executions WHERE workflow_id LIKE $1`, prefix+"%").Scan(&done, &failed)
		return done, failed, err
	})
	wg.Wait()
	var runIDs []string
	for i := range n {
		runIDs = append(runIDs, fmt.Sprintf("%s%07d", prefix, i))
	}
	p.hist = st.sampleHistories(ctx, runIDs)
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	return p, errors.Join(append(errs, err)...)
}

// runE2E sends n distinct messages over conns MLLP connections and waits until every one is
// processed into the built-in store (hl7_messages.status = 'processed').
func (st *stack) runE2E(ctx context.Context, prefix string, n, conns int, budget time.Duration) (phase, error) {
	p := phase{n: n}
	msgs := messages(prefix, n)
	sendErr := make(chan error, 1)
	s0 := st.stats.take(ctx)
	p.sStart = &s0
	p.t0 = time.Now()
	go func() {
		res, err := sendMLLP(ctx, st.addr, msgs, conns)
		p.sendElapsed = res.elapsed
		sendErr <- err
	}()
	err := st.track(ctx, &p, budget, func(ctx context.Context) (int, int, error) {
		var done, failed int
		err := st.sconn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'processed'),
			count(*) FILTER (WHERE status IN ('failed', 'dead_lettered'))
			FROM hl7_messages WHERE message_control_id LIKE $1`, prefix+"%").Scan(&done, &failed)
		return done, failed, err
	})
	serr := <-sendErr // after the sender wrote p.sendElapsed
	if err == nil && serr == nil {
		var ids []string
		rows, qerr := st.sconn.Query(ctx, `SELECT workflow_id FROM hl7_messages WHERE message_control_id LIKE $1 ORDER BY message_control_id`, prefix+"%")
		if qerr == nil {
			ids, qerr = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if qerr == nil {
			p.hist = st.sampleHistories(ctx, ids)
		}
	}
	return p, errors.Join(serr, err)
}

// e2eResult is one configuration measured: baseline and pipeline on the same server, in
// alternating rounds (noop, e2e, noop, e2e, …).
type e2eResult struct {
	opts  e2eOptions
	names []string // service, temporal, visibility databases
	// baselines and pipelines are the phases of each round.
	baselines []phase
	pipelines []phase
	err       error
}

func phaseRates(ps []phase) []float64 {
	var out []float64
	for _, p := range ps {
		out = append(out, p.rate())
	}
	return out
}

// baseRate and pipeRate are the medians of the rounds' rates.
func (r e2eResult) baseRate() float64 { return median(phaseRates(r.baselines)) }
func (r e2eResult) pipeRate() float64 { return median(phaseRates(r.pipelines)) }

func (r e2eResult) ratio() float64 {
	if b := r.baseRate(); b > 0 {
		return r.pipeRate() / b
	}
	return 0
}

// runE2EVariant starts a stack for o, warms it up, measures the no-op baseline and the
// pipeline in alternating rounds of cfg.n/cfg.e2eRounds items each, and tears it down.
func runE2EVariant(ctx context.Context, cfg config, o e2eOptions, logger *slog.Logger) (res e2eResult) {
	res.opts = o
	per := max(cfg.n/cfg.e2eRounds, 20)
	st, err := startStack(ctx, o, max(10000, per+1000), logger)
	if err != nil {
		res.err = err
		return res
	}
	defer st.stop()
	res.names = st.names
	// Warm-up (not measured): connections, caches, the first workflow tasks.
	if _, err := st.runNoop(ctx, "warm-", 50, time.Minute); err != nil {
		res.err = fmt.Errorf("warm-up: %w", err)
		return res
	}
	if w, err := st.runE2E(ctx, "WARM", 20, min(cfg.conns, 4), time.Minute); err != nil || !w.complete {
		res.err = fmt.Errorf("warm-up: %d/%d processed, %d failed: %v", w.done, w.n, w.failed, err)
		return res
	}
	for r := range cfg.e2eRounds {
		b, err := st.runNoop(ctx, fmt.Sprintf("noop-%d-", r), per, cfg.duration)
		if err != nil {
			res.err = fmt.Errorf("no-op baseline: %w", err)
			return res
		}
		res.baselines = append(res.baselines, b)
		logger.Info("e2e baseline", "variant", o.name, "round", r+1, "runs_per_s", fmt.Sprintf("%.1f", b.rate()))
		if cfg.baselineOnly {
			res.pipelines = append(res.pipelines, phase{})
			continue
		}
		p, err := st.runE2E(ctx, fmt.Sprintf("E%d-", r), per, cfg.conns, cfg.duration)
		if err != nil {
			res.err = fmt.Errorf("pipeline: %w", err)
			return res
		}
		res.pipelines = append(res.pipelines, p)
		logger.Info("e2e pipeline", "variant", o.name, "round", r+1, "msgs_per_s", fmt.Sprintf("%.1f", p.rate()), "failed", p.failed)
	}
	return res
}
