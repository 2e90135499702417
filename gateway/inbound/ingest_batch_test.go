package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/workflows"
)

// Connector settings in the inbound path (charset, duplicatePolicy) and HL7 batches arriving
// in one MLLP frame. Same world as ingest_test.go: real PostgreSQL, real sockets.

// --- helpers --------------------------------------------------------------------------------

// withStarter gives the Ingestor a Starter that is never run, so the tests can read the start
// requests it queued (startRequests).
func withStarter(st *Starter) func(*Ingestor) {
	st.init()
	return func(in *Ingestor) { in.Starter = st }
}

// startRequests drains the requests queued so far. Ingest queues them before it replies.
func startRequests(st *Starter) []StartRequest {
	var out []StartRequest
	for {
		select {
		case r := <-st.queue:
			out = append(out, r)
		default:
			return out
		}
	}
}

// messageRow is one stored message, whatever its key.
func (e *ingestEnv) messageRow(t testing.TB, id uuid.UUID) db.Hl7Message {
	t.Helper()
	m, err := e.q.Hl7MessageGet(context.Background(), id)
	require.NoError(t, err)
	return m
}

// rowsWithControlID returns the stored messages with MSH-10 id, oldest first.
func (e *ingestEnv) rowsWithControlID(t testing.TB, id string) []db.Hl7Message {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		"SELECT id FROM hl7_messages WHERE message_control_id = $1 ORDER BY received_at, id", id)
	require.NoError(t, err)
	defer rows.Close()
	var out []db.Hl7Message
	var ids []uuid.UUID
	for rows.Next() {
		var x uuid.UUID
		require.NoError(t, rows.Scan(&x))
		ids = append(ids, x)
	}
	require.NoError(t, rows.Err())
	for _, x := range ids {
		out = append(out, e.messageRow(t, x))
	}
	return out
}

// receivedEvents returns the payloads of the Hl7MessageReceived events, oldest first.
func (e *ingestEnv) receivedEvents(t testing.TB) []map[string]any {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		"SELECT payload FROM domain_events WHERE tenant_id = $1 AND event_type = $2 ORDER BY seq",
		ingestTenant, string(outbox.Hl7MessageReceived))
	require.NoError(t, err)
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var p map[string]any
		require.NoError(t, json.Unmarshal(raw, &p))
		out = append(out, p)
	}
	require.NoError(t, rows.Err())
	return out
}

const (
	testFHS = "FHS|^~\\&|LABSYS|GENHOSP|NHPINTEROP|NHP|20250301120000||||FILE0001\r"
	testBHS = "BHS|^~\\&|LABSYS|GENHOSP|NHPINTEROP|NHP|20250301120000||||BATCH0001\r"
)

// batchFrame wraps msgs in BHS … BTS (BTS-1 the number of messages), and in FHS … FTS when
// file is set.
func batchFrame(file bool, msgs ...[]byte) []byte {
	var b bytes.Buffer
	if file {
		b.WriteString(testFHS)
	}
	b.WriteString(testBHS)
	for _, m := range msgs {
		b.Write(m)
	}
	fmt.Fprintf(&b, "BTS|%d\r", len(msgs))
	if file {
		b.WriteString("FTS|1\r")
	}
	return b.Bytes()
}

// batchReply is a batch acknowledgment as the sender reads it.
type batchReply struct {
	raw  []byte
	file *hl7v2.BatchFile
	acks [][]byte // each ACK message, as received
	info []hl7v2.AckInfo
}

// sendBatch sends one frame on a new connection and reads the reply as a batch.
func (e *ingestEnv) sendBatch(t testing.TB, frame []byte) batchReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ingestSendWait)
	defer cancel()
	raw, err := dial(t, e.addr).Send(ctx, frame)
	require.NoError(t, err)
	return readBatchReply(t, raw)
}

func readBatchReply(t testing.TB, raw []byte) batchReply {
	t.Helper()
	f, err := hl7v2.SplitBatch(raw)
	if len(f.Messages) > 0 {
		require.NoError(t, err, "reply: %q", raw)
	}
	for _, p := range f.Problems {
		require.Less(t, p.Severity, hl7v2.SeverityError, "the reply is a well-formed batch: %s\n%q", p.Message, raw)
	}
	r := batchReply{raw: raw, file: f}
	for _, m := range f.Messages {
		info, err := hl7v2.ParseAck(m.Data)
		require.NoError(t, err)
		r.acks = append(r.acks, m.Data)
		r.info = append(r.info, info)
	}
	return r
}

