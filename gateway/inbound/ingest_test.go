package inbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/outbox"
)

// These tests drive the durable MLLP ingest path end to end: a real TCP socket, the real
// mllp.Server and Client, and a fresh PostgreSQL database per test. No Temporal: the ACK
// depends on PostgreSQL only (Ingestor.Starter is nil).

const (
	ingestTenant   = "tenant-mllp"
	ingestSendWait = 10 * time.Second
	// noReplyWait is how long a client waits to conclude that no reply is coming.
	noReplyWait = 300 * time.Millisecond
)

// ingestNow is the Ingestor's fixed clock, so ACK timestamps are predictable.
var ingestNow = time.Date(2025, 3, 1, 12, 0, 5, 0, time.UTC)

// ingestEnv is one test's world: a database, an active inbound mllp connector, an Ingestor
// and an MLLP listener serving that connector.
type ingestEnv struct {
	url  string
	pool *db.Pool
	q    *db.Queries
	row  db.InteropConnector
	conn Connector
	in   *Ingestor
	addr string
	// acks counts ACK control ids handed out by the Ingestor.
	acks *atomic.Int64
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newIngestor returns an Ingestor with a deterministic ACK control id counter and a fixed clock.
func newIngestor(pool *db.Pool) (*Ingestor, *atomic.Int64) {
	var n atomic.Int64
	return &Ingestor{
		Pool:         pool,
		Logger:       discardLogger(),
		NewControlID: func() string { return fmt.Sprintf("ACK%06d", n.Add(1)) },
		Now:          func() time.Time { return ingestNow },
	}, &n
}

// setup creates a fresh database with one active inbound mllp connector listening on a free
// port, and serves it with a real mllp.Server wired exactly as Listeners wires it.
func setup(t testing.TB) *ingestEnv { return setupWithSettings(t, "") }

// setupWithSettings is setup with a connector whose settings JSON is settings ("" means {});
// each of configure adjusts the Ingestor before it serves.
func setupWithSettings(t testing.TB, settings string, configure ...func(*Ingestor)) *ingestEnv {
	t.Helper()
	url, pool := dbtest.New(t)
	q := db.New(pool)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	host := "127.0.0.1"
	row := insertConnector(t, q, connectorSpec{Tenant: ingestTenant, Facility: "fac-1", Name: "lab-in", Host: &host, Port: port,
		Status: db.ConnectorStatusActive, Settings: settings})
	conn, _, err := ConnectorFromRow(row)
	require.NoError(t, err)

	in, acks := newIngestor(pool)
	for _, f := range configure {
		f(in)
	}
	env := &ingestEnv{url: url, pool: pool, q: q, row: row, in: in, acks: acks, conn: conn}
	env.addr = serveMLLP(t, ln, in, env.conn)
	return env
}

// insertActiveConnector inserts an inbound mllp connector on 127.0.0.1:port and activates it.
func insertActiveConnector(t testing.TB, q *db.Queries, tenant, facility, name string, port int32) db.InteropConnector {
	t.Helper()
	host := "127.0.0.1"
	return insertConnector(t, q, connectorSpec{Tenant: tenant, Facility: facility, Name: name, Host: &host, Port: port, Status: db.ConnectorStatusActive})
}

// serveMLLP serves c on ln (a new 127.0.0.1 listener when nil) until the test ends.
func serveMLLP(t testing.TB, ln net.Listener, in *Ingestor, c Connector) string {
	t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	srv := &mllp.Server{
		Handler:      in.Handler(c),
		OnFrameError: in.FrameErrorHandler(c),
		ReadTimeout:  time.Minute,
		WriteTimeout: 30 * time.Second,
		Logger:       discardLogger(),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		// Registered after dbtest.New, so it runs before the pool closes.
		_ = srv.Close()
		require.ErrorIs(t, <-done, mllp.ErrServerClosed)
	})
	return ln.Addr().String()
}

// send sends msg on a new connection and returns the raw reply and what it says.
func (e *ingestEnv) send(t testing.TB, msg []byte) ([]byte, hl7v2.AckInfo) {
	t.Helper()
	return sendOn(t, dial(t, e.addr), msg)
}

