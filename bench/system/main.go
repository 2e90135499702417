// Command system measures the Interop Service as a whole, always against a baseline measured
// in the same run on the same machine and PostgreSQL (the machine is shared and noisy, so only
// the ratios travel):
//
//   - ack: the ACK path alone (PostgreSQL + inbound.Ingestor behind a real mllp.Server, no
//     Temporal), 1 connection then -conns connections, against raw inserts of the same
//     payloads (bare Hl7MessageInsert, and insert + outbox event in one transaction);
//   - e2e: received → processed into the built-in store, with the embedded Temporal server,
//     the worker and the ingest path assembled as `interop dev` does, against a no-op workflow
//     (one no-op local activity) on the same server;
//   - tune: the e2e measurement for a list of configurations (-variants), each on fresh
//     databases.
//
// Every run creates its databases (bench_<rand>, _temporal, _visibility) in the cluster of
// TEST_DATABASE_URL (else DATABASE_URL, else postgres://postgres@127.0.0.1:5432) and drops
// them at the end. The exit status is 0 whatever the figures, non-zero only on failure.
//
//	go run ./bench/system -scenario all
//	go run ./bench/system -scenario tune -n 1000 -variants default,eager-off,la-all
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

type config struct {
	n         int
	conns     int
	duration  time.Duration
	scenario  string
	rounds    int
	e2eRounds int
	variants  string
	e2e       e2eOptions
	verbose   bool
	// baselineOnly measures the no-op baseline alone.
	baselineOnly bool
}