// segments returns the reply's segment lines.
func (r batchReply) segments() []string {
	return strings.Split(strings.TrimSuffix(string(r.raw), "\r"), "\r")
}

// --- 1. connector charset -------------------------------------------------------------------

func TestIngestConnectorCharset(t *testing.T) {
	t.Parallel()

	t.Run("Latin-1 body under an empty MSH-18: stored byte for byte, accepted", func(t *testing.T) {
		t.Parallel()
		e := setupWithSettings(t, `{"charset":"8859/1"}`)
		require.Equal(t, "8859/1", e.conn.Charset)
		msg := bytes.Replace(message(t, "LATIN1"), []byte("DOE^JANE"), []byte("M\xfcLLER^JANE"), 1)
		require.False(t, utf8.Valid(msg))
		h, err := hl7v2.ReadHeader(msg)
		require.NoError(t, err)
		require.Empty(t, h.CharacterSets, "MSH-18 is empty")

		reply, ack := e.send(t, msg)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, "LATIN1", ack.ControlID)
		m := e.storedMessage(t, "LATIN1")
		require.Equal(t, msg, m.Raw, "raw bytes are stored as sent, never transcoded")
		require.Equal(t, reply, m.Ack)

		// What Parse sees with the connector's charset (activities.loadParsed reads it the
		// same way; see activities/charset_test.go).
		parsed, err := hl7v2.Parse(m.Raw, e.conn.readOptions()...)
		require.NoError(t, err)
		require.Equal(t, "MüLLER", parsed.Get("PID-5.1"))
		require.Equal(t, "8859/1", parsed.Charset())
	})

	// ł/Ł and ź are bytes that windows-1252 (the fallback without a setting) reads otherwise,
	// so only the connector's charset gets the header right.
	latin2Facility := []byte("\xa3\xf3d\xbc") // "Łódź" in ISO 8859-2; "£ód¼" in windows-1252
	latin2 := func(t *testing.T) []byte {
		msg := withMSH(t, message(t, "LATIN2"), 4, string(latin2Facility))
		return bytes.Replace(msg, []byte("DOE^JANE"), []byte("WA\xa3\xcaSA^JANE"), 1)
	}

	t.Run("MSH read with the connector's charset; the ACK echoes it in that charset", func(t *testing.T) {
		t.Parallel()
		e := setupWithSettings(t, `{"charset":"8859/2"}`)
		msg := latin2(t)

		reply, ack := e.send(t, msg)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		m := e.storedMessage(t, "LATIN2")
		require.Equal(t, msg, m.Raw)
		require.Equal(t, "Łódź", m.SendingFacility, "MSH-4 decoded as ISO 8859-2")
		// The ACK's MSH-6 is the sender's MSH-4 as it wrote it: the same bytes, not UTF-8.
		require.Contains(t, string(reply), "|NHPINTEROP|NHP|LABSYS|"+string(latin2Facility)+"|")
		require.False(t, utf8.Valid(reply))
		require.Equal(t, reply, m.Ack)
		parsed, err := hl7v2.Parse(m.Raw, e.conn.readOptions()...)
		require.NoError(t, err)
		require.Equal(t, "WAŁĘSA", parsed.Get("PID-5.1"))
	})

	t.Run("without a setting the same bytes read as windows-1252", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		_, ack := e.send(t, latin2(t))
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, "£ód¼", e.storedMessage(t, "LATIN2").SendingFacility)
	})

	t.Run("valid UTF-8 stays UTF-8 in the ACK", func(t *testing.T) {
		t.Parallel()
		e := setupWithSettings(t, `{"charset":"8859/2"}`)
		msg := withMSH(t, message(t, "UTF8"), 4, "Łódź")
		reply, ack := e.send(t, msg)
		require.Equal(t, hl7v2.AppAccept, ack.Code)
		require.Equal(t, "Łódź", e.storedMessage(t, "UTF8").SendingFacility)
		require.Contains(t, string(reply), "|LABSYS|Łódź|")
	})
}