// requireNoReply sends msg on a new connection and requires that no reply comes back.
func (e *ingestEnv) requireNoReply(t testing.TB, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), noReplyWait)
	defer cancel()
	reply, err := dial(t, e.addr).Send(ctx, msg)
	require.ErrorIs(t, err, context.DeadlineExceeded, "got a reply: %q", reply)
	require.Nil(t, reply)
}

// pipeline writes every message in a single TCP write, without waiting for replies, then reads
// want replies in order.
func pipeline(t testing.TB, addr string, msgs [][]byte, want int) [][]byte {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(30*time.Second)))
	var buf bytes.Buffer
	for _, m := range msgs {
		require.NoError(t, mllp.WriteFrame(&buf, m))
	}
	_, err = nc.Write(buf.Bytes())
	require.NoError(t, err)
	r := mllp.NewReader(nc, 0)
	replies := make([][]byte, 0, want)
	for range want {
		reply, err := r.ReadFrame()
		require.NoError(t, err)
		replies = append(replies, reply)
	}
	return replies
}

func (e *ingestEnv) messageCount(t testing.TB) int {
	return count(t, e.pool, "SELECT count(*) FROM hl7_messages")
}

func (e *ingestEnv) eventCount(t testing.TB) int {
	return count(t, e.pool, "SELECT count(*) FROM domain_events WHERE tenant_id = $1 AND event_type = $2",
		ingestTenant, string(outbox.Hl7MessageReceived))
}

func (e *ingestEnv) rejectedCount(t testing.TB) int {
	return count(t, e.pool, "SELECT count(*) FROM hl7_rejected_inputs")
}

// storedMessage reads the one message stored under the fixture's MSH-3 and id.
func (e *ingestEnv) storedMessage(t testing.TB, id string) db.Hl7Message {
	t.Helper()
	ctx := context.Background()
	key, err := e.q.Hl7MessageGetByKey(ctx, db.Hl7MessageGetByKeyParams{ConnectorID: e.row.ID, MessageControlID: id, SendingApp: "LABSYS"})
	require.NoError(t, err)
	m, err := e.q.Hl7MessageGet(ctx, key.ID)
	require.NoError(t, err)
	return m
}

type rejectedInput struct {
	TenantID    string
	ConnectorID uuid.UUID
	Raw         []byte
	Reason      string
	RemoteAddr  string
}

func (e *ingestEnv) rejectedInputs(t testing.TB) []rejectedInput {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		"SELECT tenant_id, connector_id, raw, reason, remote_addr FROM hl7_rejected_inputs ORDER BY received_at, id")
	require.NoError(t, err)
	return dbtest.Collect[rejectedInput](t, rows)
}

// requireAckError requires exactly one ERR whose ERR-3 code is code.
func requireAckError(t testing.TB, info hl7v2.AckInfo, code hl7v2.ErrorCode) hl7v2.AckError {
	t.Helper()
	require.Len(t, info.Errors, 1, "ERR segments")
	require.Equal(t, code, info.Errors[0].Code)
	require.Equal(t, code.Text(), info.Errors[0].CodeText)
	return info.Errors[0]
}