func main() {
	var cfg config
	var dc string
	var shards int
	flag.IntVar(&cfg.n, "n", 1000, "messages per measurement (ACK: per round and mode; E2E: messages, and baseline workflows, split over -e2e-rounds)")
	flag.IntVar(&cfg.conns, "conns", 8, "concurrent MLLP connections (ACK: measured after 1 connection; E2E: used to send)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Minute, "time budget of one E2E phase; a phase still running then is reported as incomplete")
	flag.StringVar(&cfg.scenario, "scenario", "all", "ack, e2e, all (ack then e2e) or tune")
	flag.IntVar(&cfg.rounds, "rounds", 3, "ACK rounds, each measuring every mode once, interleaved")
	flag.IntVar(&cfg.e2eRounds, "e2e-rounds", 2, "E2E rounds (no-op baseline then pipeline, n/e2e-rounds items each), alternating")
	flag.StringVar(&cfg.variants, "variants", "all", "tune: comma-separated variant names, or all ("+strings.Join(variantNames(), ", ")+")")
	flag.IntVar(&shards, "shards", 4, "E2E: history shards (the service's default is 4)")
	flag.BoolVar(&cfg.e2e.eager, "eager", true, "E2E: eager workflow start (dynamic config system.enableEagerWorkflowStart)")
	flag.IntVar(&cfg.e2e.wfPollers, "wf-pollers", 0, "E2E: workflow task pollers per worker (0: SDK default, 2)")
	flag.IntVar(&cfg.e2e.actPollers, "act-pollers", 0, "E2E: activity task pollers per worker (0: SDK default, 2)")
	flag.IntVar(&cfg.e2e.maxActs, "max-acts", 0, "E2E: MaxConcurrentActivityExecutionSize (0: SDK default, 1000)")
	flag.DurationVar(&cfg.e2e.stickyTimeout, "sticky-timeout", 0, "E2E: StickyScheduleToStartTimeout (0: SDK default, 5s)")
	flag.StringVar(&cfg.e2e.pipeline, "pipeline", pipeProduction, "E2E: "+strings.Join(pipelines, ", "))
	flag.StringVar(&dc, "dc", "", "E2E: dynamic config, key=value[,key=value…] (ints, floats and bools are typed)")
	flag.IntVar(&cfg.e2e.poolMaxConns, "pool-max-conns", 0, "ACK and E2E: service pgx pool size (0: db.Open's default, db.DefaultMaxConns)")
	flag.IntVar(&cfg.e2e.gogc, "gogc", 0, "E2E: GOGC during the run (0: unchanged)")
	flag.BoolVar(&cfg.e2e.syncOff, "sync-off", false, "E2E: synchronous_commit=off on the Temporal databases (diagnostic, not a recommendation)")
	flag.BoolVar(&cfg.e2e.logSQL, "log-temporal-sql", false, "E2E: log_statement=all on the Temporal databases, to count the server's statements in the PostgreSQL log (diagnostic)")
	flag.IntVar(&cfg.e2e.starters, "starters", 48, "E2E baseline: concurrent starters")
	flag.IntVar(&cfg.e2e.starterWorkers, "starter-workers", 0, "E2E: inbound.Starter.Workers (0: its default, 64)")
	flag.BoolVar(&cfg.verbose, "v", false, "log progress")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&cfg.baselineOnly, "baseline-only", false, "E2E/tune: measure the no-op baseline only")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	cfg.e2e.shards = int32(shards) //nolint:gosec // G115: a flag naming a handful of history shards
	cfg.e2e.name = "flags"
	var err error
	if cfg.e2e.dc, err = parseDC(dc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.n < 20 || cfg.conns < 1 || cfg.rounds < 1 || cfg.e2eRounds < 1 {
		fmt.Fprintln(os.Stderr, "want -n ≥ 20, -conns ≥ 1, -rounds ≥ 1, -e2e-rounds ≥ 1")
		os.Exit(2)
	}
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "bench/system:", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	printContext(ctx)
	var errs []error
	if cfg.scenario == "ack" || cfg.scenario == "all" {
		rep, err := runACK(ctx, cfg, logger)
		if err != nil {
			return fmt.Errorf("ack scenario: %w", err)
		}
		printACK(rep)
	}
	switch cfg.scenario {
	case "e2e", "all":
		o := cfg.e2e
		o.name = "configured"
		res := runE2EVariant(ctx, cfg, o, logger)
		printE2E(cfg, []e2eResult{res})
		if res.err != nil {
			errs = append(errs, res.err)
		}
	case "tune":
		var results []e2eResult
		for _, v := range selectVariants(cfg.variants) {
			if ctx.Err() != nil {
				break
			}
			o := cfg.e2e
			o.name = v.name
			v.apply(&o)
			fmt.Printf("… %s: %s\n", v.name, o.describe())
			res := runE2EVariant(ctx, cfg, o, logger)
			if res.err != nil {
				fmt.Printf("    failed: %v\n", res.err)
				errs = append(errs, fmt.Errorf("%s: %w", v.name, res.err))
			} else {
				fmt.Printf("    baseline %.1f/s, pipeline %.1f/s, ratio %.0f%%\n", res.baseRate(), res.pipeRate(), 100*res.ratio())
			}
			results = append(results, res)
		}
		printE2E(cfg, results)
	case "ack":
	default:
		return fmt.Errorf("unknown -scenario %q", cfg.scenario)
	}
	return errors.Join(errs...)
}

// --- tuning variants -------------------------------------------------------------------------

type variant struct {
	name  string
	apply func(*e2eOptions)
}

// variants are applied over the flags, one change at a time from the service's configuration
// (4 shards, eager start, SDK default pollers, production workflow), then combined.
var variants = []variant{
	{"default", func(*e2eOptions) {}},
	{"eager-off", func(o *e2eOptions) { o.eager = false }},
	{"shards-1", func(o *e2eOptions) { o.shards = 1 }},
	{"shards-8", func(o *e2eOptions) { o.shards = 8 }},
	{"shards-16", func(o *e2eOptions) { o.shards = 16 }},
	{"pollers-8", func(o *e2eOptions) { o.wfPollers, o.actPollers = 8, 8 }},
	{"max-acts-16", func(o *e2eOptions) { o.maxActs = 16 }},
	{"sticky-60s", func(o *e2eOptions) { o.stickyTimeout = time.Minute }},
	{"starters-16", func(o *e2eOptions) { o.starters = 16 }},
	{"starters-128", func(o *e2eOptions) { o.starters = 128 }},
	{"starter-64", func(o *e2eOptions) { o.starterWorkers = 64 }},
	{"pool-32", func(o *e2eOptions) { o.poolMaxConns = 32 }},
	{"partitions-1", func(o *e2eOptions) {
		o.dc = withDC(o.dc, map[string]any{"matching.numTaskqueueReadPartitions": 1, "matching.numTaskqueueWritePartitions": 1})
	}},
	{"shard-io-8", func(o *e2eOptions) { o.dc = withDC(o.dc, map[string]any{"history.shardIOConcurrency": 8}) }},
	{"gogc-400", func(o *e2eOptions) { o.gogc = 400 }},
	{"sa-cache", saCache},
	{"sync-off", func(o *e2eOptions) { o.syncOff = true }},
	{"one-upsert", func(o *e2eOptions) { o.pipeline = pipeOneUpsert }},
	{"la-parsemap", func(o *e2eOptions) { o.pipeline = pipeLAParseMap }},
	{"la-all", func(o *e2eOptions) { o.pipeline = pipeLAAll }},
	// The knobs that helped, without touching the workflow…
	{"production-tuned", tuned},
	// …and with every step a local activity.
	{"combined", func(o *e2eOptions) {
		tuned(o)
		o.pipeline = pipeLAAll
	}},
}

// saCache turns off what temporaldev.DefaultDynamicConfig turns on for tests: reading the
// search attributes (cluster metadata, and the namespace, under a global lock) from the
// database on every use instead of from the cache.
func saCache(o *e2eOptions) {
	o.dc = withDC(o.dc, map[string]any{"system.forceSearchAttributesCacheRefreshOnRead": false})
}

// tuned applies the server, worker and service knobs that measurably helped.
func tuned(o *e2eOptions) {
	saCache(o)
	o.gogc = 400
	o.stickyTimeout = time.Minute
	o.poolMaxConns = 32
	o.starterWorkers = 64
	o.dc = withDC(o.dc, map[string]any{"history.shardIOConcurrency": 8})
}

func withDC(base, add map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

func variantNames() []string {
	var out []string
	for _, v := range variants {
		out = append(out, v.name)
	}
	return out
}

func selectVariants(list string) []variant {
	if list == "" || list == "all" {
		return variants
	}
	var out []variant
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, v := range variants {
			if v.name == name {
				out, found = append(out, v), true
			}
		}
		if !found {
			fmt.Fprintf(os.Stderr, "unknown variant %q (have %s)\n", name, strings.Join(variantNames(), ", "))
			os.Exit(2)
		}
	}
	return out
}

func parseDC(s string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("-dc %q: want key=value", kv)
		}
		if i, err := strconv.Atoi(v); err == nil {
			out[k] = i
		} else if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		} else if b, err := strconv.ParseBool(v); err == nil {
			out[k] = b
		} else {
			out[k] = v
		}
	}
	return out, nil
}