// --- 2. duplicate policy --------------------------------------------------------------------

func TestIngestDuplicatePolicyAccept(t *testing.T) {
	t.Parallel()
	st := &Starter{QueueSize: 100}
	e := setupWithSettings(t, `{"duplicatePolicy":"accept"}`, withStarter(st))
	require.Equal(t, connector.DuplicatePolicyAccept, e.conn.DuplicatePolicy)
	key := workflows.MessageKey{TenantID: ingestTenant, ConnectorID: e.row.ID, SendingApp: "LABSYS", ControlID: "DUPA"}

	orig := message(t, "DUPA")
	first, ack := e.send(t, orig)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	original := e.storedMessage(t, "DUPA")
	starts := startRequests(st)
	require.Len(t, starts, 1)
	require.Equal(t, workflows.InboundHL7WorkflowID(key), starts[0].WorkflowID)
	require.Equal(t, original.ID, starts[0].Input.MessageID)

	// Same key, other bytes: a new message, flagged, with its own workflow.
	changed := bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JOHN"), 1)
	reply, ack := e.send(t, changed)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, "DUPA", ack.ControlID)
	require.Empty(t, ack.Errors)
	rows := e.rowsWithControlID(t, "DUPA")
	require.Len(t, rows, 2)
	dup := rows[1]
	require.Equal(t, original.ID, rows[0].ID)
	require.Nil(t, rows[0].DuplicateOf)
	require.NotNil(t, dup.DuplicateOf)
	require.Equal(t, original.ID, *dup.DuplicateOf)
	require.Equal(t, changed, dup.Raw)
	require.Equal(t, "AA", dup.AckCode)
	require.Equal(t, reply, dup.Ack)
	require.Equal(t, db.Hl7MessageStatusPending, dup.Status)
	require.Equal(t, workflows.InboundHL7WorkflowID(key)+":dup-1", dup.WorkflowID)
	require.Equal(t, workflows.InboundHL7DuplicateWorkflowID(key, 1), dup.WorkflowID)
	starts = startRequests(st)
	require.Len(t, starts, 1)
	require.Equal(t, dup.WorkflowID, starts[0].WorkflowID)
	require.Equal(t, workflows.InboundHL7Input{MessageID: dup.ID, TenantID: ingestTenant, ConnectorID: e.row.ID, MessageType: "ADT^A01"}, starts[0].Input)

	events := e.receivedEvents(t)
	require.Len(t, events, 2)
	require.NotContains(t, events[0], "duplicateOf")
	require.Equal(t, map[string]any{
		"messageId": dup.ID.String(), "connectorId": e.row.ID.String(), "messageType": "ADT^A01",
		"tenantId": ingestTenant, "duplicateOf": original.ID.String(),
	}, events[1])

	// Identical bytes are still replays, of the original and of the duplicate alike.
	again, _ := e.send(t, orig)
	require.Equal(t, first, again)
	again, _ = e.send(t, changed)
	require.Equal(t, reply, again)
	require.Len(t, e.rowsWithControlID(t, "DUPA"), 2)
	require.Empty(t, startRequests(st))
	require.Len(t, e.receivedEvents(t), 2)

	// A third version is the second duplicate.
	third := bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JIM"), 1)
	_, ack = e.send(t, third)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	rows = e.rowsWithControlID(t, "DUPA")
	require.Len(t, rows, 3)
	require.Equal(t, workflows.InboundHL7DuplicateWorkflowID(key, 2), rows[2].WorkflowID)
	require.Equal(t, original.ID, *rows[2].DuplicateOf)

	t.Run("the same resend under reject: replays still replay, new content is refused", func(t *testing.T) {
		reject := e.conn
		reject.DuplicatePolicy = connector.DuplicatePolicyReject
		addr := serveMLLP(t, nil, e.in, reject)
		again, _ := sendOn(t, dial(t, addr), changed)
		require.Equal(t, reply, again, "a duplicate stored under accept replays its ACK")
		_, ack := sendOn(t, dial(t, addr), bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JEAN"), 1))
		require.Equal(t, hl7v2.AppReject, ack.Code)
		requireAckError(t, ack, hl7v2.ErrorCodeDuplicateKey)
		require.Len(t, e.rowsWithControlID(t, "DUPA"), 3)
	})
}

