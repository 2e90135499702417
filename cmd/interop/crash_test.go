//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// crashDefaultN is how many messages TestCrashLosesNothing streams unless INTEROP_CRASH_N
// says otherwise: the 5,000 over 4 connections. Since the pipeline's steps became
// local activities the run drains at 40–80 messages a second on a 2-core machine, so the
// whole test takes about 2–3 minutes. A shorter run:
//
//	INTEROP_CRASH_N=500 go test ./cmd/interop -run TestCrashLosesNothing -count=1 -v
const crashDefaultN = 5000

// crashSenders is the number of concurrent MLLP connections.
const crashSenders = 4

// crashKillAt is the fraction of the N messages acknowledged AA when the process is killed.
const crashKillAt = 0.4

// crashDrainTimeout bounds the wait for every message to end processed after the restart:
// INTEROP_CRASH_DRAIN_TIMEOUT, else 10 minutes or 500 ms a message when N is larger.
func crashDrainTimeout(t *testing.T, n int) time.Duration {
	if v := os.Getenv("INTEROP_CRASH_DRAIN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "INTEROP_CRASH_DRAIN_TIMEOUT")
		return d
	}
	return max(10*time.Minute, time.Duration(n)*500*time.Millisecond)
}

// TestCrashLosesNothing streams N distinct ADT^A01 over 4 MLLP connections into an
// `interop dev` subprocess, kills it with SIGKILL once ~40 % are acknowledged, starts the same
// binary again on the same databases, resends every message that did not get an AA (as a real
// sender would) and waits until every message is processed. Nothing acknowledged is lost,
// nothing is stored twice, and no Patient is created twice, even for a message whose
// processing the crash cut in half.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, boots the embedded Temporal server twice and streams thousands of messages")
	}
	n := crashDefaultN
	if v := os.Getenv("INTEROP_CRASH_N"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "INTEROP_CRASH_N")
		require.GreaterOrEqual(t, n, 2*crashSenders, "INTEROP_CRASH_N")
	}
	ctx := context.Background()

	// The binary, built from this module as a user would build it.
	bin := filepath.Join(t.TempDir(), "interop")
	began := time.Now()
	build := exec.Command(goTool(), "build", "-o", bin, "./cmd/interop")
	build.Dir = moduleRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	t.Logf("built %s in %s", bin, time.Since(began).Round(time.Millisecond))

	// Fresh databases, dropped at the end (after the process is stopped: cleanups run LIFO).
	name := dbtest.UniqueName("crash")
	serviceURL, err := dbtest.WithDatabase(dbtest.ClusterURL(), name)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, d := range []string{name, name + "_temporal", name + "_visibility"} {
			dbtest.DropDatabase(t, d)
		}
	})
	httpAddr, mllpAddr := freeAddr(t), freeAddr(t)
	env := crashEnv(map[string]string{
		"DATABASE_URL":                    serviceURL,
		"INTEROP_HTTP_ADDR":               httpAddr,
		"INTEROP_MLLP_ADDR":               mllpAddr,
		"INTEROP_METRICS_ADDR":            freeAddr(t),
		"INTEROP_DATA_DIR":                t.TempDir(),
		"INTEROP_TEMPORAL_FRONTEND_ADDR":  freeAddr(t),
		"INTEROP_TEMPORAL_UI_ADDR":        freeAddr(t),
		"INTEROP_TEMPORAL_DB":             name + "_temporal",
		"INTEROP_TEMPORAL_VISIBILITY_DB":  name + "_visibility",
		"INTEROP_TEMPORAL_HISTORY_SHARDS": "1",
		"INTEROP_LOG_LEVEL":               "warn",
		"INTEROP_LOG_FORMAT":              "text",
	})
	logPath := filepath.Join(t.TempDir(), "interop.log")
	base := "http://" + httpAddr

	// N distinct messages: unique MSH-10 and unique PID-3.
	tmpl := resTemplate(t)
	msgs := make([][]byte, n)
	ids := make([]string, n)
	for i := range msgs {
		ids[i] = crashControlID(i)
		msgs[i] = resMessage(t, tmpl, ids[i], crashPatientID(i))
	}

	// --- Run 1: stream, and kill -9 mid-stream. -------------------------------------------
	p1 := crashStart(t, bin, env, logPath, "run 1")
	p1.waitReady(t, base, 90*time.Second)
	t.Logf("run 1 ready in %s", time.Since(p1.started).Round(time.Millisecond))

	pool := resPool(t, serviceURL)

	codes := make([]string, n) // "AA", another MSA-1, "error: …", or "" (never sent)
	killAt := int64(float64(n) * crashKillAt)
	var acks atomic.Int64
	killNow := make(chan struct{})
	var killOnce sync.Once
	var killedAt time.Time
	killed := make(chan struct{})
	go func() {
		<-killNow
		killedAt = time.Now()
		_ = p1.cmd.Process.Kill() // SIGKILL: no shutdown hook runs
		<-p1.done
		close(killed)
	}()

	streamStart := time.Now()
	var wg sync.WaitGroup
	for k := range crashSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := mllp.Dial(ctx, mllpAddr)
			if err != nil {
				codes[k] = "error: " + err.Error()
				return
			}
			defer c.Close()
			for i := k; i < n; i += crashSenders {
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				reply, err := c.Send(sctx, msgs[i])
				cancel()
				if err != nil {
					// The process is gone: this message may or may not be stored; a sender
					// does not know, and resends it once the receiver is back.
					codes[i] = "error: " + err.Error()
					return
				}
				ack, err := hl7v2.ParseAck(reply)
				if err != nil {
					codes[i] = "error: " + err.Error()
					return
				}
				codes[i] = string(ack.Code)
				if ack.Code == hl7v2.AppAccept && acks.Add(1) >= killAt {
					killOnce.Do(func() { close(killNow) })
				}
			}
		}()
	}
	wg.Wait()
	killOnce.Do(func() { close(killNow) }) // in case every message was acknowledged first
	<-killed

	var ackedBefore, errored, unsent []int
	var otherCodes []string
	for i, c := range codes {
		switch {
		case c == string(hl7v2.AppAccept):
			ackedBefore = append(ackedBefore, i)
		case c == "":
			unsent = append(unsent, i)
		case strings.HasPrefix(c, "error: "):
			errored = append(errored, i)
		default:
			otherCodes = append(otherCodes, ids[i]+"="+c)
		}
	}
	sendWindow := killedAt.Sub(streamStart)
	t.Logf("run 1: %d AA in %s before SIGKILL (%.0f ACK/s over %d connections); %d sends failed at the crash, %d never sent",
		len(ackedBefore), sendWindow.Round(time.Millisecond), float64(len(ackedBefore))/sendWindow.Seconds(),
		crashSenders, len(errored), len(unsent))
	for _, i := range errored {
		t.Logf("  %s: %s", ids[i], codes[i])
	}
	require.Empty(t, otherCodes, "before the crash every stored message is accepted with AA")
	require.GreaterOrEqual(t, int64(len(ackedBefore)), killAt, "the kill came after %d ACKs", killAt)

	atCrash := crashStatuses(t, pool)
	t.Logf("at the crash: %v", atCrash)
	require.Zero(t, atCrash["dead_lettered"], "nothing dead-lettered before the crash")
	if atCrash["failed"] > 0 {
		// A try that failed (under overload: a step timing out) waits for its next try; the
		// checks after the drain prove each such message still ends processed exactly once.
		r, err := pool.Query(ctx, `SELECT message_control_id, last_error_code, left(last_error, 300)
			FROM hl7_messages WHERE status = 'failed' LIMIT 5`)
		require.NoError(t, err)
		for r.Next() {
			var id, code, detail string
			require.NoError(t, r.Scan(&id, &code, &detail))
			t.Logf("  failed try before the crash: %s: %s: %s", id, code, detail)
		}
		require.NoError(t, r.Err())
	}

	// Everything acknowledged survived the crash (before any restart: it is in PostgreSQL).
	var survived int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*) FROM hl7_messages WHERE message_control_id = ANY($1)`, crashPick(ids, ackedBefore)).Scan(&survived))
	require.Equal(t, len(ackedBefore), survived, "every message acknowledged before the crash is stored")

	// Sent but not acknowledged: the crash may have come between COMMIT and the ACK.
	var notAcked []int
	notAcked = append(append(notAcked, errored...), unsent...)
	var storedUnacked int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*) FROM hl7_messages WHERE message_control_id = ANY($1)`, crashPick(ids, notAcked)).Scan(&storedUnacked))
	t.Logf("of the %d messages without an AA, %d were stored all the same (committed, ACK lost in the crash)", len(notAcked), storedUnacked)

	// --- Run 2: same binary, same databases; resend what was not acknowledged. ------------
	restartBegan := time.Now()
	p2 := crashStart(t, bin, env, logPath, "run 2")
	p2.waitReady(t, base, 90*time.Second)
	t.Logf("run 2 ready %s after its start (%s after the SIGKILL)",
		time.Since(restartBegan).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))

	resendBegan := time.Now()
	resent := crashResend(t, mllpAddr, msgs, ids, notAcked)
	for _, i := range notAcked {
		require.Equal(t, string(hl7v2.AppAccept), resent[i], "resend of %s", ids[i])
	}
	t.Logf("run 2: resent %d messages in %s, all AA (%d of them replayed stored ACKs)",
		len(notAcked), time.Since(resendBegan).Round(time.Millisecond), storedUnacked)

	// --- Drain: every message ends processed. ----------------------------------------------
	drainBegan := time.Now()
	crashWaitProcessed(t, pool, n, crashDrainTimeout(t, n))
	t.Logf("drained: all %d processed %s after run 2 was ready (%s after the SIGKILL; %.0f msg/s end to end)",
		n, time.Since(drainBegan).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond),
		float64(n)/time.Since(streamStart).Seconds())

	// --- Assertions on the final state. ------------------------------------------------------
	var rows, distinct int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*), count(DISTINCT message_control_id) FROM hl7_messages`).Scan(&rows, &distinct))
	require.Equal(t, n, rows, "exactly N messages stored: none missing, none twice")
	require.Equal(t, n, distinct)

	// Every message acknowledged before the crash: stored exactly once, processed.
	type row struct {
		id     string
		count  int
		status string
	}
	r, err := pool.Query(ctx, `SELECT message_control_id, count(*), string_agg(status::text, ',')
		FROM hl7_messages WHERE message_control_id = ANY($1) GROUP BY message_control_id`, crashPick(ids, ackedBefore))
	require.NoError(t, err)
	var got []row
	for r.Next() {
		var x row
		require.NoError(t, r.Scan(&x.id, &x.count, &x.status))
		got = append(got, x)
	}
	require.NoError(t, r.Err())
	require.Len(t, got, len(ackedBefore))
	for _, x := range got {
		require.Equal(t, 1, x.count, "%s stored once", x.id)
		require.Equal(t, "processed", x.status, "%s processed", x.id)
	}

	// Exactly N Patients, one per PID-3: none created twice across the crash.
	var patients, distinctPID, expectedPID int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT resource->'identifier'->0->>'value'),
			count(*) FILTER (WHERE resource->'identifier'->0->>'value' = ANY($1))
		FROM fhir_resources WHERE tenant_id = 'default' AND resource_type = 'Patient' AND NOT deleted`,
		crashPatientIDs(n)).Scan(&patients, &distinctPID, &expectedPID))
	require.Equal(t, n, patients, "exactly N Patients")
	require.Equal(t, n, distinctPID, "one Patient per PID-3")
	require.Equal(t, n, expectedPID, "every Patient is one of the messages' PID-3")

	// Every message has a succeeded attempt.
	var noSuccess int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM hl7_messages m WHERE NOT EXISTS (
		SELECT 1 FROM hl7_processing_attempts a WHERE a.message_id = m.id AND a.status = 'succeeded')`).Scan(&noSuccess))
	require.Equal(t, 0, noSuccess, "every message has an attempt that succeeded")

	// For the record: how the crash showed in the attempts and links.
	var attempts, multi, running, failed, links int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*),
			(SELECT count(*) FROM (SELECT message_id FROM hl7_processing_attempts GROUP BY 1 HAVING count(*) > 1) x),
			count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'failed'),
			(SELECT count(*) FROM hl7_resource_links WHERE resource_type = 'Patient')
		FROM hl7_processing_attempts`).Scan(&attempts, &multi, &running, &failed, &links))
	t.Logf("attempts: %d (%d messages with more than one, %d left running, %d failed); Patient links: %d",
		attempts, multi, running, failed, links)

	p2.stop(t)
}