func TestIngestAcceptStoresThenAcks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	msg := fixture(t)

	reply, ack := e.send(t, msg)

	// The ACK: AA for MSH-10, addressed back to the sender, with our control id and clock.
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, "MSG00001", ack.ControlID)
	require.Empty(t, ack.Errors)
	require.Equal(t, "ACK000001", ack.Header.ControlID)
	require.Equal(t, hl7v2.MessageType{Code: "ACK", Trigger: "A01", Structure: "ACK"}, ack.Header.Type)
	require.Equal(t, "NHPINTEROP", ack.Header.SendingApplication.NamespaceID)
	require.Equal(t, "LABSYS", ack.Header.ReceivingApplication.NamespaceID)
	require.Equal(t, "GENHOSP", ack.Header.ReceivingFacility.NamespaceID)
	require.Equal(t, "2.5.1", ack.Header.Version)
	require.Equal(t, hl7v2.FormatTime(ingestNow, hl7v2.PrecisionSecond), ack.Header.Timestamp)

	// Exactly one message, stored byte for byte, pending, with the ACK it was answered with.
	require.Equal(t, 1, e.messageCount(t))
	m := e.storedMessage(t, "MSG00001")
	require.Equal(t, msg, m.Raw, "raw bytes must be byte-identical to what was sent")
	sum := sha256.Sum256(msg)
	require.Equal(t, sum[:], m.RawSHA256)
	require.Equal(t, db.Hl7MessageStatusPending, m.Status)
	require.Equal(t, fmt.Sprintf("HL7Message:%s:%s:%s:%s", ingestTenant, e.row.ID, "LABSYS", "MSG00001"), m.WorkflowID)
	require.Equal(t, ingestTenant, m.TenantID)
	require.Equal(t, e.row.ID, m.ConnectorID)
	require.Equal(t, db.Hl7MessageDirectionInbound, m.Direction)
	require.Equal(t, "GENHOSP", m.SendingFacility)
	require.Equal(t, "ADT", m.MessageCode)
	require.Equal(t, "A01", m.TriggerEvent)
	require.Equal(t, "ADT_A01", m.MessageStructure)
	require.Equal(t, "2.5.1", m.HL7Version)
	require.NotNil(t, m.MessageTime)
	require.Nil(t, m.DuplicateOf)
	require.Equal(t, "AA", m.AckCode)
	require.Equal(t, reply, m.Ack, "the stored ACK is the one sent")
	require.True(t, strings.HasPrefix(m.RemoteAddr, "127.0.0.1:"), "remote addr %q", m.RemoteAddr)

	// Exactly one Hl7MessageReceived event for the tenant, about this message.
	rows, err := e.pool.Query(context.Background(),
		"SELECT event_type, aggregate_type, aggregate_id, payload FROM domain_events WHERE tenant_id = $1", ingestTenant)
	require.NoError(t, err)
	type event struct {
		Type, Aggregate, AggregateID string
		Payload                      []byte
	}
	events := dbtest.Collect[event](t, rows)
	require.Len(t, events, 1)
	require.Equal(t, string(outbox.Hl7MessageReceived), events[0].Type)
	require.Equal(t, "Hl7Message", events[0].Aggregate)
	require.Equal(t, m.ID.String(), events[0].AggregateID)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(events[0].Payload, &payload))
	require.Equal(t, map[string]any{
		"messageId": m.ID.String(), "connectorId": e.row.ID.String(), "messageType": "ADT^A01", "tenantId": ingestTenant,
	}, payload)

	require.Zero(t, e.rejectedCount(t))
}

func TestIngestAckOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := setup(t)

	// A second, independent pool: whatever it sees is committed.
	other, err := db.Open(ctx, e.url)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	visible := func(id string) int {
		return count(t, other, "SELECT count(*) FROM hl7_messages WHERE message_control_id = $1", id)
	}

	t.Run("row visible from another connection when the ACK arrives", func(t *testing.T) {
		for i := range 20 {
			id := fmt.Sprintf("VIS%03d", i)
			_, ack := e.send(t, message(t, id))
			require.Equal(t, hl7v2.AppAccept, ack.Code)
			require.Equal(t, 1, visible(id), "ACK for %s arrived before its row was committed", id)
		}
	})

	t.Run("no ACK while the insert cannot commit", func(t *testing.T) {
		// Block every insert into hl7_messages (EXCLUSIVE still allows reads).
		tx, err := dbtest.Connect(t, e.url).Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = tx.Exec(ctx, "LOCK TABLE hl7_messages IN EXCLUSIVE MODE")
		require.NoError(t, err)

		type result struct {
			reply []byte
			err   error
		}
		got := make(chan result, 1)
		c := dial(t, e.addr)
		msg := message(t, "LOCKED1")
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			reply, err := c.Send(sctx, msg)
			got <- result{reply, err}
		}()

		// Wait until the ingest transaction is blocked on our lock: the message has arrived
		// and is being stored. Its ACK must not have been sent.
		require.Eventually(t, func() bool {
			return count(t, other, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
		}, 10*time.Second, 10*time.Millisecond)
		select {
		case r := <-got:
			t.Fatalf("reply before the message could be committed: %q, %v", r.reply, r.err)
		case <-time.After(200 * time.Millisecond):
		}
		require.Equal(t, 0, visible("LOCKED1"))

		require.NoError(t, tx.Rollback(ctx)) // release: the insert commits, then the ACK goes out
		r := <-got
		require.NoError(t, r.err)
		ack, err := hl7v2.ParseAck(r.reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, "LOCKED1", ack.ControlID)
		require.Equal(t, 1, visible("LOCKED1"))
	})
}