// Resends with other bytes arriving at once are numbered one at a time: each gets its own
// workflow id, and a copy of one of them replays its ACK.
func TestIngestDuplicatePolicyAcceptConcurrent(t *testing.T) {
	t.Parallel()
	e := setupWithSettings(t, `{"duplicatePolicy":"accept"}`)
	orig := message(t, "DUPC")
	_, ack := e.send(t, orig)
	require.Equal(t, hl7v2.AppAccept, ack.Code)

	const variants, copies = 6, 2
	msgs := make([][]byte, 0, variants*copies)
	for v := range variants {
		m := bytes.Replace(orig, []byte("DOE^JANE"), []byte(fmt.Sprintf("DOE^V%d", v)), 1)
		for range copies {
			msgs = append(msgs, m)
		}
	}
	clients := make([]*mllp.Client, len(msgs))
	for i := range clients {
		clients[i] = dial(t, e.addr)
	}
	replies := make([][]byte, len(msgs))
	errs := make([]error, len(msgs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), ingestSendWait)
			defer cancel()
			replies[i], errs[i] = c.Send(ctx, msgs[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "sender %d", i)
		info, err := hl7v2.ParseAck(replies[i])
		require.NoError(t, err)
		require.Equal(t, hl7v2.AppAccept, info.Code, "sender %d", i)
	}
	for v := range variants {
		require.Equal(t, replies[v*copies], replies[v*copies+1], "copies of one variant get the one stored ACK")
	}

	rows := e.rowsWithControlID(t, "DUPC")
	require.Len(t, rows, 1+variants)
	key := workflows.MessageKey{TenantID: ingestTenant, ConnectorID: e.row.ID, SendingApp: "LABSYS", ControlID: "DUPC"}
	ids := map[string]bool{}
	for _, r := range rows[1:] {
		require.Equal(t, rows[0].ID, *r.DuplicateOf)
		ids[r.WorkflowID] = true
	}
	for n := 1; n <= variants; n++ {
		require.True(t, ids[workflows.InboundHL7DuplicateWorkflowID(key, n)], "dup-%d in %v", n, ids)
	}
	require.Equal(t, 1+variants, e.eventCount(t))
}

func TestIngestDuplicatePolicyRejectExplicit(t *testing.T) {
	t.Parallel()
	e := setupWithSettings(t, `{"duplicatePolicy":"reject"}`)
	orig := message(t, "DUPR")
	first, _ := e.send(t, orig)
	_, ack := e.send(t, bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JOHN"), 1))
	require.Equal(t, hl7v2.AppReject, ack.Code)
	requireAckError(t, ack, hl7v2.ErrorCodeDuplicateKey)
	again, _ := e.send(t, orig)
	require.Equal(t, first, again)
	require.Equal(t, 1, e.messageCount(t))
	require.Equal(t, 1, e.eventCount(t))
}

// --- 3. batches -----------------------------------------------------------------------------

func TestIsBatch(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"BHS|^~\\&|A\r":            true,
		"FHS|^~\\&|A\r":            true,
		"\xEF\xBB\xBFBHS|^~\\&\r":  true,
		"\r\n  \tFHS|^~\\&|A\r":    true,
		"\xEF\xBB\xBF\n\nBHS|^~\r": true,
		"BHS":                      true,
		"MSH|^~\\&|A\r":            false,
		"BHSX|^~\\&\r":             false,
		"BH":                       false,
		"":                         false,
		"PID|1\rBHS|^~\\&\r":       false,
	} {
		require.Equal(t, want, isBatch([]byte(in)), "%q", in)
	}
}

func TestIngestBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &Starter{QueueSize: 100}
	e := setupWithSettings(t, "", withStarter(st))
	other, err := db.Open(ctx, e.url)
	require.NoError(t, err)
	t.Cleanup(other.Close)

	ids := []string{"BAT1", "BAT2", "BAT3"}
	msgs := make([][]byte, len(ids))
	for i, id := range ids {
		msgs[i] = message(t, id)
	}
	frame := batchFrame(false, msgs...)

	r := e.sendBatch(t, frame)

	// Every message was committed before the reply was written: another connection sees them.
	require.Equal(t, 3, count(t, other, "SELECT count(*) FROM hl7_messages WHERE message_control_id = ANY($1)", ids))
	require.Equal(t, 3, e.messageCount(t))
	require.Equal(t, 3, e.eventCount(t))

	// The reply: BHS, three ACKs, BTS|3.
	require.Nil(t, r.file.FHS)
	require.Len(t, r.file.Batches, 1)
	b := r.file.Batches[0]
	bhs := b.BHS
	require.Equal(t, "NHPINTEROP", bhs.Field(3).Value(), "BHS-3 is the received BHS-5")
	require.Equal(t, "NHP", bhs.Field(4).Value())
	require.Equal(t, "LABSYS", bhs.Field(5).Value(), "BHS-5 is the received BHS-3")
	require.Equal(t, "GENHOSP", bhs.Field(6).Value())
	require.Equal(t, hl7v2.FormatTime(ingestNow, hl7v2.PrecisionSecond), bhs.Field(7).Value())
	require.NotEmpty(t, bhs.Field(11).Value(), "BHS-11: the reply's own batch control id")
	require.Equal(t, "BATCH0001", bhs.Field(12).Value(), "BHS-12: the received BHS-11")
	require.Equal(t, "BHS|^~\\&|", r.segments()[0][:9])
	n, ok := b.DeclaredCount()
	require.True(t, ok)
	require.Equal(t, 3, n)
	require.Empty(t, b.BTS.Field(2).Value(), "no envelope problems, no comment")

	require.Len(t, r.info, 3)
	for i, id := range ids {
		require.Equal(t, hl7v2.AppAccept, r.info[i].Code)
		require.Equal(t, id, r.info[i].ControlID, "ACKs in input order")
		m := e.storedMessage(t, id)
		require.Equal(t, msgs[i], m.Raw, "each message stored as it was in the batch")
		require.Equal(t, r.acks[i], m.Ack, "the ACK in the batch is the one stored")
		require.Nil(t, m.DuplicateOf)
	}
	starts := startRequests(st)
	require.Len(t, starts, 3)
	for i, s := range starts {
		require.Equal(t, e.storedMessage(t, ids[i]).WorkflowID, s.WorkflowID)
	}

	// The same batch again: every message is a duplicate; the stored ACKs come back.
	again := e.sendBatch(t, frame)
	require.Len(t, again.acks, 3)
	for i := range ids {
		require.Equal(t, r.acks[i], again.acks[i], "message %d: byte-identical ACK", i)
	}
	n, _ = again.file.Batches[0].DeclaredCount()
	require.Equal(t, 3, n)
	require.Equal(t, 3, e.messageCount(t))
	require.Equal(t, 3, e.eventCount(t))
	require.Empty(t, startRequests(st))
	require.Zero(t, e.rejectedCount(t))
}

func TestIngestBatchFileEnvelope(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.sendBatch(t, batchFrame(true, message(t, "FILE1"), message(t, "FILE2")))

	segs := r.segments()
	require.True(t, strings.HasPrefix(segs[0], "FHS|^~\\&|NHPINTEROP|NHP|LABSYS|GENHOSP|"), segs[0])
	require.True(t, strings.HasPrefix(segs[1], "BHS|^~\\&|NHPINTEROP|NHP|LABSYS|GENHOSP|"), segs[1])
	require.Equal(t, "BTS|2", segs[len(segs)-2])
	require.Equal(t, "FTS|1", segs[len(segs)-1])
	require.NotNil(t, r.file.FHS)
	require.Equal(t, "FILE0001", r.file.FHS.Field(12).Value(), "FHS-12: the received FHS-11")
	require.NotEqual(t, r.file.FHS.Field(11).Value(), r.file.Batches[0].BHS.Field(11).Value())
	require.Equal(t, "BATCH0001", r.file.Batches[0].BHS.Field(12).Value())
	require.Len(t, r.info, 2)
	for i, id := range []string{"FILE1", "FILE2"} {
		require.Equal(t, hl7v2.AppAccept, r.info[i].Code)
		require.Equal(t, id, r.info[i].ControlID)
	}
	require.Equal(t, 2, e.messageCount(t))
}