// crashProc is one `interop dev` subprocess.
type crashProc struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	err     error
	logPath string
}

func crashStart(t *testing.T, bin string, env []string, logPath, label string) *crashProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	_, err = fmt.Fprintf(logf, "===== %s: %s dev =====\n", label, bin)
	require.NoError(t, err)
	cmd := exec.Command(bin, "dev")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary even when it is killed (go test -timeout): never leave an
	// orphan holding the ports and the databases.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	p := &crashProc{cmd: cmd, started: time.Now(), done: make(chan struct{}), logPath: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("interop log (%s), last lines:\n%s", logPath, tailFile(logPath, 60))
		}
	})
	return p
}

func (p *crashProc) waitReady(t *testing.T, base string, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("interop dev exited before it was ready: %v\n%s", p.err, tailFile(p.logPath, 40))
		default:
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
	t.Fatalf("interop dev not ready within %s\n%s", timeout, tailFile(p.logPath, 40))
}

// stop ends the process the way an operator would (SIGTERM), and checks that it exits cleanly.
func (p *crashProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.err, "interop dev exits cleanly on SIGTERM\n%s", tailFile(p.logPath, 40))
	case <-time.After(60 * time.Second):
		t.Errorf("interop dev did not stop within 60 s of SIGTERM")
	}
}

