// Command soak runs the Interop Service (`interop dev`, a child process built from this
// module) under a steady MLLP load while it is disturbed, then checks against PostgreSQL that
// nothing it acknowledged was lost, stored twice or left unfinished (issue #14):
//
//   - -senders MLLP senders, each sending -rate messages a second (ADT^A01, ADT^A08, ORU^R01
//     of its own patients, unique MSH-10s), waiting for each ACK, resending the same bytes
//     after a connection error, a timeout or an AE, and resending every -dup-every-th accepted
//     message at once to check that the service replays its stored ACK;
//   - every -poison-every a poison message (acknowledged, never mappable: it must end
//     dead-lettered with its reason) and a sound message with a hostile MSH-10 (1,000
//     characters, or non-ASCII UTF-8): it must end processed;
//   - -kills kill -9s of the service (at 30 % and 65 % of the run for two), restarted after
//     -restart-delay on the same databases;
//   - one -stall of the database at -stall-at of the run: every byte between the service
//     (its pool and the embedded Temporal server's) and PostgreSQL stops, connections open;
//
// then the senders stop, the backlog drains (up to -drain-timeout), and every message the
// senders were told was accepted must exist exactly once and be processed (or dead-lettered
// with a reason, the poisons). The exit status is 1 when one is lost, duplicated, unsettled, a
// poison was processed or a sound message dead-lettered; 2 when the soak itself failed.
//
// The run creates its databases (soak_<rand>, …_temporal, …_visibility) in the cluster of
// TEST_DATABASE_URL (else DATABASE_URL, else postgres://postgres@127.0.0.1:5432) and drops them
// at the end, unless -keep or the verdict failed (they are kept for inspection then).
//
//	go run ./bench/soak                               # 10 minutes, 8 senders, 2 kills, 60 s stall
//	go run ./bench/soak -duration 2m -stall 15s       # a quick one
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nhp/interop/bench/internal/benchdb"
	"github.com/nhp/interop/bench/internal/devproc"
)

type config struct {
	duration     time.Duration
	senders      int
	rate         float64
	kills        int
	killAt       []float64 // -kill-at; nil: the defaults for -kills
	restartDelay time.Duration
	stall        time.Duration
	stallAt      float64
	poisonEvery  time.Duration
	hostile      bool
	dupEvery     int
	ackTimeout   time.Duration
	drainTimeout time.Duration
	giveUp       time.Duration
	dbMaxConns   int
	bin          string
	keep         bool
}

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 10*time.Minute, "how long the senders send")
	flag.IntVar(&cfg.senders, "senders", 8, "concurrent MLLP senders (connections)")
	flag.Float64Var(&cfg.rate, "rate", 2, "messages a second per sender (a sender catches up after an outage)")
	flag.IntVar(&cfg.kills, "kills", 2, "kill -9s of the service during the run (two: at 30 % and 65 %; more: evenly spread)")
	killAt := flag.String("kill-at", "", "when to kill, as comma-separated fractions of -duration (e.g. 0.55,0.8); overrides -kills")
	flag.DurationVar(&cfg.restartDelay, "restart-delay", 3*time.Second, "wait between a kill and the restart")
	flag.DurationVar(&cfg.stall, "stall", 60*time.Second, "length of the database stall (0: none)")
	flag.Float64Var(&cfg.stallAt, "stall-at", 0.45, "when the stall begins, as a fraction of -duration")
	flag.DurationVar(&cfg.poisonEvery, "poison-every", time.Minute, "interval between poison messages (0: none)")
	flag.BoolVar(&cfg.hostile, "hostile", true, "with each poison, also send a sound message with a hostile MSH-10 (1,000 characters or non-ASCII)")
	flag.IntVar(&cfg.dupEvery, "dup-every", 50, "each sender resends every n-th accepted message at once (0: never)")
	flag.DurationVar(&cfg.ackTimeout, "ack-timeout", 30*time.Second, "how long a sender waits for an ACK before it reconnects and resends")
	flag.DurationVar(&cfg.drainTimeout, "drain-timeout", 5*time.Minute, "how long to wait, after the senders stop, for the backlog to drain")
	flag.DurationVar(&cfg.giveUp, "give-up", 2*time.Minute, "after -duration, how long a sender keeps resending its last message")
	flag.IntVar(&cfg.dbMaxConns, "db-max-conns", 20, "INTEROP_DB_MAX_CONNS of the service (its pool and the embedded Temporal server's)")
	flag.StringVar(&cfg.bin, "bin", "", "the interop binary to run (default: build ./cmd/interop into a temporary directory)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the databases and the log directory even when the verdict passes")
	flag.Parse()
	if *killAt != "" {
		for _, f := range strings.Split(*killAt, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || v <= 0 || v >= 1 {
				fmt.Fprintf(os.Stderr, "-kill-at %q: want fractions between 0 and 1\n", *killAt)
				os.Exit(2)
			}
			cfg.killAt = append(cfg.killAt, v)
		}
		cfg.kills = len(cfg.killAt)
	}
	if cfg.duration < 30*time.Second || cfg.senders < 1 || cfg.rate <= 0 || cfg.kills < 0 || cfg.stall < 0 ||
		cfg.stallAt < 0 || cfg.stallAt >= 1 || cfg.ackTimeout <= 0 || cfg.poisonEvery < 0 {
		fmt.Fprintln(os.Stderr, "want -duration ≥ 30s, -senders ≥ 1, -rate > 0, -kills ≥ 0, -stall ≥ 0, 0 ≤ -stall-at < 1, -ack-timeout > 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	passed, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/soak:", err)
		stop()
		os.Exit(2)
	}
	if !passed {
		stop()
		os.Exit(1)
	}
}