// A message that cannot be stored gets AE (original mode) / CE (enhanced), ERR 207, never AA,
// and leaves nothing behind: not the message, not its event.
func TestIngestStoreFailureIsNotAcknowledged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := setup(t)

	requireNothingStored := func(t *testing.T) {
		t.Helper()
		require.Zero(t, e.messageCount(t))
		require.Zero(t, count(t, e.pool, "SELECT count(*) FROM domain_events"))
	}
	requireAE := func(t *testing.T, ack hl7v2.AckInfo, want hl7v2.AckCode, id string) {
		t.Helper()
		require.Equal(t, want, ack.Code)
		require.False(t, ack.Code.Accepted())
		require.Equal(t, id, ack.ControlID)
		requireAckError(t, ack, hl7v2.ErrorCodeInternal)
	}

	t.Run("unknown connector: foreign key violation", func(t *testing.T) {
		ghost := Connector{ID: uuid.New(), TenantID: ingestTenant, Name: "ghost"}
		addr := serveMLLP(t, nil, e.in, ghost)
		_, ack := sendOn(t, dial(t, addr), message(t, "FK1"))
		requireAE(t, ack, hl7v2.AppError, "FK1")

		_, ack = sendOn(t, dial(t, addr), withMSH(t, message(t, "FK2"), 15, "AL"))
		requireAE(t, ack, hl7v2.CommitError, "FK2")
		requireNothingStored(t)
	})

	t.Run("outbox insert fails: the message insert is rolled back with it", func(t *testing.T) {
		_, err := e.pool.Exec(ctx, `
			CREATE FUNCTION test_fail_event() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'no events today'; END $$;
			CREATE TRIGGER test_fail_event BEFORE INSERT ON domain_events
				FOR EACH ROW EXECUTE FUNCTION test_fail_event();`)
		require.NoError(t, err)
		_, ack := e.send(t, message(t, "OUTBOX1"))
		requireAE(t, ack, hl7v2.AppError, "OUTBOX1")
		requireNothingStored(t)

		_, err = e.pool.Exec(ctx, "DROP TRIGGER test_fail_event ON domain_events")
		require.NoError(t, err)
		// The sender resends, as AE asked: now it is stored and accepted.
		_, ack = e.send(t, message(t, "OUTBOX1"))
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, 1, e.messageCount(t))
		require.Equal(t, 1, e.eventCount(t))
	})

	t.Run("database gone: closed pool", func(t *testing.T) {
		dead, err := db.Open(ctx, e.url)
		require.NoError(t, err)
		dead.Close()
		in, _ := newIngestor(dead)
		addr := serveMLLP(t, nil, in, e.conn)
		_, ack := sendOn(t, dial(t, addr), message(t, "CLOSED1"))
		requireAE(t, ack, hl7v2.AppError, "CLOSED1")
		require.Equal(t, 0, count(t, e.pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'CLOSED1'"))
	})
}

func TestIngestDuplicateReplaysStoredAck(t *testing.T) {
	t.Parallel()
	e := setup(t)
	msg := message(t, "DUP1")

	first, ack := e.send(t, msg)
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	// The same bytes again, on a new connection and on the same one.
	c := dial(t, e.addr)
	for range 3 {
		again, ack2 := sendOn(t, c, msg)
		require.Equal(t, first, again, "a resend must get the byte-identical stored ACK")
		require.Equal(t, ack.Header.ControlID, ack2.Header.ControlID)
	}
	again, _ := e.send(t, msg)
	require.Equal(t, first, again)

	require.Equal(t, 1, e.messageCount(t))
	require.Equal(t, 1, e.eventCount(t))
	require.Equal(t, first, e.storedMessage(t, "DUP1").Ack)
}

// The same message arriving on several connections at once (a sender retrying on a new
// connection while the first is still waiting) is stored once, and every copy gets the one
// stored ACK.
func TestIngestConcurrentDuplicatesStoredOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	msg := message(t, "RACE1")
	const senders = 8

	clients := make([]*mllp.Client, senders)
	for i := range clients {
		clients[i] = dial(t, e.addr)
	}
	replies := make([][]byte, senders)
	errs := make([]error, senders)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), ingestSendWait)
			defer cancel()
			replies[i], errs[i] = c.Send(ctx, msg)
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	stored := e.storedMessage(t, "RACE1").Ack
	for i, r := range replies {
		require.Equal(t, stored, r, "sender %d", i)
	}
	require.Equal(t, 1, e.messageCount(t))
	require.Equal(t, 1, e.eventCount(t))
}