func TestIngestBatchUnreadableMessage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// MSH-2 repeats '^': component and repetition separators cannot be the same.
	bad := []byte("MSH|^^\\&|LABSYS|GENHOSP|NHPINTEROP|NHP|20250301120000||ADT^A01|BAD1|P|2.5.1\rPID|1\r")
	_, err := hl7v2.ReadHeader(bad)
	require.Error(t, err)
	r := e.sendBatch(t, batchFrame(false, message(t, "GOOD1"), bad, message(t, "GOOD2")))

	require.Len(t, r.info, 3)
	require.Equal(t, hl7v2.AppAccept, r.info[0].Code)
	require.Equal(t, "GOOD1", r.info[0].ControlID)
	require.Equal(t, hl7v2.AppReject, r.info[1].Code)
	require.Empty(t, r.info[1].ControlID, "nothing readable to echo")
	requireAckError(t, r.info[1], hl7v2.ErrorCodeFor(err))
	require.Equal(t, hl7v2.AppAccept, r.info[2].Code)
	require.Equal(t, "GOOD2", r.info[2].ControlID)
	n, _ := r.file.Batches[0].DeclaredCount()
	require.Equal(t, 3, n)

	require.Equal(t, 2, e.messageCount(t))
	rejected := e.rejectedInputs(t)
	require.Len(t, rejected, 1)
	require.Equal(t, bad, rejected[0].Raw, "the unreadable message's bytes are kept for audit")
	require.Contains(t, rejected[0].Reason, "unreadable MSH")
}

// Envelope problems are reported, never a reason to refuse the messages.
func TestIngestBatchEnvelopeProblems(t *testing.T) {
	t.Parallel()
	e := setup(t)

	t.Run("BTS-1 miscounts", func(t *testing.T) {
		frame := bytes.Replace(batchFrame(false, message(t, "CNT1"), message(t, "CNT2")), []byte("BTS|2"), []byte("BTS|5"), 1)
		r := e.sendBatch(t, frame)
		require.Len(t, r.info, 2)
		for _, info := range r.info {
			require.Equal(t, hl7v2.AppAccept, info.Code)
		}
		n, _ := r.file.Batches[0].DeclaredCount()
		require.Equal(t, 2, n, "BTS-1 counts the ACKs sent, not what the sender declared")
		comment := r.file.Batches[0].BTS.Field(2).Value()
		require.Contains(t, comment, "1 batch structure problem(s)")
		require.Contains(t, comment, "BTS-1 says 5")
	})

	t.Run("no BTS, stray segment", func(t *testing.T) {
		frame := []byte(testBHS + "ZZZ|stray\r" + string(message(t, "NOBTS1")) + string(message(t, "NOBTS2")))
		r := e.sendBatch(t, frame)
		require.Len(t, r.info, 2)
		require.Equal(t, "NOBTS1", r.info[0].ControlID)
		require.Equal(t, "NOBTS2", r.info[1].ControlID)
		require.Contains(t, r.file.Batches[0].BTS.Field(2).Value(), "2 batch structure problem(s)")
	})
	require.Equal(t, 4, e.messageCount(t))
}

func TestIngestBatchAckModes(t *testing.T) {
	t.Parallel()
	e := setup(t)

	t.Run("no message asks for an ACK: an empty batch", func(t *testing.T) {
		r := e.sendBatch(t, batchFrame(false, withMSH(t, message(t, "NE1"), 15, "NE"), withMSH(t, message(t, "NE2"), 15, "NE")))
		require.Empty(t, r.info)
		require.Equal(t, []string{r.segments()[0], "BTS|0"}, r.segments())
		require.Equal(t, 2, e.messageCount(t))
	})

	t.Run("mixed modes and an ACK inside the batch", func(t *testing.T) {
		ackMsg := []byte("MSH|^~\\&|OTHERENGINE|OTHERFAC|NHPINTEROP|NHP|20250301120000||ACK^A01^ACK|ACK7|P|2.5.1\rMSA|AA|MSG00001\r")
		r := e.sendBatch(t, batchFrame(false,
			withMSH(t, message(t, "MIX-NE"), 15, "NE"),
			withMSH(t, message(t, "MIX-AL"), 15, "AL"),
			ackMsg,
			message(t, "MIX-ORIG")))
		require.Len(t, r.info, 2)
		require.Equal(t, hl7v2.CommitAccept, r.info[0].Code)
		require.Equal(t, "MIX-AL", r.info[0].ControlID)
		require.Equal(t, hl7v2.AppAccept, r.info[1].Code)
		require.Equal(t, "MIX-ORIG", r.info[1].ControlID)
		n, _ := r.file.Batches[0].DeclaredCount()
		require.Equal(t, 2, n)
		require.Equal(t, 5, e.messageCount(t), "the ACK is not stored")
	})
}