// logf prints one timeline line, stamped with the time since start.
type timeline struct {
	start time.Time
	mu    sync.Mutex
}

func (t *timeline) logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Printf("[%7s] %s\n", time.Since(t.start).Round(100*time.Millisecond), fmt.Sprintf(format, args...))
}

// disturbance is one scheduled event of the run.
type disturbance struct {
	at   time.Duration
	kill bool // else the stall
}

func schedule(cfg config) []disturbance {
	var out []disturbance
	fractions := []float64{0.30, 0.65}
	switch {
	case cfg.killAt != nil:
		fractions = cfg.killAt
	case cfg.kills > len(fractions):
		fractions = fractions[:0]
		for i := range cfg.kills {
			fractions = append(fractions, float64(i+1)/float64(cfg.kills+1))
		}
	}
	for _, f := range fractions[:cfg.kills] {
		out = append(out, disturbance{at: time.Duration(f * float64(cfg.duration)), kill: true})
	}
	if cfg.stall > 0 {
		out = append(out, disturbance{at: time.Duration(cfg.stallAt * float64(cfg.duration))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

func run(ctx context.Context, cfg config) (passed bool, err error) {
	dir, err := os.MkdirTemp("", "interop-soak-")
	if err != nil {
		return false, err
	}
	keepDir := cfg.keep
	defer func() {
		if keepDir || !passed {
			fmt.Printf("service log and data: %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir) // a temporary directory: best effort
	}()
	bin := cfg.bin
	if bin == "" {
		fmt.Println("building ./cmd/interop …")
		if bin, err = devproc.Build(ctx, dir); err != nil {
			return false, err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return false, err
	}

	upstream, err := upstreamOf(benchdb.ClusterURL())
	if err != nil {
		return false, err
	}
	proxy, err := newStallProxy(upstream)
	if err != nil {
		return false, err
	}
	defer proxy.Close()
	svc, err := newService(bin, dir, proxy.Addr(), cfg.dbMaxConns)
	if err != nil {
		return false, err
	}
	defer func() {
		if cfg.keep || !passed {
			fmt.Printf("databases kept: %v (drop them with DROP DATABASE … WITH (FORCE))\n", svc.dbNames)
			return
		}
		for _, n := range svc.dbNames {
			benchdb.DropNamed(n)
		}
	}()
	defer func() {
		if err := svc.stop(); err != nil {
			fmt.Printf("stopping the service: %v\n", err)
		}
	}()

	tl := &timeline{start: time.Now()}
	fmt.Printf("soak: %s, %d senders × %.1f msg/s, %d kill -9s, stall %s at %.0f %%, a poison every %s; database %s via proxy %s → %s\n",
		cfg.duration, cfg.senders, cfg.rate, cfg.kills, cfg.stall, 100*cfg.stallAt, cfg.poisonEvery, svc.dbNames[0], proxy.Addr(), upstream)
	startup, err := svc.start(ctx)
	if err != nil {
		return false, err
	}
	tl.logf("interop dev ready in %s (gateway %s, MLLP %s, log %s)", startup.Round(time.Millisecond), svc.base, svc.mllp, svc.logPath)

	pcfg, err := pgxpool.ParseConfig(svc.directURL)
	if err != nil {
		return false, err
	}
	pcfg.MaxConns = 2 // the progress line, then the verification
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return false, err
	}
	defer pool.Close()

	sessionsBefore, _ := sessions(ctx, pool, svc.dbNames) // PostgreSQL < 14 has no count: reported without
	proxyBefore := proxy.opened.Load()

	// --- load and disturbances ------------------------------------------------------------
	stats := &senderStats{}
	senders := make([]*sender, cfg.senders)
	for i := range senders {
		senders[i] = &sender{n: i + 1, addr: svc.mllp, rate: cfg.rate, ackTimeout: cfg.ackTimeout, dupEvery: cfg.dupEvery,
			feed: newFeed(i + 1), specials: make(chan special, 16), stats: stats}
	}
	stopSend := make(chan struct{})
	giveUp, cancelGiveUp := context.WithCancel(ctx)
	defer cancelGiveUp()
	loadStart := time.Now()
	tl.start = loadStart
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(giveUp, stopSend, loadStart)
		}()
	}
	tl.logf("load started")

	bg, cancelBG := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	defer func() { cancelBG(); bgWG.Wait() }()
	// Poisons and hostile MSH-10s, handed to the senders in turn.
	if cfg.poisonEvery > 0 {
		bgWG.Add(1)
		go func() {
			defer bgWG.Done()
			// The first half an interval in, so that a short run sends both kinds of poison.
			next := time.NewTimer(cfg.poisonEvery / 2)
			defer next.Stop()
			for n := 0; ; n++ {
				select {
				case <-bg.Done():
					return
				case <-stopSend:
					return
				case <-next.C:
				}
				next.Reset(cfg.poisonEvery)
				hand := func(s *sender, sp special) {
					select {
					case s.specials <- sp:
					case <-bg.Done():
					}
				}
				hand(senders[n%len(senders)], special{poison: true, n: n})
				if cfg.hostile {
					hand(senders[(n+1)%len(senders)], special{n: n})
				}
			}
		}()
	}
	// Progress, every 15 s.
	var peakBacklog atomic.Int64
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
			line := fmt.Sprintf("acked %d, AE %d, rejected %d, send errors %d, connects %d", stats.accepted.Load(), stats.aes.Load(),
				stats.rejected.Load(), stats.sendErrors.Load(), stats.connects.Load())
			qctx, cancel := context.WithTimeout(bg, 5*time.Second)
			if st, err := statusCounts(qctx, pool); err == nil {
				line += "; stored: " + formatCounts(st)
				peakBacklog.Store(max(peakBacklog.Load(), int64(unsettled(st))))
			}
			cancel()
			tl.logf("%s", line)
		}
	}()
	// The disturbances, in order.
	var stallAt time.Duration
	for _, d := range schedule(cfg) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Until(loadStart.Add(d.at))):
		}
		if d.kill {
			tl.logf("kill -9 the service")
			rec := svc.kill(ctx, time.Since(loadStart), cfg.restartDelay)
			if rec.err != nil {
				return false, fmt.Errorf("restart after kill -9: %w", rec.err)
			}
			tl.logf("restarted: ready %s after the kill", rec.readyAfter.Round(time.Millisecond))
			continue
		}
		stallAt = time.Since(loadStart)
		tl.logf("database stall begins: no byte moves for %s", cfg.stall)
		proxy.Stall(cfg.stall)
		time.AfterFunc(cfg.stall, func() { tl.logf("database stall ends") })
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(time.Until(loadStart.Add(cfg.duration))):
	}
	close(stopSend)
	tl.logf("senders stop taking new messages; waiting for the last ACKs")
	stopAt := time.Now()
	go func() {
		select {
		case <-time.After(cfg.giveUp):
			cancelGiveUp()
		case <-giveUp.Done():
		}
	}()
	wg.Wait()
	sendWindow := time.Since(loadStart)
	tl.logf("senders done (%s after the stop)", time.Since(stopAt).Round(time.Millisecond))
	if !svc.alive() {
		return false, fmt.Errorf("the service exited on its own during the run:\n%s", devproc.Tail(svc.logPath, 40))
	}

	// --- drain and verify -------------------------------------------------------------------
	final, waited, err := drain(ctx, pool, cfg.drainTimeout, tl.logf)
	if err != nil {
		return false, err
	}
	drained := unsettled(final) == 0
	tl.logf("drain: %s after the senders were done (%s)", waited.Round(time.Second), formatCounts(final))
	var outs []*outcome
	for _, s := range senders {
		outs = append(outs, s.outcomes()...)
	}
	rows, err := readRows(ctx, pool)
	if err != nil {
		return false, err
	}
	v := check(outs, rows, loadStart)
	sessionsAfter, _ := sessions(ctx, pool, svc.dbNames)
	opened := map[string]int64{}
	for n, c := range sessionsAfter {
		opened[n] = c - sessionsBefore[n]
	}
	stopErr := svc.stop()
	facts, logErr := readLog(svc.logPath)
	rep := report{cfg: cfg, v: v, stats: stats, facts: facts, logErr: logErr, kills: svc.kills, stallAt: stallAt,
		sendWindow: sendWindow, drainWait: waited, drained: drained, final: final, stopErr: stopErr, proxyConns: proxy.opened.Load() - proxyBefore,
		sessions: opened, peakBacklog: peakBacklog.Load()}
	rep.print()
	passed = v.ok() && drained
	if !passed {
		keepDir = true
	}
	return passed, nil
}

