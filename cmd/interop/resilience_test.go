package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/crypto"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/workflows"
)

// TestTemporalDownAcksKeepFlowing runs the production roles (`interop gateway` and
// `interop worker`, in-process) against a Temporal server of their own, stops that server, and
// checks that messages are still acknowledged (the ACK path needs only PostgreSQL) and stored
// pending; once a Temporal server is back on the same databases and port, the gateway's
// sweeper starts them and every one ends processed.
//
// `interop dev` cannot be used for this: with TEMPORAL_ADDRESS set it embeds nothing. The first
// subtest checks that the gateway starts and acknowledges while nobody answers there.
// The test takes about a minute and a half: while Temporal is down each immediate start holds
// one of the starter's 16 workers for its 10 s timeout, and the sweeper's interval and age are
// fixed in serve.go (10 s / 30 s), so recovery comes 30–40 s after a message was received.
func TestTemporalDownAcksKeepFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server twice")
	}
	ctx := context.Background()
	name := dbtest.UniqueName("tdown")
	serviceURL, err := dbtest.WithDatabase(dbtest.ClusterURL(), name)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, d := range []string{name, name + "_temporal", name + "_visibility"} {
			dbtest.DropDatabase(t, d)
		}
	})
	require.NoError(t, db.EnsureDatabase(ctx, serviceURL))
	require.NoError(t, db.MigrateUp(serviceURL))

	cfg := config.Default()
	cfg.DatabaseURL = serviceURL
	cfg.HTTPAddr = freeAddr(t)
	cfg.MLLPAddr = freeAddr(t)
	cfg.MetricsAddr = freeAddr(t)
	cfg.DataDir = t.TempDir()
	cfg.LogFormat = "text"
	// error: while Temporal is down the SDK warns about every failed poll and start.
	cfg.LogLevel = "error"
	cfg.Temporal.Address = freeAddr(t) // nothing listens there yet
	cfg.Temporal.EmbeddedDatabase = name + "_temporal"
	cfg.Temporal.EmbeddedVisibilityDatabase = name + "_visibility"
	cfg.Temporal.HistoryShards = 1
	cfg.DBMaxConns = 10 // each role's pool: the gateway's and the worker's run side by side
	base := "http://" + cfg.HTTPAddr
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// What `interop dev` would have left behind: the development keyset and the default
	// connector. The gateway role creates neither.
	_, err = crypto.DevKeyset(cfg.DataDir)
	require.NoError(t, err)
	pool := resPool(t, serviceURL)
	require.NoError(t, seedDefaultConnector(ctx, pool, cfg.MLLPAddr, logger))

	t.Run("gateway start-up with Temporal unreachable", func(t *testing.T) {
		// Records what happens today: connect → dialTemporal → client.DialContext checks the
		// server eagerly (GetSystemInfo), so the gateway exits and no MLLP listener opens,
		// although the ACK path itself needs only PostgreSQL. Should the gateway ever start
		// without Temporal, the probe below sees its ACK and says so.
		began := time.Now()
		g := resRun(t, "gateway without temporal", func(ctx context.Context) error { return gatewayCmd{}.Run(ctx, &cfg) })
		probe := resMessage(t, resTemplate(t), "PROBE-1", "PROBEPAT-1")
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-g.done:
				g.stopped = true
				t.Fatalf("gateway with Temporal unreachable at %s exited after %s: %v; it must keep acknowledging",
					cfg.Temporal.Address, time.Since(began).Round(time.Millisecond), g.err)
			default:
			}
			if ack, err := trySendMLLP(cfg.MLLPAddr, probe); err == nil {
				t.Logf("gateway with Temporal unreachable: up, probe acknowledged %s after %s", ack.Code, time.Since(began).Round(time.Millisecond))
				g.stop(t)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("gateway with Temporal unreachable: neither exited nor acknowledged within 20 s")
		g.stop(t)
	})

	temporalOpts := temporaldev.Options{
		DatabaseURL:            serviceURL,
		DatabaseName:           cfg.Temporal.EmbeddedDatabase,
		VisibilityDatabaseName: cfg.Temporal.EmbeddedVisibilityDatabase,
		FrontendAddr:           cfg.Temporal.Address,
		DisableUI:              true,
		Namespace:              cfg.Temporal.Namespace,
		SearchAttributes:       workflows.SearchAttributes(),
		NumHistoryShards:       cfg.Temporal.HistoryShards,
		MaxConns:               8,
		VisibilityMaxConns:     6,
		Logger:                 logger,
	}
	began := time.Now()
	srv, err := temporaldev.Start(ctx, temporalOpts)
	require.NoError(t, err)
	stopTemporal := sync.OnceValue(srv.Stop)
	t.Cleanup(func() { _ = stopTemporal() })
	t.Logf("temporal server up on %s in %s", srv.FrontendHostPort(), time.Since(began).Round(time.Millisecond))

	gateway := resRun(t, "gateway", func(ctx context.Context) error { return gatewayCmd{}.Run(ctx, &cfg) })
	worker := resRun(t, "worker", func(ctx context.Context) error { return workerCmd{}.Run(ctx, &cfg) })
	resWaitReady(t, base, 90*time.Second, gateway, worker)

	tmpl := resTemplate(t)
	warm := resMessage(t, tmpl, "TDOWN-WARM", "TDPAT-WARM")
	require.Equal(t, hl7v2.AppAccept, resSend(t, cfg.MLLPAddr, warm).Code)
	resWaitStatus(t, pool, "TDOWN-%", "processed", 1, 60*time.Second)
	t.Log("with Temporal up: the first message is processed")

	// Temporal goes away.
	require.NoError(t, stopTemporal())
	downAt := time.Now()
	// Readiness ignores Temporal: the listeners must stay in any load balancer while it is down.
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(base + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "/readyz stays ready with Temporal down")

	// 50 messages while Temporal is down: every one AA, quickly, over one connection.
	const down = 50
	c, err := mllp.Dial(ctx, cfg.MLLPAddr)
	require.NoError(t, err)
	var slowest time.Duration
	sendBegan := time.Now()
	for i := range down {
		msg := resMessage(t, tmpl, fmt.Sprintf("TDOWN-%03d", i), fmt.Sprintf("TDPAT-%03d", i))
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		reply, err := c.Send(sctx, msg)
		cancel()
		require.NoError(t, err, "message %d while Temporal is down", i)
		slowest = max(slowest, time.Since(start))
		ack, err := hl7v2.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, ack.Code, "message %d while Temporal is down: %s", i, ack.Text)
	}
	c.Close()
	t.Logf("Temporal down: %d messages acknowledged AA in %s (slowest ACK %s)", down,
		time.Since(sendBegan).Round(time.Millisecond), slowest.Round(time.Millisecond))
	require.Less(t, slowest, 5*time.Second, "the ACK does not wait for Temporal")

	st := resStatuses(t, pool, "TDOWN-%")
	require.Equal(t, down, st["pending"], "stored and pending while Temporal is down: %v", st)

	// Each immediate start fails, but only after the starter's 10 s timeout (the SDK retries
	// Unavailable until then), 16 at a time. Wait until all have failed, so that nothing
	// but the sweeper can start these messages once Temporal is back.
	startErrors := `interop_workflow_starts_total{outcome="error"}`
	require.Eventually(t, func() bool { return resMetric(t, base, startErrors) >= down }, 2*time.Minute, 250*time.Millisecond,
		"every immediate start fails while Temporal is down")
	t.Logf("every immediate start had failed %s after the first message was sent (%s after Temporal went down)",
		time.Since(sendBegan).Round(time.Millisecond), time.Since(downAt).Round(time.Millisecond))
	st = resStatuses(t, pool, "TDOWN-%")
	require.Equal(t, down, st["pending"], "still pending: %v", st)

	// Temporal is back, on the same databases and port.
	began = time.Now()
	srv2, err := temporaldev.Start(ctx, temporalOpts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv2.Stop() })
	upAt := time.Now()
	t.Logf("Temporal down for %s; restarted in %s", upAt.Sub(downAt).Round(time.Millisecond), upAt.Sub(began).Round(time.Millisecond))

	resWaitReady(t, base, 60*time.Second, gateway, worker)
	t.Logf("/readyz OK again %s after the restart", time.Since(upAt).Round(time.Millisecond))
	resWaitStatus(t, pool, "TDOWN-%", "processed", down+1, 3*time.Minute)
	t.Logf("all %d messages received while Temporal was down processed %s after it came back (%s after the first was sent)",
		down, time.Since(upAt).Round(time.Millisecond), time.Since(sendBegan).Round(time.Millisecond))

	var patients, noSuccess int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM fhir_resources
		WHERE tenant_id = 'default' AND resource_type = 'Patient' AND NOT deleted
		  AND resource->'identifier'->0->>'value' LIKE 'TDPAT-%'`).Scan(&patients))
	require.Equal(t, down+1, patients)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM hl7_messages m WHERE message_control_id LIKE 'TDOWN-%'
		AND NOT EXISTS (SELECT 1 FROM hl7_processing_attempts a WHERE a.message_id = m.id AND a.status = 'succeeded')`).Scan(&noSuccess))
	require.Zero(t, noSuccess)

	gateway.stop(t)
	worker.stop(t)
}