// A batch message is deduplicated against single messages and vice versa, under the
// connector's duplicate policy.
func TestIngestBatchDedupWithSingles(t *testing.T) {
	t.Parallel()
	e := setupWithSettings(t, `{"duplicatePolicy":"accept"}`)
	single := message(t, "MIXED1")
	first, _ := e.send(t, single)

	changed := bytes.Replace(message(t, "MIXED1"), []byte("DOE^JANE"), []byte("DOE^JOHN"), 1)
	r := e.sendBatch(t, batchFrame(false, single, changed, message(t, "MIXED2")))
	require.Len(t, r.acks, 3)
	require.Equal(t, first, r.acks[0], "a message already received alone gets its stored ACK")
	require.Equal(t, hl7v2.AppAccept, r.info[1].Code)
	require.Equal(t, hl7v2.AppAccept, r.info[2].Code)
	rows := e.rowsWithControlID(t, "MIXED1")
	require.Len(t, rows, 2)
	require.Equal(t, rows[0].ID, *rows[1].DuplicateOf)
	require.Equal(t, 3, e.messageCount(t))

	// And the reverse: the batch's messages sent alone replay the ACKs of the batch.
	again, _ := e.send(t, changed)
	require.Equal(t, r.acks[1], again)
}

// Input starting like a batch but holding no message at all gets the single NAK of any input
// without a readable MSH (TestIngestUnreadableInputRejected covers its content).
func TestIngestBatchWithoutMessages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	frame := []byte(testFHS + testBHS + "BTS|0\rFTS|1\r")
	reply, ack := e.send(t, frame)
	require.Equal(t, hl7v2.AppReject, ack.Code)
	require.True(t, strings.HasPrefix(string(reply), "MSH|"), "a single NAK, not a batch")
	requireAckError(t, ack, hl7v2.ErrorCodeSegmentSequence)
	rejected := e.rejectedInputs(t)
	require.Len(t, rejected, 1)
	require.Equal(t, frame, rejected[0].Raw)
	require.Zero(t, e.messageCount(t))
}

// --- wiring ---------------------------------------------------------------------------------

// The Listeners serve each connector with the charset and duplicate policy of its settings.
func TestListenersApplyConnectorSettings(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	port := freePort(t)
	row := insertConnector(t, q, connectorSpec{Tenant: ingestTenant, Facility: "fac-1", Name: "legacy-in", Port: port,
		Status: db.ConnectorStatusActive, Settings: `{"charset":"8859/2","duplicatePolicy":"accept"}`})
	c, settings, err := ConnectorFromRow(row)
	require.NoError(t, err)
	require.Equal(t, "8859/2", c.Charset)
	require.Equal(t, connector.DuplicatePolicyAccept, c.DuplicatePolicy)
	require.Equal(t, "8859/2", settings.Charset)

	l := newListeners(t, pool)
	require.NoError(t, l.Reconcile(context.Background()))
	addr := l.Addr(row.ID)
	requireListening(t, addr)

	orig := withMSH(t, message(t, "WIRED"), 4, "\xa3\xf3d\xbc")
	_, ack := sendOn(t, dial(t, addr), orig)
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	_, ack = sendOn(t, dial(t, addr), bytes.Replace(orig, []byte("DOE^JANE"), []byte("DOE^JOHN"), 1))
	require.Equal(t, hl7v2.AppAccept, ack.Code, "duplicatePolicy accept")

	var facilities []string
	rows, err := pool.Query(context.Background(), "SELECT sending_facility FROM hl7_messages ORDER BY received_at, id")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var f string
		require.NoError(t, rows.Scan(&f))
		facilities = append(facilities, f)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"Łódź", "Łódź"}, facilities, "charset 8859/2")
}