// report prints the figures of one run.
type report struct {
	cfg        config
	v          *verdict
	stats      *senderStats
	facts      logFacts
	logErr     error
	kills      []killRecord
	stallAt    time.Duration
	sendWindow time.Duration
	drainWait  time.Duration
	drained    bool
	final      map[string]int
	stopErr    error
	proxyConns int64
	sessions   map[string]int64 // opened during the run, by database
	// peakBacklog is the most messages seen pending, processing or failed at once (sampled
	// every 15 s).
	peakBacklog int64
}

func (r report) print() {
	v := r.v
	row := func(label string, value any, note string) {
		fmt.Printf("  %-34s %8v  %s\n", label, value, note)
	}
	fmt.Println()
	fmt.Println("=== soak report ===")
	fmt.Printf("%s of load, %d senders × %.1f msg/s; ", r.sendWindow.Round(time.Second), r.cfg.senders, r.cfg.rate)
	for _, k := range r.kills {
		fmt.Printf("kill -9 at %s (ready again %s later); ", k.at.Round(time.Second), k.readyAfter.Round(100*time.Millisecond))
	}
	if r.cfg.stall > 0 {
		fmt.Printf("database stall at %s for %s", r.stallAt.Round(time.Second), r.cfg.stall)
	}
	fmt.Println()
	fmt.Println()
	fmt.Println("senders")
	row("messages sent", v.sent, fmt.Sprintf("%d ADT^A01, %d ADT^A08, %d ORU^R01, %d poison, %d hostile MSH-10",
		v.byKind[kindA01], v.byKind[kindA08], v.byKind[kindORU], v.byKind[kindPoison], v.byKind[kindLongID]+v.byKind[kindUTF8ID]))
	row("frames written", v.frames, "")
	row("resends (same MSH-10)", v.resends, fmt.Sprintf("after %d connection errors/timeouts and %d AE/CE", r.stats.sendErrors.Load(), v.aes))
	row("ACKed AA/CA", v.accepted, "")
	row("AE/CE answers", v.aes, "each resent until accepted")
	row("AR/CR (final)", v.rejected, fmt.Sprintf("%d of them stored", v.rejectedStored))
	row("no final answer", v.unanswers, "stored: "+formatCounts(v.unansweredStored))
	row("duplicates suppressed", r.facts.replayedACKs, "stored ACK replayed (service log: resends after a lost ACK + deliberate)")
	row("  deliberate resends", v.dupSent, fmt.Sprintf("%d answered with the stored ACK, byte for byte", v.dupSame))
	fmt.Println("ACKed messages in PostgreSQL")
	for _, s := range settledStatuses {
		row(s, v.status[s], "")
	}
	for _, s := range unsettledStatuses {
		row(s, v.status[s], "(still unsettled)")
	}
	row("lost (ACKed, not stored)", len(v.lost), "")
	row("stored more than once", len(v.duplicated), "")
	row("poison not dead-lettered", len(v.poisonNotDead), fmt.Sprintf("of %d poisons ACKed", v.acceptedByKind[kindPoison]))
	row("sound message dead-lettered", len(v.goodDead), "")
	row("needed more than one try", v.multiTry, "")
	row("attempts left running", v.runningOnSettled, "on settled messages")
	row("stored, sent by no sender", v.unknownRows, "")
	if len(v.reasons) > 0 {
		fmt.Println("dead-letter reasons")
		keys := make([]string, 0, len(v.reasons))
		for k := range v.reasons {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return v.reasons[keys[i]] > v.reasons[keys[j]] })
		for _, k := range keys {
			fmt.Printf("  %8d  %s\n", v.reasons[k], k)
		}
	}
	fmt.Println("throughput")
	row("ACKed msg/s", fmt.Sprintf("%.1f", float64(v.accepted)/r.sendWindow.Seconds()), fmt.Sprintf("offered %.1f/s", float64(r.cfg.senders)*r.cfg.rate))
	if !v.firstReceived.IsZero() && v.lastSettled.After(v.firstReceived) {
		span := v.lastSettled.Sub(v.firstReceived)
		row("settled msg/s end to end", fmt.Sprintf("%.1f", float64(v.settled)/span.Seconds()),
			fmt.Sprintf("%d from the first received to the last settled, %s", v.settled, span.Round(time.Second)))
	}
	sortDur(v.lat)
	row("ACK latency p50 / p99 / max", pct(v.lat, 0.5), fmt.Sprintf("/ %s / %s (the exchange that was answered)", pct(v.lat, 0.99), pct(v.lat, 1)))
	row("longest stretch without an ACK", v.longestGap.Round(100*time.Millisecond), "")
	row("peak backlog", r.peakBacklog, "pending + processing + failed, sampled every 15 s")
	row("backlog drained after", r.drainWait.Round(time.Second), "from the senders' last ACK")
	if len(r.sessions) > 0 {
		names := make([]string, 0, len(r.sessions))
		for n := range r.sessions {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, r.sessions[n])
		}
		row("PostgreSQL sessions opened", r.proxyConns, "through the proxy; by database: "+strings.Join(parts, ", "))
	}
	if r.logErr != nil {
		fmt.Printf("service log unreadable: %v\n", r.logErr)
	}
	printTop("service log errors", r.facts.errors)
	printTop("service log warnings", r.facts.warnings)
	if r.facts.panics > 0 {
		fmt.Printf("service log: %d panics/fatal errors\n", r.facts.panics)
	}
	if r.stopErr != nil {
		fmt.Printf("final SIGTERM: %v\n", r.stopErr)
	}
	list("LOST (ACKed, not stored)", v.lost)
	list("STORED MORE THAN ONCE", v.duplicated)
	list("UNSETTLED", v.unsettled)
	list("DEAD-LETTERED WITHOUT A REASON", v.deadNoReason)
	list("POISON NOT DEAD-LETTERED", v.poisonNotDead)
	list("SOUND MESSAGE DEAD-LETTERED", v.goodDead)
	list("replayed ACK differs", v.dupOther)
	list("MSA-2 differs from MSH-10", v.ackIDMismatch)
	fmt.Println()
	switch {
	case !r.drained:
		fmt.Printf("FAIL: the backlog did not drain within %s: %s\n", r.cfg.drainTimeout, formatCounts(r.final))
	case !v.ok():
		fmt.Println("FAIL: an ACKed message is lost, duplicated, unsettled or wrongly settled")
	default:
		fmt.Printf("PASS: all %d ACKed messages stored once and settled (%d processed, %d dead-lettered with a reason, %d unmapped)\n",
			v.accepted, v.status["processed"], v.status["dead_lettered"], v.status["unmapped"])
	}
}

func sortDur(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(max(int(p*float64(len(sorted))+0.5)-1, 0), len(sorted)-1)
	return sorted[i].Round(100 * time.Microsecond)
}

func printTop(title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		total += n
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	fmt.Printf("%s (%d lines):\n", title, total)
	for _, k := range keys[:min(len(keys), 12)] {
		fmt.Printf("  %6d  %s\n", m[k], shorten(k, 110))
	}
}

func list(title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Printf("%s (%d):\n", title, len(items))
	for _, s := range items[:min(len(items), 20)] {
		fmt.Printf("  %s\n", shorten(s, 300))
	}
	if len(items) > 20 {
		fmt.Printf("  … and %d more\n", len(items)-20)
	}
}