func TestIngestSameKeyDifferentContentRejected(t *testing.T) {
	t.Parallel()
	e := setup(t)
	orig := message(t, "KEY1")
	_, ack := e.send(t, orig)
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	// Same MSH-3 and MSH-10, different body.
	changed := bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JOHN"), 1)
	require.NotEqual(t, orig, changed)
	_, ack = e.send(t, changed)
	require.Equal(t, hl7v2.AppReject, ack.Code)
	require.Equal(t, "KEY1", ack.ControlID)
	got := requireAckError(t, ack, hl7v2.ErrorCodeDuplicateKey)
	require.Equal(t, hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}, got.Location)

	require.Equal(t, 1, e.messageCount(t))
	require.Equal(t, 1, e.eventCount(t))
	require.Equal(t, orig, e.storedMessage(t, "KEY1").Raw, "the first message is kept, untouched")

	// The same control id from another sending application is another message.
	other := withMSH(t, changed, 3, "OTHERAPP")
	_, ack = e.send(t, other)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, 2, e.messageCount(t))
}

func TestIngestEnhancedMode(t *testing.T) {
	t.Parallel()
	e := setup(t)

	t.Run("AL gets CA", func(t *testing.T) {
		reply, ack := e.send(t, withMSH(t, message(t, "ENH-AL"), 15, "AL"))
		require.Equal(t, hl7v2.CommitAccept, ack.Code)
		require.Equal(t, "ENH-AL", ack.ControlID)
		require.Empty(t, ack.Errors)
		m := e.storedMessage(t, "ENH-AL")
		require.Equal(t, "CA", m.AckCode)
		require.Equal(t, reply, m.Ack)
	})

	t.Run("NE gets no reply, and is stored", func(t *testing.T) {
		msg := withMSH(t, message(t, "ENH-NE"), 15, "NE")
		e.requireNoReply(t, msg)
		require.Eventually(t, func() bool {
			return count(t, e.pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'ENH-NE'") == 1
		}, 10*time.Second, 10*time.Millisecond)
		m := e.storedMessage(t, "ENH-NE")
		require.Equal(t, msg, m.Raw)
		require.Empty(t, m.Ack)

		// A resend gets no reply either (the stored choice is replayed), and stores nothing new.
		e.requireNoReply(t, msg)
		require.Equal(t, 1, count(t, e.pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'ENH-NE'"))
	})

	t.Run("NE then AL pipelined: the only reply is the second's", func(t *testing.T) {
		ne := withMSH(t, message(t, "PIPE-NE"), 15, "NE")
		al := withMSH(t, message(t, "PIPE-AL"), 15, "AL")
		replies := pipeline(t, e.addr, [][]byte{ne, al}, 1)
		ack, err := hl7v2.ParseAck(replies[0])
		require.NoError(t, err)
		require.Equal(t, hl7v2.CommitAccept, ack.Code)
		require.Equal(t, "PIPE-AL", ack.ControlID)
		// The NE message was handled before the AL one: it is stored by now.
		require.Equal(t, 1, count(t, e.pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'PIPE-NE'"))
	})
}

func TestIngestUnreadableInputRejected(t *testing.T) {
	t.Parallel()
	e := setup(t)

	cases := []struct {
		name string
		raw  []byte
		code hl7v2.ErrorCode
	}{
		{"garbage", []byte("this is not HL7 at all \x00\x01\x02\xff"), hl7v2.ErrorCodeSegmentSequence},
		{"no MSH", []byte("PID|1||123456^^^GENHOSP^MR||DOE^JANE\rPV1|1|I\r"), hl7v2.ErrorCodeSegmentSequence},
		{"batch", []byte("FHS|^~\\&|LABSYS\rBHS|^~\\&|LABSYS\r"), hl7v2.ErrorCodeSegmentSequence},
	}
	for i, tc := range cases {
		_, ack := e.send(t, tc.raw)
		require.Equal(t, hl7v2.AppReject, ack.Code, tc.name)
		require.Empty(t, ack.ControlID, "%s: nothing to echo", tc.name)
		require.Equal(t, fmt.Sprintf("ACK%06d", i+1), ack.Header.ControlID)
		got := requireAckError(t, ack, tc.code)
		require.NotEmpty(t, got.Diagnostic, tc.name)
	}

	rejected := e.rejectedInputs(t)
	require.Len(t, rejected, len(cases))
	for i, tc := range cases {
		r := rejected[i]
		require.Equal(t, tc.raw, r.Raw, "%s: the bytes are kept for audit", tc.name)
		require.Contains(t, r.Reason, "unreadable MSH", tc.name)
		require.Equal(t, ingestTenant, r.TenantID)
		require.Equal(t, e.row.ID, r.ConnectorID)
		require.True(t, strings.HasPrefix(r.RemoteAddr, "127.0.0.1:"), r.RemoteAddr)
	}
	require.Zero(t, e.messageCount(t))
	require.Zero(t, e.eventCount(t))
}

// Bytes outside any frame are not a message, but they are kept for audit; the connection
// carries on.
func TestIngestJunkBetweenFramesKeptForAudit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = nc.Write([]byte("NOT-A-FRAME"))
	require.NoError(t, err)
	require.NoError(t, mllp.WriteFrame(nc, message(t, "AFTERJUNK")))
	reply, err := mllp.NewReader(nc, 0).ReadFrame()
	require.NoError(t, err)
	ack, err := hl7v2.ParseAck(reply)
	require.NoError(t, err)
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	rejected := e.rejectedInputs(t)
	require.Len(t, rejected, 1)
	require.Equal(t, []byte("NOT-A-FRAME"), rejected[0].Raw)
	require.Equal(t, mllp.ErrJunk.Error(), rejected[0].Reason)
	require.Equal(t, 1, e.messageCount(t))
}

func TestIngestAckIsNeverAcknowledged(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ackMsg := []byte("MSH|^~\\&|OTHERENGINE|OTHERFAC|NHPINTEROP|NHP|20250301120000||ACK^A01^ACK|ACK7|P|2.5.1\rMSA|AA|MSG00001\r")

	e.requireNoReply(t, ackMsg)

	// Deterministically: an ACK followed by a message on one connection; the only reply is
	// the message's, so the ACK was handled (silently) first.
	replies := pipeline(t, e.addr, [][]byte{ackMsg, message(t, "AFTERACK")}, 1)
	ack, err := hl7v2.ParseAck(replies[0])
	require.NoError(t, err)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, "AFTERACK", ack.ControlID)

	require.Equal(t, 1, e.messageCount(t), "only the real message is stored")
	require.Zero(t, count(t, e.pool, "SELECT count(*) FROM hl7_messages WHERE message_code = 'ACK'"))
	require.Zero(t, e.rejectedCount(t))
	require.Equal(t, 1, e.eventCount(t))
}

func TestIngestEmptyControlIDRejected(t *testing.T) {
	t.Parallel()
	e := setup(t)
	msg := message(t, "")

	_, ack := e.send(t, msg)
	require.Equal(t, hl7v2.AppReject, ack.Code)
	require.Empty(t, ack.ControlID)
	got := requireAckError(t, ack, hl7v2.ErrorCodeRequiredFieldMissing)
	require.Equal(t, hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}, got.Location)

	rejected := e.rejectedInputs(t)
	require.Len(t, rejected, 1)
	require.Equal(t, msg, rejected[0].Raw)
	require.Contains(t, rejected[0].Reason, "MSH-10")
	require.Zero(t, e.messageCount(t))
	require.Zero(t, e.eventCount(t))
}

func TestIngestPipelinedOnOneConnection(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const n = 25
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = message(t, fmt.Sprintf("PIPE%03d", i))
	}
	replies := pipeline(t, e.addr, msgs, n)
	for i, reply := range replies {
		ack, err := hl7v2.ParseAck(reply)
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, fmt.Sprintf("PIPE%03d", i), ack.ControlID, "replies come in order")
	}
	require.Equal(t, n, e.messageCount(t))
	require.Equal(t, n, e.eventCount(t))
}

