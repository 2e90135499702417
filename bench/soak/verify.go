package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The statuses of hl7_messages: settled ones end a message's processing; the others are a
// backlog that must drain.
var (
	settledStatuses   = []string{"processed", "dead_lettered", "unmapped"}
	unsettledStatuses = []string{"pending", "processing", "failed"}
)

// statusCounts reads how many messages are in each status.
func statusCounts(ctx context.Context, pool *pgxpool.Pool) (map[string]int, error) {
	rows, err := pool.Query(ctx, `SELECT status::text, count(*) FROM hl7_messages GROUP BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

func unsettled(st map[string]int) int {
	n := 0
	for _, s := range unsettledStatuses {
		n += st[s]
	}
	return n
}

func formatCounts(st map[string]int) string {
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, st[k])
	}
	return strings.Join(parts, " ")
}

// drain waits until no message is pending, processing or failed (waiting for its next try),
// or timeout passes; it returns the last counts and how long it waited.
func drain(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, logf func(string, ...any)) (map[string]int, time.Duration, error) {
	began := time.Now()
	lastLog := began
	for {
		st, err := statusCounts(ctx, pool)
		if err != nil {
			return nil, time.Since(began), err
		}
		if unsettled(st) == 0 {
			return st, time.Since(began), nil
		}
		if time.Since(began) >= timeout {
			return st, time.Since(began), nil
		}
		if time.Since(lastLog) >= 15*time.Second {
			logf("draining: %s", formatCounts(st))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return st, time.Since(began), ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// storedRow is one hl7_messages row, as the verification needs it.
type storedRow struct {
	app, controlID, status, errCode, errText string
	duplicateOf                              bool
	receivedAt, changedAt                    time.Time
	attempts                                 int
	running                                  int // attempts left running
}

// readRows reads every stored message, keyed by sending application and SHA-256 of the raw
// bytes: what a sender knows of a message it sent. (MSH-10 alone is not enough to find a
// non-ASCII one, which the service stores decoded.)
func readRows(ctx context.Context, pool *pgxpool.Pool) (map[string][]storedRow, error) {
	rows, err := pool.Query(ctx, `SELECT m.sending_app, m.message_control_id, m.raw_sha256, m.status::text,
			m.last_error_code, m.last_error, m.duplicate_of IS NOT NULL, m.received_at, m.status_changed_at,
			count(a.id), count(a.id) FILTER (WHERE a.status = 'running')
		FROM hl7_messages m LEFT JOIN hl7_processing_attempts a ON a.message_id = m.id
		GROUP BY m.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]storedRow{}
	for rows.Next() {
		var r storedRow
		var sum []byte
		if err := rows.Scan(&r.app, &r.controlID, &sum, &r.status, &r.errCode, &r.errText, &r.duplicateOf,
			&r.receivedAt, &r.changedAt, &r.attempts, &r.running); err != nil {
			return nil, err
		}
		k := rowKey(r.app, sum)
		out[k] = append(out[k], r)
	}
	return out, rows.Err()
}

func rowKey(app string, sum []byte) string { return app + "/" + hex.EncodeToString(sum) }

// logFacts is what the service's log says across its runs.
type logFacts struct {
	replayedACKs int            // "duplicate message: replayed its ACK": duplicates suppressed
	errors       map[string]int // level=ERROR lines, by message
	warnings     map[string]int // level=WARN lines, by message
	panics       int
}

var logLine = regexp.MustCompile(`level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S+)`)

func readLog(path string) (logFacts, error) {
	f := logFacts{errors: map[string]int{}, warnings: map[string]int{}}
	file, err := os.Open(path)
	if err != nil {
		return f, err
	}
	defer func() { _ = file.Close() }() // read only
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			f.panics++
		}
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		msg := strings.Trim(m[2], `"`)
		switch m[1] {
		case "INFO":
			if msg == "duplicate message: replayed its ACK" {
				f.replayedACKs++
			}
		case "WARN":
			f.warnings[msg]++
		case "ERROR":
			f.errors[msg]++
		}
	}
	return f, sc.Err()
}

// verdict is the comparison of what the senders were told with what PostgreSQL holds.
type verdict struct {
	sent, frames, resends, aes    int
	accepted, rejected, unanswers int
	byKind                        map[kind]int
	acceptedByKind                map[kind]int
	status                        map[string]int // of accepted messages
	reasons                       map[string]int // dead-lettered: "code: text"
	lost, duplicated, unsettled   []string
	deadNoReason                  []string
	poisonNotDead, goodDead       []string
	rejectedStored                int
	unansweredStored              map[string]int // status of stored messages that never got a final answer
	unknownRows                   int
	dupSent, dupSame              int
	dupOther                      []string
	ackIDMismatch                 []string
	multiTry                      int // accepted messages that needed more than one try
	runningOnSettled              int
	lat                           []time.Duration
	longestGap                    time.Duration // between two accepted ACKs, or from the start to the first
	firstReceived, lastSettled    time.Time
	settled                       int
}