// TestBadInputKeepsServing throws hostile and broken input at the default MLLP connector of an
// in-process `interop dev` (an oversize frame, junk, a framed non-HL7 payload, a half frame then
// silence, 500 idle connections) while a well-behaved sender on its own connection keeps
// getting AA for every message.
func TestBadInputKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server")
	}
	ctx := context.Background()
	cfg, serviceURL := devTestConfig(t, "badin")
	cfg.MetricsAddr = freeAddr(t)
	cfg.LogLevel = "error" // every refused connection and frame error is a warning
	base := "http://" + cfg.HTTPAddr

	dev := resRun(t, "dev", func(ctx context.Context) error { return devCmd{}.Run(ctx, &cfg) })
	resWaitReady(t, base, 90*time.Second, dev)
	pool := resPool(t, serviceURL)

	// Small limits on the default connector; the listener reopens with them within the poll
	// interval. An idle connection closed after ~1 s (not 600 s) shows they are in force.
	const (
		maxSize     = 16 << 10
		maxConns    = 100
		readTimeout = time.Second
	)
	_, err := pool.Exec(ctx, `UPDATE interop_connectors SET settings = settings || $1::jsonb
		WHERE tenant_id = 'default' AND name = $2`,
		fmt.Sprintf(`{"maxMessageSize": %d, "readTimeoutSeconds": 1, "maxConnections": %d}`, maxSize, maxConns), defaultConnector)
	require.NoError(t, err)
	reopened := time.Now()
	confirmed := 0
	require.Eventually(t, func() bool {
		closedAfter, err := resIdleClose(cfg.MLLPAddr, 3*time.Second)
		if err == nil && closedAfter > 700*time.Millisecond && closedAfter < 2500*time.Millisecond {
			confirmed++
		} else {
			confirmed = 0
		}
		return confirmed == 2
	}, 30*time.Second, 100*time.Millisecond, "the listener reopens with readTimeoutSeconds 1")
	t.Logf("listener reopened with the new settings within %s", time.Since(reopened).Round(time.Millisecond))

	tmpl := resTemplate(t)
	require.Less(t, len(tmpl), maxSize, "the well-behaved messages fit the limit")

	// The well-behaved sender: one connection, a message every 100 ms, for the whole test.
	good := resGoodSender(t, cfg.MLLPAddr, tmpl, 100*time.Millisecond)

	rnd := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) []byte { // random bytes that are neither VT nor FS
		b := make([]byte, n)
		for i := range b {
			for {
				b[i] = byte(rnd.UintN(256))
				if b[i] != mllp.StartBlock && b[i] != mllp.EndBlock {
					break
				}
			}
		}
		return b
	}

	// Each phase of bad input must leave the well-behaved sender served.
	phase := func(name string, f func(t *testing.T)) {
		t.Helper()
		require.True(t, t.Run(name, f))
		good.waitMore(t, 2)
	}

	phase("oversize frame", func(t *testing.T) {
		payload := append(append([]byte{}, tmpl...), []byte("NTE|1||")...)
		payload = append(payload, bytes.Repeat([]byte("x"), 64<<10)...)
		payload = append(payload, '\r')
		reply, closedAfter, err := resRawExchange(cfg.MLLPAddr, resFrame(payload), 10*time.Second)
		require.NoError(t, err)
		require.Empty(t, reply, "no ACK for a frame over maxMessageSize")
		require.Less(t, closedAfter, 5*time.Second, "the connection is closed, not left hanging")
		t.Logf("a %d KiB frame (limit %d KiB): connection closed after %s without a reply",
			len(payload)>>10, maxSize>>10, closedAfter.Round(time.Millisecond))
	})

	phase("junk then a message on the same connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", cfg.MLLPAddr)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = conn.Write(junk(4 << 10))
		require.NoError(t, err)
		_, err = conn.Write(resFrame(resMessage(t, tmpl, "JUNK-THEN-OK", "JUNKPAT-1")))
		require.NoError(t, err)
		reply, err := mllp.NewReader(conn, 0).ReadFrame()
		require.NoError(t, err)
		ack, err := hl7v2.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, ack.Code, "junk between frames is skipped: %s", ack.Text)
	})

	phase("too much junk", func(t *testing.T) {
		reply, closedAfter, err := resRawExchange(cfg.MLLPAddr, junk(4*maxSize), 10*time.Second)
		require.NoError(t, err)
		require.Empty(t, reply)
		require.Less(t, closedAfter, 5*time.Second)
		t.Logf("%d KiB of junk without a frame: connection closed after %s", 4*maxSize>>10, closedAfter.Round(time.Millisecond))
	})

	phase("framed garbage", func(t *testing.T) {
		conn, err := net.Dial("tcp", cfg.MLLPAddr)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		// Printable junk: the payload must hold no CR FS either.
		payload := []byte(strings.Map(func(r rune) rune { return 'A' + r%26 }, string(junk(2048))))
		_, err = conn.Write(resFrame(payload))
		require.NoError(t, err)
		reply, err := mllp.NewReader(conn, 0).ReadFrame()
		require.NoError(t, err)
		ack, err := hl7v2.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppReject, ack.Code, "a frame without an MSH is rejected")
		require.NotEmpty(t, ack.Errors)
	})

	phase("half frame then silence", func(t *testing.T) {
		msg := resMessage(t, tmpl, "HALF-FRAME", "HALFPAT-1")
		reply, closedAfter, err := resRawExchange(cfg.MLLPAddr, append([]byte{mllp.StartBlock}, msg[:len(msg)/2]...), 10*time.Second)
		require.NoError(t, err)
		require.Empty(t, reply)
		require.Greater(t, closedAfter, readTimeout/2)
		require.Less(t, closedAfter, readTimeout+4*time.Second, "closed by readTimeoutSeconds")
		t.Logf("half a frame then silence: connection closed after %s (readTimeoutSeconds 1)", closedAfter.Round(time.Millisecond))
	})

	phase("500 idle connections", func(t *testing.T) {
		const idle = 500
		type result struct {
			dialed      time.Time
			closedAfter time.Duration
			gotBytes    int
			err         error
		}
		results := make([]result, idle)
		var wg sync.WaitGroup
		began := time.Now()
		for i := range idle {
			conn, err := net.DialTimeout("tcp", cfg.MLLPAddr, 5*time.Second)
			if err != nil { // refused outright counts as refused
				results[i] = result{err: err}
				continue
			}
			dialed := time.Now()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := io.Copy(io.Discard, conn) // until the server closes it
				results[i] = result{dialed: dialed, closedAfter: time.Since(dialed), gotBytes: int(n), err: err}
			}()
		}
		dialTime := time.Since(began)
		good.waitMore(t, 3) // while the idle connections hold every other slot
		wg.Wait()
		var refused, timedOut, stillOpen, dialErrs int
		var slowestRefusal time.Duration
		var served []result
		for _, r := range results {
			var ne net.Error
			switch {
			case r.err != nil && errors.As(r.err, &ne) && ne.Timeout():
				stillOpen++ // our 10 s deadline: the server never closed it
			case r.closedAfter == 0 && r.err != nil:
				dialErrs++
			case r.closedAfter < 500*time.Millisecond:
				refused++
				slowestRefusal = max(slowestRefusal, r.closedAfter)
			default:
				timedOut++
				served = append(served, r)
			}
			require.Zero(t, r.gotBytes, "nothing is written to an idle connection")
		}
		// Served connections free their slots after readTimeout, so a slow dial loop (a loaded
		// machine) may see more than maxConnections served in all; what the limit bounds is how
		// many are open at once. Each is open from its dial until its close as this side saw
		// it, which lags the server's close a little: hence the slack.
		const closeLag = 250 * time.Millisecond
		atOnce := 0
		for _, c := range served {
			n := 0
			for _, d := range served {
				if !d.dialed.After(c.dialed) && c.dialed.Before(d.dialed.Add(d.closedAfter-closeLag)) {
					n++
				}
			}
			atOnce = max(atOnce, n)
		}
		t.Logf("500 idle connections (dialled in %s, maxConnections %d, one slot held by the good sender): "+
			"%d closed at once (slowest %s), %d accepted then closed by the read timeout (at most %d at once), %d refused at dial, %d never closed",
			dialTime.Round(time.Millisecond), maxConns, refused, slowestRefusal.Round(time.Millisecond), timedOut, atOnce, dialErrs, stillOpen)
		require.Zero(t, stillOpen, "the server closes every idle connection")
		require.LessOrEqual(t, atOnce, maxConns-1, "no more connections served at once than maxConnections")
		require.Greater(t, refused+dialErrs, 0, "the limit refused some of the 500")
		if dialTime < readTimeout {
			// No served connection had timed out while the others were dialled: every one past
			// the limit was refused.
			require.GreaterOrEqual(t, refused+dialErrs, idle-(maxConns-1), "connections past the limit are refused")
		}
	})

	// Meanwhile the good sender never noticed.
	sent := good.stop()
	var slowest time.Duration
	for _, r := range sent {
		require.NoError(t, r.err, "well-behaved message %s", r.controlID)
		require.Equal(t, string(hl7v2.AppAccept), r.code, "well-behaved message %s", r.controlID)
		slowest = max(slowest, r.took)
	}
	require.GreaterOrEqual(t, len(sent), 12, "the well-behaved sender kept sending")
	require.Zero(t, good.reconnects, "the well-behaved sender's connection was never dropped")
	t.Logf("well-behaved sender: %d messages, all AA, slowest ACK %s, %d reconnects", len(sent), slowest.Round(time.Millisecond), good.reconnects)
	var stored int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM hl7_messages WHERE message_control_id LIKE 'GOOD-%'`).Scan(&stored))
	require.Equal(t, len(sent), stored, "every acknowledged message is stored")

	// What was kept for audit.
	rows, err := pool.Query(ctx, `SELECT reason, count(*) FROM hl7_rejected_inputs GROUP BY 1 ORDER BY 1`)
	require.NoError(t, err)
	reasons := map[string]int{}
	for rows.Next() {
		var r string
		var c int
		require.NoError(t, rows.Scan(&r, &c))
		reasons[r] = c
	}
	require.NoError(t, rows.Err())
	t.Logf("hl7_rejected_inputs: %v", reasons)
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all := strings.Join(keys, "\n")
	for _, want := range []string{mllp.ErrFrameTooLarge.Error(), mllp.ErrIncompleteFrame.Error(), "unreadable MSH"} {
		require.Contains(t, all, want, "kept for audit")
	}

	dev.stop(t)
}

// --- helpers ----------------------------------------------------------------------------------

// resTemplate is the ADT^A01 fixture, as one message with CR segment separators.
func resTemplate(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "adt_a01.hl7"))
	require.NoError(t, err)
	msgs := splitMessages(b)
	require.Len(t, msgs, 1)
	return msgs[0]
}

// resMessage is tmpl with MSH-10 set to controlID and PID-3's identifiers made unique with
// patientID (the MR number becomes patientID; the SSN repetition is derived from it, so that
// no two generated messages share any PID-3 identifier).
func resMessage(t *testing.T, tmpl []byte, controlID, patientID string) []byte {
	t.Helper()
	for _, old := range []string{"|MSG00001|", "|PATID1234^", "~123456789^^^USSSA^SS|"} {
		require.Equal(t, 1, bytes.Count(tmpl, []byte(old)), "the template holds %q once", old)
	}
	m := bytes.Replace(tmpl, []byte("|MSG00001|"), []byte("|"+controlID+"|"), 1)
	m = bytes.Replace(m, []byte("|PATID1234^"), []byte("|"+patientID+"^"), 1)
	return bytes.Replace(m, []byte("~123456789^^^USSSA^SS|"), []byte("~SSN-"+patientID+"^^^USSSA^SS|"), 1)
}

func resFrame(payload []byte) []byte {
	f := append([]byte{mllp.StartBlock}, payload...)
	return append(f, mllp.EndBlock, '\r')
}

// resRawExchange writes b on a fresh connection (in the background: the server may close
// while it is written) and reads until the server closes the connection or timeout passes.
// It returns what was read and when the connection was closed.
func resRawExchange(addr string, b []byte, timeout time.Duration) (reply []byte, closedAfter time.Duration, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(timeout))
	go func() { _, _ = conn.Write(b) }()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, conn)
	closedAfter = time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return buf.Bytes(), closedAfter, fmt.Errorf("the server kept the connection open for %s: %w", timeout, err)
	}
	// EOF (nil from io.Copy) or a reset: both are the server closing.
	return buf.Bytes(), closedAfter, nil
}

// resIdleClose opens a connection, sends nothing and reports when the server closes it.
func resIdleClose(addr string, timeout time.Duration) (time.Duration, error) {
	_, after, err := resRawExchange(addr, nil, timeout)
	return after, err
}

type resSent struct {
	controlID string
	code      string
	took      time.Duration
	err       error
}

type resSender struct {
	done       chan struct{}
	finished   chan struct{}
	sent       []resSent
	reconnects int
	acked      atomic.Int64
}

// waitMore waits until the sender has had n more AAs: it is being served right now.
func (s *resSender) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := s.acked.Load() + n
	require.Eventually(t, func() bool { return s.acked.Load() >= want }, 10*time.Second, 10*time.Millisecond,
		"the well-behaved sender gets AA meanwhile")
}

// resGoodSender sends a fresh message every interval over one connection until stop, and
// reconnects (counting it) if that connection fails.
func resGoodSender(t *testing.T, addr string, tmpl []byte, interval time.Duration) *resSender {
	t.Helper()
	s := &resSender{done: make(chan struct{}), finished: make(chan struct{})}
	msgs := make([][]byte, 0, 2000)
	for i := range cap(msgs) {
		msgs = append(msgs, resMessage(t, tmpl, fmt.Sprintf("GOOD-%04d", i), fmt.Sprintf("GOODPAT-%04d", i)))
	}
	go func() {
		defer close(s.finished)
		var c *mllp.Client
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < len(msgs); i++ {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			r := resSent{controlID: fmt.Sprintf("GOOD-%04d", i)}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			if c == nil {
				var err error
				if c, err = mllp.Dial(ctx, addr); err != nil {
					cancel()
					r.err = err
					s.sent = append(s.sent, r)
					continue
				}
				if i > 0 {
					s.reconnects++
				}
			}
			reply, err := c.Send(ctx, msgs[i])
			cancel()
			r.took = time.Since(start)
			if err != nil {
				r.err = err
				c.Close()
				c = nil
			} else if ack, err := hl7v2.ParseAck(reply); err != nil {
				r.err = err
			} else {
				r.code = string(ack.Code)
				if ack.Code == hl7v2.AppAccept {
					s.acked.Add(1)
				}
			}
			s.sent = append(s.sent, r)
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *resSender) stop() []resSent {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	<-s.finished
	return s.sent
}

// resMetric reads one sample of the gateway's /metrics, 0 when absent.
func resMetric(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}

// resTrySend sends msg on a fresh connection and returns the ACK, or why there is none.
func resSend(t *testing.T, addr string, msg []byte) hl7v2.AckInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	require.NoError(t, err)
	defer c.Close()
	reply, err := c.Send(ctx, msg)
	require.NoError(t, err)
	ack, err := hl7v2.ParseAck(reply)
	require.NoError(t, err)
	return ack
}

// resRole is one role (dev, gateway, worker) running in-process until stopped.
type resRole struct {
	name    string
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	stopped bool
}

func resRun(t *testing.T, name string, run func(context.Context) error) *resRole {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &resRole{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	// Registered after the databases' drop, so it runs before it.
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *resRole) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case <-r.done:
		require.NoError(t, r.err, "interop %s stops cleanly", r.name)
	case <-time.After(60 * time.Second):
		t.Errorf("interop %s did not stop within 60 s", r.name)
	}
}

func resWaitReady(t *testing.T, base string, timeout time.Duration, roles ...*resRole) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range roles {
			select {
			case <-r.done:
				t.Fatalf("interop %s exited: %v", r.name, r.err)
			default:
			}
		}
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not OK within %s", base, timeout)
}

func resStatuses(t *testing.T, pool *db.Pool, controlIDLike string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT status::text, count(*) FROM hl7_messages WHERE message_control_id LIKE $1 GROUP BY 1`, controlIDLike)
	require.NoError(t, err)
	defer rows.Close()
	st := map[string]int{}
	for rows.Next() {
		var s string
		var c int
		require.NoError(t, rows.Scan(&s, &c))
		st[s] = c
	}
	require.NoError(t, rows.Err())
	return st
}

func resWaitStatus(t *testing.T, pool *db.Pool, controlIDLike, status string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st map[string]int
	for time.Now().Before(deadline) {
		st = resStatuses(t, pool, controlIDLike)
		if st[status] == n {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("messages %s: want %d %s within %s, have %v", controlIDLike, n, status, timeout, st)
}

// resPool opens a pool on the service database, closed at cleanup.
func resPool(t *testing.T, url string) *db.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pool, err := db.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