func TestIngestConcurrentConnections(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const conns, perConn = 8, 50
	msgs := make([][][]byte, conns)
	for c := range msgs {
		for i := range perConn {
			msgs[c] = append(msgs[c], message(t, "C"+strconv.Itoa(c)+"-"+strconv.Itoa(i)))
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, conns*perConn)
	for c := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			client, err := mllp.Dial(ctx, e.addr)
			if err != nil {
				errs <- err
				return
			}
			defer client.Close()
			for i := range perConn {
				id := "C" + strconv.Itoa(c) + "-" + strconv.Itoa(i)
				reply, err := client.Send(ctx, msgs[c][i])
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				ack, err := hl7v2.ParseAck(reply)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				case ack.Code != hl7v2.AppAccept || ack.ControlID != id:
					errs <- fmt.Errorf("%s: got %s for %q", id, ack.Code, ack.ControlID)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	require.NoError(t, errors.Join(all...))

	require.Equal(t, conns*perConn, e.messageCount(t), "no loss, no duplicates")
	require.Equal(t, conns*perConn, count(t, e.pool, "SELECT count(DISTINCT message_control_id) FROM hl7_messages"))
	require.Equal(t, conns*perConn, e.eventCount(t))
	require.Equal(t, int64(conns*perConn), e.acks.Load(), "one ACK control id per message")
	require.Equal(t, conns*perConn, count(t, e.pool, "SELECT count(DISTINCT ack) FROM hl7_messages"), "every ACK is distinct")
}

// postgresReachable skips a benchmark when the test cluster does not answer.
func postgresReachable(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := dbtest.Reachable(ctx); err != nil {
		b.Skipf("PostgreSQL is not reachable at the test cluster: %v", err)
	}
}

func benchMessages(b *testing.B, prefix string) [][]byte {
	msgs := make([][]byte, b.N)
	base := fixture(b)
	for i := range msgs {
		msgs[i] = withMSH(b, base, 10, fmt.Sprintf("%s%09d", prefix, i))
	}
	return msgs
}

func reportRate(b *testing.B, elapsed time.Duration) {
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkIngestAck measures the whole ACK path over one MLLP connection: frame, read MSH,
// build the ACK, store message and event in one transaction, reply.
func BenchmarkIngestAck(b *testing.B) {
	postgresReachable(b)
	e := setup(b)
	msgs := benchMessages(b, "B")
	c := dial(b, e.addr)
	ctx := context.Background()
	accepted := []byte("\rMSA|AA|")

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		reply, err := c.Send(ctx, msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Contains(reply, accepted) {
			b.Fatalf("message %d: %q", i, reply)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportRate(b, elapsed)
	if n := e.messageCount(b); n != b.N {
		b.Fatalf("%d rows for %d messages", n, b.N)
	}
}

// BenchmarkRawInsertBaseline inserts the same payloads with the same sqlc Hl7MessageInsert,
// one autocommit statement each, without MLLP, ACK building or the outbox event: the floor
// the ACK path is compared against.
func BenchmarkRawInsertBaseline(b *testing.B) {
	postgresReachable(b)
	e := setup(b)
	msgs := benchMessages(b, "R")
	ctx := context.Background()
	params := make([]db.Hl7MessageInsertParams, b.N)
	for i, m := range msgs {
		h, err := hl7v2.ReadHeader(m)
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(m)
		params[i] = db.Hl7MessageInsertParams{
			TenantID: ingestTenant, ConnectorID: e.row.ID, MessageControlID: h.ControlID,
			SendingApp: h.SendingApplication.String(), SendingFacility: h.SendingFacility.String(),
			MessageCode: h.Type.Code, TriggerEvent: h.Type.Trigger, MessageStructure: h.Type.Structure,
			HL7Version: h.Version, Raw: m, RawSHA256: sum[:], AckCode: "AA", Ack: []byte("MSH|ack"),
			WorkflowID: "wf-" + h.ControlID, RemoteAddr: "127.0.0.1:1",
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := e.q.Hl7MessageInsert(ctx, params[i]); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportRate(b, elapsed)
	if n := e.messageCount(b); n != b.N {
		b.Fatalf("%d rows for %d messages", n, b.N)
	}
}