// --- reporting -------------------------------------------------------------------------------

func printContext(ctx context.Context) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("bench/system: %d cores (GOMAXPROCS %d), load %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "))
	c, err := pgx.Connect(ctx, clusterURL())
	if err == nil {
		defer func() { _ = c.Close(context.Background()) }() // a read-only look at the server's settings
		var ver, sc, fs, wsm string
		_ = c.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'),
			current_setting('fsync'), current_setting('wal_sync_method')`).Scan(&ver, &sc, &fs, &wsm)
		fmt.Printf("; PostgreSQL %s (synchronous_commit=%s, fsync=%s, wal_sync_method=%s)", ver, sc, fs, wsm)
	}
	fmt.Println()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func printACK(r *ackReport) {
	fmt.Printf("\n== ACK path: %d messages per measurement, %d rounds interleaved; service pool %d connections ==\n", r.n, r.rounds, r.pool)
	fmt.Println("   rates are medians of the rounds; latencies are client-side percentiles over all rounds")
	fmt.Printf("   %-6s %-20s %10s %10s %10s %10s\n", "conns", "mode", "msgs/s", "p50", "p99", "ingest/x")
	for _, conc := range r.concs {
		f := r.figures[conc]
		ing := f[modeIngest].medianRate()
		for _, m := range ackModes {
			ratio := ""
			if m != modeIngest && f[m].medianRate() > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*ing/f[m].medianRate())
			}
			fmt.Printf("   %-6d %-20s %10.0f %10s %10s %10s\n", conc, m, f[m].medianRate(), ms(f[m].p(0.50)), ms(f[m].p(0.99)), ratio)
		}
	}
	fmt.Println("   baselines: 'bare insert' is the issue's (one autocommit Hl7MessageInsert of the same payload);")
	fmt.Println("   'insert+event tx' is the same insert plus the Hl7MessageReceived outbox row in one transaction (ingest's path for a taken key);")
	fmt.Println("   'insert+event 1 stmt' writes the same two rows in one statement (a CTE: one round trip, one commit), as ingest does for a new key.")
	fmt.Println("   targets (ratios against the bare-insert ceiling at the same concurrency):")
	one := r.figures[1]
	rate1 := one[modeIngest].medianRate()
	ratio1 := rate1 / one[modeBare].medianRate()
	fmt.Printf("     1 conn:  %.1f%% of ceiling (≥ 60%%: %s); %.0f msgs/s (≥ 1,000: %s); p99 %s (< 5 ms: %s)\n",
		100*ratio1, verdict(ratio1 >= 0.6), rate1, verdict(rate1 >= 1000), ms(one[modeIngest].p(0.99)), verdict(one[modeIngest].p(0.99) < 5*time.Millisecond))
	if len(r.concs) > 1 {
		c := r.concs[1]
		f := r.figures[c]
		rate := f[modeIngest].medianRate()
		ratio := rate / f[modeBare].medianRate()
		fmt.Printf("     %d conns: %.1f%% of ceiling (≥ 60%%: %s); %.0f msgs/s (≥ 3,000: %s); p50 %s, p99 %s\n",
			c, 100*ratio, verdict(ratio >= 0.6), rate, verdict(rate >= 3000), ms(f[modeIngest].p(0.5)), ms(f[modeIngest].p(0.99)))
	}
}

func printE2E(cfg config, results []e2eResult) {
	per := max(cfg.n/cfg.e2eRounds, 20)
	fmt.Printf("\n== End to end: %d messages over %d MLLP connections until processed, vs %d no-op workflows (one no-op local activity,\n", per, cfg.conns, per)
	fmt.Printf("   %d starters, eager start requested) on the same server; %d alternating round(s) ==\n", cfg.e2e.starters, cfg.e2eRounds)
	fmt.Println("   rates: items / (last completion − first send), median of the rounds (a burst is worked breadth-first: completions")
	fmt.Println("   come in a wave at the end, so only the whole interval measures the work rate)")
	fmt.Println("   CPU ms/item: this process (service + embedded Temporal + load generator) + the PostgreSQL backends of this run's")
	fmt.Println("   databases, per completed item over the whole phase (last round); 'cost' = noop cost / e2e cost, the ratio to")
	fmt.Println("   expect when both are CPU-bound, and far less sensitive to other tenants' load than the rates")
	fmt.Printf("   %-13s %7s %7s %6s | %15s %15s %6s | %5s | %s\n",
		"variant", "noop/s", "e2e/s", "ratio", "noop CPU ms", "e2e CPU ms", "cost", "busy", "per message: svc/temporal/visibility DB (noop: per run)")
	var def float64
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("   %-13s failed: %v\n", r.opts.name, r.err)
			continue
		}
		b, p := r.baselines[len(r.baselines)-1], r.pipelines[len(r.pipelines)-1]
		notes := ""
		for i := range r.pipelines {
			if !r.baselines[i].complete || !r.pipelines[i].complete {
				notes += fmt.Sprintf("  INCOMPLETE round %d (noop %d/%d, e2e %d/%d processed, %d failed)", i+1,
					r.baselines[i].done, r.baselines[i].n, r.pipelines[i].done, r.pipelines[i].n, r.pipelines[i].failed)
			}
		}
		bCPU, pCPU, cost, busy, perMsg := "", "", "", "", ""
		bu, bItems, bok := b.usage()
		pu, pItems, pok := p.usage()
		if bok && bItems > 0 {
			bCPU = cpuPerItem(bu, bItems)
		}
		if pok && pItems > 0 {
			pCPU = cpuPerItem(pu, pItems)
			busy = fmt.Sprintf("%.0f%%", 100*pu.machineBusy)
			perMsg = perItem(pu, pItems, r)
		}
		if bok && pok && bItems > 0 && pItems > 0 {
			cost = fmt.Sprintf("%.0f%%", 100*cpuMS(bu, bItems)/cpuMS(pu, pItems))
		}
		if bok && bItems > 0 {
			perMsg += fmt.Sprintf("  (noop: %s; busy %.0f%%)", perItem(bu, bItems, r), 100*bu.machineBusy)
		}
		fmt.Printf("   %-13s %7.1f %7.1f %5.0f%% | %15s %15s %6s | %5s | %s%s\n",
			r.opts.name, r.baseRate(), r.pipeRate(), 100*r.ratio(), bCPU, pCPU, cost, busy, perMsg, notes)
		if len(r.pipelines) > 1 {
			fmt.Printf("   %-13s rounds: noop %s, e2e %s\n", "", fmtRates(phaseRates(r.baselines)), fmtRates(phaseRates(r.pipelines)))
		}
		fmt.Printf("   %-13s histories: e2e %s; noop %s\n", "", p.hist, b.hist)
		if r.opts.name == "default" || r.opts.name == "configured" {
			def = r.pipeRate()
		}
	}
	fmt.Println("   busy: machine CPU (all cores, every tenant) during the last e2e phase; DB figures from pg_stat_database")
	if len(results) > 1 && def > 0 {
		fmt.Println("   against 'default' (rates drift with the machine's load between variants; CPU ms/message does much less):")
		var defCost float64
		for _, r := range results {
			if r.err == nil && r.opts.name == "default" {
				if u, items, ok := r.pipelines[len(r.pipelines)-1].usage(); ok && items > 0 {
					defCost = cpuMS(u, items)
				}
			}
		}
		for _, r := range results {
			if r.err != nil {
				continue
			}
			costGain := ""
			if u, items, ok := r.pipelines[len(r.pipelines)-1].usage(); ok && items > 0 && defCost > 0 {
				costGain = fmt.Sprintf("%+5.0f%% CPU/message", 100*(cpuMS(u, items)/defCost-1))
			}
			fmt.Printf("     %-13s %+5.0f%% e2e/s, %s, ratio %3.0f%%   %s\n", r.opts.name, 100*(r.pipeRate()/def-1), costGain, 100*r.ratio(), r.opts.describe())
		}
	}
	for _, r := range results {
		if r.err != nil || (len(results) > 1 && r.opts.name != "default") {
			continue
		}
		rate := r.pipeRate()
		fmt.Printf("   targets (%s): %.1f%% of the no-op baseline (≥ 70%%: %s); %.1f processed msgs/s (≥ 300: %s); no-op baseline itself %.1f/s\n",
			r.opts.describe(), 100*r.ratio(), verdict(r.ratio() >= 0.7), rate, verdict(rate >= 300), r.baseRate())
	}
}

// cpuMS is CPU milliseconds (this process + this run's PostgreSQL backends) per item.
func cpuMS(u usage, items int) float64 {
	return (u.selfCores + u.pgCores) * u.wall.Seconds() * 1000 / float64(items)
}

func cpuPerItem(u usage, items int) string {
	s := u.wall.Seconds() * 1000 / float64(items)
	return fmt.Sprintf("%.1f+%.1f", u.selfCores*s, u.pgCores*s)
}

func fmtRates(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return strings.Join(parts, " / ")
}

// perItem is transactions and rows written per item in the service, Temporal and visibility
// databases.
func perItem(u usage, items int, r e2eResult) string {
	n := float64(items)
	names := append(r.names, "", "", "")
	x := func(db string) float64 { return float64(u.xacts[db]) / n }
	w := func(db string) float64 { return float64(u.writes[db]) / n }
	return fmt.Sprintf("%.0f/%.0f/%.0f xacts, %.0f/%.0f/%.0f rows", x(names[0]), x(names[1]), x(names[2]), w(names[0]), w(names[1]), w(names[2]))
}