// crashResend sends msgs[i] for every i in which over crashSenders connections, retrying on a
// fresh connection after an error as a sender would, and returns the MSA-1 of each.
func crashResend(t *testing.T, addr string, msgs [][]byte, ids []string, which []int) []string {
	t.Helper()
	codes := make([]string, len(msgs))
	var wg sync.WaitGroup
	for k := range crashSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *mllp.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for j := k; j < len(which); j += crashSenders {
				i := which[j]
				for try := 1; ; try++ {
					code, err := func() (string, error) {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						if c == nil {
							var err error
							if c, err = mllp.Dial(ctx, addr); err != nil {
								return "", err
							}
						}
						reply, err := c.Send(ctx, msgs[i])
						if err != nil {
							c.Close()
							c = nil
							return "", err
						}
						ack, err := hl7v2.ParseAck(reply)
						return string(ack.Code), err
					}()
					if err == nil {
						codes[i] = code
						break
					}
					if try == 5 {
						codes[i] = "error: " + err.Error()
						t.Logf("resend %s: %v", ids[i], err)
						break
					}
					time.Sleep(time.Duration(try) * 200 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return codes
}

// crashWaitProcessed waits until n messages are processed, logging progress; it fails at once
// when one is dead-lettered.
func crashWaitProcessed(t *testing.T, pool *db.Pool, n int, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	var st map[string]int
	for time.Now().Before(deadline) {
		st = crashStatuses(t, pool)
		if st["processed"] == n {
			return st
		}
		if st["dead_lettered"] > 0 {
			var lastErr string
			_ = pool.QueryRow(context.Background(),
				`SELECT message_control_id || ': ' || last_error FROM hl7_messages WHERE status = 'dead_lettered' LIMIT 1`).Scan(&lastErr)
			t.Fatalf("a message was dead-lettered: %s (statuses %v)", lastErr, st)
		}
		if time.Since(lastLog) >= 15*time.Second {
			t.Logf("  draining: %v", st)
			lastLog = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("not every message processed within %s: %v", timeout, st)
	return st
}

func crashStatuses(t *testing.T, pool *db.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status::text, count(*) FROM hl7_messages GROUP BY 1`)
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

func crashControlID(i int) string { return fmt.Sprintf("CRASH%06d", i) }
func crashPatientID(i int) string { return fmt.Sprintf("CRPAT%06d", i) }

func crashPatientIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = crashPatientID(i)
	}
	return out
}

func crashPick(ids []string, which []int) []string {
	out := make([]string, len(which))
	for j, i := range which {
		out[j] = ids[i]
	}
	return out
}

// crashEnv is the test process's environment without anything that configures interop,
// plus vars.
func crashEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "INTEROP_") || strings.HasPrefix(k, "TEMPORAL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// goTool is the go command that runs the test: go test puts its GOROOT/bin first on the
// test's PATH (runtime.GOROOT is deprecated and says where the binary was built instead).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // not on PATH: running it says so
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	require.NoError(t, err)
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod, "not in a module")
	return filepath.Dir(gomod)
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