func (v *verdict) ok() bool {
	return len(v.lost) == 0 && len(v.duplicated) == 0 && len(v.unsettled) == 0 && len(v.deadNoReason) == 0 &&
		len(v.poisonNotDead) == 0 && len(v.goodDead) == 0
}

// check compares every outcome with the stored rows; loadStart is when the senders began.
func check(outs []*outcome, rows map[string][]storedRow, loadStart time.Time) *verdict {
	v := &verdict{byKind: map[kind]int{}, acceptedByKind: map[kind]int{}, status: map[string]int{}, reasons: map[string]int{},
		unansweredStored: map[string]int{}}
	matched := map[string]bool{}
	for _, o := range outs {
		v.sent++
		v.byKind[o.kind]++
		v.frames += o.sends
		v.resends += max(o.sends-1, 0)
		v.aes += o.aes
		k := rowKey(o.app, o.sha[:])
		matched[k] = true
		rs := rows[k]
		if o.dupSent {
			v.dupSent++
			if o.dupSame {
				v.dupSame++
			} else {
				v.dupOther = append(v.dupOther, fmt.Sprintf("%s answered %s, not its stored ACK", o, o.dupCode))
			}
		}
		switch {
		case o.accepted():
		case o.code == "":
			v.unanswers++
			for _, r := range rs {
				v.unansweredStored[r.status]++
			}
			continue
		default:
			v.rejected++
			v.rejectedStored += len(rs)
			continue
		}
		v.accepted++
		v.acceptedByKind[o.kind]++
		v.lat = append(v.lat, o.latency)
		if isASCII(o.id) && o.ackID != o.id {
			v.ackIDMismatch = append(v.ackIDMismatch, fmt.Sprintf("%s: MSA-2 %q", o, o.ackID))
		}
		switch {
		case len(rs) == 0:
			v.lost = append(v.lost, o.String())
			continue
		case len(rs) > 1:
			v.duplicated = append(v.duplicated, fmt.Sprintf("%s stored %d times", o, len(rs)))
		}
		r := rs[0]
		v.status[r.status]++
		if r.attempts > 1 {
			v.multiTry++
		}
		if !slices.Contains(settledStatuses, r.status) {
			v.unsettled = append(v.unsettled, fmt.Sprintf("%s is %s (%s %s)", o, r.status, r.errCode, r.errText))
			continue
		}
		v.settled++
		v.runningOnSettled += r.running
		if v.firstReceived.IsZero() || r.receivedAt.Before(v.firstReceived) {
			v.firstReceived = r.receivedAt
		}
		if r.changedAt.After(v.lastSettled) {
			v.lastSettled = r.changedAt
		}
		if r.status == "dead_lettered" {
			if strings.TrimSpace(r.errText) == "" {
				v.deadNoReason = append(v.deadNoReason, o.String())
			}
			v.reasons[shorten(r.errCode+": "+r.errText, 100)]++
			if !o.kind.expectDead() {
				v.goodDead = append(v.goodDead, fmt.Sprintf("%s: %s: %s", o, r.errCode, r.errText))
			}
		} else if o.kind.expectDead() {
			v.poisonNotDead = append(v.poisonNotDead, fmt.Sprintf("%s is %s", o, r.status))
		}
	}
	var acked []time.Time
	for _, o := range outs {
		if o.accepted() {
			acked = append(acked, o.ackedAt)
		}
	}
	slices.SortFunc(acked, time.Time.Compare)
	prev := loadStart
	for _, t := range acked {
		v.longestGap = max(v.longestGap, t.Sub(prev))
		prev = t
	}
	for k, rs := range rows {
		if !matched[k] {
			v.unknownRows += len(rs)
		}
	}
	return v
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sessions reads how many sessions each database has had (pg_stat_database.sessions,
// PostgreSQL 14+): the difference of two readings is how many connections were opened.
func sessions(ctx context.Context, pool *pgxpool.Pool, names []string) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY($1)`, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var c int64
		if err := rows.Scan(&n, &c); err != nil {
			return nil, err
		}
		out[n] = c
	}
	return out, rows.Err()
}
