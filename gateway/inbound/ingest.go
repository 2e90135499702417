package inbound

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/time/rate"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/workflows"
)

// Connector is what a listener knows of the InteropConnector it serves (see ConnectorFromRow).
type Connector struct {
	ID       uuid.UUID
	TenantID string
	Name     string
	// Charset is settings.charset: the character set of messages whose MSH-18 is empty or
	// ASCII ("" means UTF-8, with windows-1252 for invalid bytes; see hl7v2.WithCharset).
	Charset string
	// DuplicatePolicy is settings.duplicatePolicy: what a resend of a stored key (MSH-3, MSH-10)
	// with other bytes gets: connector.DuplicatePolicyReject (the default, also for "" and
	// unknown values) answers AR and ERR 205 (duplicate key identifier), storing nothing;
	// connector.DuplicatePolicyAccept stores it as a new message, flagged duplicate_of the
	// original, with its own workflow (workflows.InboundHL7DuplicateWorkflowID). A resend with
	// the same bytes is never a new message: it gets the stored ACK again under either policy.
	DuplicatePolicy string
}

// readOptions are the hl7v2 options that read the connector's messages.
func (c Connector) readOptions() []hl7v2.Option {
	if c.Charset == "" {
		return nil
	}
	return []hl7v2.Option{hl7v2.WithCharset(c.Charset)}
}

// Ingestor is the durable half of the inbound path: it stores each message and only then
// builds the ACK. Nothing it acknowledges can be lost, because the ACK is returned only after
// the raw bytes are committed; a resend of a stored message gets the stored ACK again.
type Ingestor struct {
	Pool    *db.Pool
	Starter *Starter
	Metrics *Metrics
	Logger  *slog.Logger
	// NewControlID makes ACK control ids; nil means a random UUID without dashes.
	NewControlID func() string
	// Now is the clock for ACK timestamps; nil means time.Now.
	Now func() time.Time
	// RejectedKeepBytes bounds the prefix of rejected input kept for audit; 0 means
	// DefaultRejectedKeepBytes.
	RejectedKeepBytes int
	// RejectedPerMinute is how many rejected inputs each connector may store per minute (a
	// token bucket with as many in reserve); 0 means DefaultRejectedPerMinute. Beyond it
	// rejected input is answered as always, counted (interop_mllp_rejected_not_stored_total)
	// and logged, but not stored.
	RejectedPerMinute int

	budgetMu sync.Mutex
	budgets  map[uuid.UUID]*rejectBudget
}

// rejectBudget is one connector's rejected-input storage budget.
type rejectBudget struct {
	limiter *rate.Limiter
	dropped int64 // since the last one stored, for the log
}

// Defaults of the rejected-input audit.
const (
	DefaultRejectedKeepBytes = 64 << 10
	DefaultRejectedPerMinute = 60
)

// Handler returns the MLLP handler of one connector. A frame holds one message, or an HL7
// batch (FHS/BHS envelope), whose messages are each handled as if they had come alone and
// answered together with a batch acknowledgment (see ingestBatch).
func (in *Ingestor) Handler(c Connector) mllp.Handler {
	return mllp.HandlerFunc(func(ctx context.Context, conn mllp.ConnInfo, msg []byte) []byte {
		start := time.Now()
		if isBatch(msg) {
			if reply, ok := in.ingestBatch(ctx, c, conn, msg); ok {
				in.observeAck(c, start)
				return reply
			}
			// No MSH at all: answered like any input without a readable MSH.
		}
		ack, code := in.ingest(ctx, c, conn, msg)
		in.countMessage(c, code)
		in.observeAck(c, start)
		return ack
	})
}

func (in *Ingestor) countMessage(c Connector, code string) {
	if in.Metrics != nil {
		in.Metrics.MLLPMessages.WithLabelValues(c.Name, code).Inc()
	}
}

func (in *Ingestor) observeAck(c Connector, start time.Time) {
	if in.Metrics != nil {
		in.Metrics.MLLPAckSeconds.WithLabelValues(c.Name).Observe(time.Since(start).Seconds())
	}
}

// FrameErrorHandler keeps what arrived of an unreadable frame for audit.
func (in *Ingestor) FrameErrorHandler(c Connector) func(mllp.ConnInfo, error, []byte) {
	return func(conn mllp.ConnInfo, err error, partial []byte) {
		reason := "frame error"
		var fe *mllp.FrameError
		if errors.As(err, &fe) && fe.Err != nil {
			reason = fe.Err.Error()
		}
		if in.Metrics != nil {
			in.Metrics.MLLPFrameErrors.WithLabelValues(c.Name, reason).Inc()
		}
		in.Logger.Warn("unreadable mllp frame", "connector_id", c.ID, "conn_id", conn.ID, "reason", reason, "size_bytes", len(partial))
		if len(partial) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		size := int64(len(partial))
		if fe != nil && fe.Size > size {
			size = fe.Size
		}
		in.keepRejected(ctx, c, conn, partial, size, reason)
	}
}

// ingest stores one message and returns the reply to send (nil: none) and its code for the
// metrics. Whatever it acknowledges positively is committed before it returns.
func (in *Ingestor) ingest(ctx context.Context, c Connector, conn mllp.ConnInfo, msg []byte) (ack []byte, code string) {
	h, err := hl7v2.ReadHeader(msg, c.readOptions()...)
	if err != nil {
		in.keepRejected(ctx, c, conn, msg, int64(len(msg)), "unreadable MSH: "+err.Error())
		nak, nakErr := hl7v2.BuildNak(hl7v2.NakInput{Cause: err, ControlID: in.controlID(), Now: in.now()})
		if nakErr != nil {
			in.Logger.Error("build nak", "connector_id", c.ID, "error", nakErr)
			return nil, "AR"
		}
		return nak, "AR"
	}
	if hl7v2.IsAck(h) {
		// Never acknowledge an acknowledgement: that is how two engines loop forever.
		in.Logger.Info("ignored an ACK sent to an inbound listener", "connector_id", c.ID, "message_control_id", h.ControlID)
		return nil, "ignored"
	}
	if h.ControlID == "" {
		in.keepRejected(ctx, c, conn, msg, int64(len(msg)), "MSH-10 message control id is empty")
		return in.reply(c, msg, h, hl7v2.OutcomeRejected, "MSH-10 (message control id) is required",
			hl7v2.AckError{Code: hl7v2.ErrorCodeRequiredFieldMissing, Location: hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}})
	}
	if text, e, refused := envelopeRefusal(h); refused {
		in.keepRejected(ctx, c, conn, msg, int64(len(msg)), text)
		return in.reply(c, msg, h, hl7v2.OutcomeRejected, text, e)
	}
	accept, code := in.reply(c, msg, h, hl7v2.OutcomeAccepted, "")
	if accept == nil {
		accept = []byte{} // the sender asked for no ACK (MSH-15 NE); store that choice, not NULL
	}
	sum := sha256.Sum256(msg)
	key := workflows.MessageKey{TenantID: c.TenantID, ConnectorID: c.ID, SendingApp: h.SendingApplication.String(), ControlID: h.ControlID}
	input := workflows.InboundHL7Input{TenantID: c.TenantID, ConnectorID: c.ID, MessageType: h.Type.Code + "^" + h.Type.Trigger}
	var msgTime *time.Time
	if t, _, err := hl7v2.ParseTime(h.Timestamp); err == nil {
		msgTime = &t
	}
	params := db.Hl7MessageInsertParams{
		TenantID: c.TenantID, ConnectorID: c.ID, MessageControlID: h.ControlID, SendingApp: key.SendingApp,
		SendingFacility: h.SendingFacility.String(), MessageCode: h.Type.Code, TriggerEvent: h.Type.Trigger,
		MessageStructure: h.Type.Structure, HL7Version: h.Version, MessageTime: msgTime,
		Raw: msg, RawSHA256: sum[:], AckCode: code, Ack: accept,
		WorkflowID: workflows.InboundHL7WorkflowID(key), RemoteAddr: addrString(conn),
	}

	res, stored, err := in.insertNew(ctx, c, params, input.MessageType)
	if err == nil && !stored {
		err = db.InTx(ctx, in.Pool, func(q *db.Queries) error {
			var err error
			res, err = in.store(ctx, q, c, key, params, input.MessageType)
			return err
		})
	}
	if err != nil {
		// Not stored, so not acknowledged: the sender must resend.
		in.Logger.Error("store inbound message", "connector_id", c.ID, "message_control_id", h.ControlID, "error", err)
		return in.reply(c, msg, h, hl7v2.OutcomeError, "message not stored; resend it",
			hl7v2.AckError{Code: hl7v2.ErrorCodeInternal})
	}
	switch {
	case res.replay:
		in.Logger.Info("duplicate message: replayed its ACK", "connector_id", c.ID, "message_control_id", h.ControlID, "message_id", res.id)
		if len(res.ack) == 0 {
			return nil, "duplicate"
		}
		return res.ack, "duplicate"
	case res.conflict:
		in.Logger.Warn("same control id, different content: rejected", "connector_id", c.ID, "message_control_id", h.ControlID, "message_id", res.id)
		return in.reply(c, msg, h, hl7v2.OutcomeRejected, "MSH-10 "+h.ControlID+" was already received from this sender with different content",
			hl7v2.AckError{Code: hl7v2.ErrorCodeDuplicateKey, Location: hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}})
	case res.duplicateOf != uuid.Nil:
		in.Logger.Warn("same control id, different content: stored as a flagged duplicate", "connector_id", c.ID,
			"message_control_id", h.ControlID, "message_id", res.id, "duplicate_of", res.duplicateOf, "workflow_id", res.workflowID)
	}
	input.MessageID = res.id
	if in.Starter != nil {
		in.Starter.Enqueue(StartRequest{WorkflowID: res.workflowID, Input: input})
	}
	if len(accept) == 0 {
		return nil, code
	}
	return accept, code
}

// storeResult is what store did with a message.
type storeResult struct {
	// id is the stored message: the new row, or the one whose ACK is replayed or whose key
	// the message conflicts with.
	id         uuid.UUID
	workflowID string // of the new row
	// replay: these exact bytes are stored already (as id); ack is the ACK they got.
	replay bool
	ack    []byte
	// conflict: the key is taken by other bytes and the connector rejects such resends.
	conflict bool
	// duplicateOf is set when the message was stored as a flagged duplicate of this one.
	duplicateOf uuid.UUID
}

// insertNew stores a message whose key is new, with its Hl7MessageReceived event, in one
// statement: the common case costs one round trip and one commit (bench/system: ack,
// 'insert+event 1 stmt'). stored is false, and nothing is written, when the key is taken;
// store then decides between replay, conflict and flagged duplicate.
func (in *Ingestor) insertNew(ctx context.Context, c Connector, p db.Hl7MessageInsertParams, messageType string) (storeResult, bool, error) {
	id, err := uuid.NewV7() // time-ordered: new rows land at the right edge of the primary key
	if err != nil {
		return storeResult{}, false, fmt.Errorf("message id: %w", err)
	}
	ev, err := outbox.NewEvent(c.TenantID, outbox.Hl7MessageReceived, receivedPayload(c, id, messageType, uuid.Nil))
	if err != nil {
		return storeResult{}, false, err
	}
	row, err := db.New(in.Pool).Hl7MessageInsertReceived(ctx, db.Hl7MessageInsertReceivedParams{
		ID: id, TenantID: p.TenantID, ConnectorID: p.ConnectorID, MessageControlID: p.MessageControlID,
		SendingApp: p.SendingApp, SendingFacility: p.SendingFacility, MessageCode: p.MessageCode,
		TriggerEvent: p.TriggerEvent, MessageStructure: p.MessageStructure, HL7Version: p.HL7Version,
		MessageTime: p.MessageTime, Raw: p.Raw, RawSHA256: p.RawSHA256, AckCode: p.AckCode, Ack: p.Ack,
		WorkflowID: p.WorkflowID, RemoteAddr: p.RemoteAddr,
		EventType: string(ev.Type), AggregateType: ev.AggregateType, EventPayload: ev.Payload,
	})
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return storeResult{}, false, nil
		}
		return storeResult{}, false, fmt.Errorf("insert message: %w", err)
	}
	return storeResult{id: row.ID, workflowID: p.WorkflowID}, true, nil
}

// store inserts a message and its Hl7MessageReceived event, in the caller's transaction,
// unless its key (connector, MSH-10, MSH-3) is taken: then the same bytes are a replay, and
// other bytes are a conflict, or, under DuplicatePolicyAccept, a new message flagged as a
// duplicate of the original.
func (in *Ingestor) store(ctx context.Context, q *db.Queries, c Connector, key workflows.MessageKey,
	p db.Hl7MessageInsertParams, messageType string) (storeResult, error) {
	row, err := q.Hl7MessageInsert(ctx, p)
	if err == nil {
		return storeResult{id: row.ID, workflowID: p.WorkflowID}, emitReceived(ctx, q, c, row.ID, messageType, uuid.Nil)
	}
	if !errors.Is(err, db.ErrNotFound) {
		return storeResult{}, fmt.Errorf("insert message: %w", err)
	}
	// The key is taken (ON CONFLICT waited for the row's transaction to commit).
	orig, err := q.Hl7MessageGetByKey(ctx, db.Hl7MessageGetByKeyParams{ConnectorID: c.ID, MessageControlID: p.MessageControlID, SendingApp: p.SendingApp})
	if err != nil {
		return storeResult{}, fmt.Errorf("read duplicate: %w", err)
	}
	if bytes.Equal(orig.RawSHA256, p.RawSHA256) {
		return storeResult{id: orig.ID, replay: true, ack: orig.Ack}, nil
	}
	accept := c.DuplicatePolicy == connector.DuplicatePolicyAccept
	if accept {
		// Resends with other bytes are numbered one at a time: the lock holds until commit,
		// so the list below sees every duplicate committed before it.
		if _, err := q.Hl7MessageLockForDuplicate(ctx, orig.ID); err != nil {
			return storeResult{}, fmt.Errorf("lock original %s: %w", orig.ID, err)
		}
	}
	// A resend of a flagged duplicate (stored while the policy was accept) replays its ACK.
	dups, err := q.Hl7MessageListDuplicates(ctx, &orig.ID)
	if err != nil {
		return storeResult{}, fmt.Errorf("list duplicates of %s: %w", orig.ID, err)
	}
	for _, d := range dups {
		if bytes.Equal(d.RawSHA256, p.RawSHA256) {
			return storeResult{id: d.ID, replay: true, ack: d.Ack}, nil
		}
	}
	if !accept {
		return storeResult{id: orig.ID, conflict: true}, nil
	}
	wf := workflows.InboundHL7DuplicateWorkflowID(key, len(dups)+1)
	dup, err := q.Hl7MessageInsertDuplicate(ctx, db.Hl7MessageInsertDuplicateParams{
		TenantID: p.TenantID, ConnectorID: p.ConnectorID, MessageControlID: p.MessageControlID, SendingApp: p.SendingApp,
		SendingFacility: p.SendingFacility, MessageCode: p.MessageCode, TriggerEvent: p.TriggerEvent,
		MessageStructure: p.MessageStructure, HL7Version: p.HL7Version, MessageTime: p.MessageTime,
		Raw: p.Raw, RawSHA256: p.RawSHA256, AckCode: p.AckCode, Ack: p.Ack,
		WorkflowID: wf, RemoteAddr: p.RemoteAddr, DuplicateOf: &orig.ID,
	})
	if err != nil {
		return storeResult{}, fmt.Errorf("insert duplicate of %s: %w", orig.ID, err)
	}
	return storeResult{id: dup.ID, workflowID: wf, duplicateOf: orig.ID}, emitReceived(ctx, q, c, dup.ID, messageType, orig.ID)
}

// emitReceived records the Hl7MessageReceived event of a stored message; duplicateOf is set
// for a flagged duplicate.
func emitReceived(ctx context.Context, q *db.Queries, c Connector, id uuid.UUID, messageType string, duplicateOf uuid.UUID) error {
	return outbox.Emit(ctx, q, c.TenantID, outbox.Hl7MessageReceived, id.String(), receivedPayload(c, id, messageType, duplicateOf))
}

func receivedPayload(c Connector, id uuid.UUID, messageType string, duplicateOf uuid.UUID) map[string]any {
	payload := map[string]any{"messageId": id, "connectorId": c.ID, "messageType": messageType}
	if duplicateOf != uuid.Nil {
		payload["duplicateOf"] = duplicateOf
	}
	return payload
}

// reply builds the ACK of msg (whose header is h) for an outcome in the mode (original or
// enhanced) the sender asked for in MSH-15/16; nil when the sender asked for none (NE, or ER
// on success). The ACK echoes MSH values, so it is written in the character set msg was read
// with.
func (in *Ingestor) reply(c Connector, msg []byte, h hl7v2.Header, o hl7v2.Outcome, text string, errs ...hl7v2.AckError) ([]byte, string) {
	code, send := hl7v2.ChooseAck(h, o)
	if !send {
		return nil, string(code)
	}
	ack, err := hl7v2.BuildAck(h, hl7v2.AckInput{Code: code, Text: text, Errors: errs, ControlID: in.controlID(), Now: in.now()})
	if err != nil {
		// Only a missing control id fails here, and controlID always makes one.
		in.Logger.Error("build ack", "message_control_id", h.ControlID, "error", err)
		return nil, string(code)
	}
	if !isASCII(ack) { // the usual ACK is ASCII, the same in every charset
		ack = encodeAck(ack, ackCharset(h, c, msg))
	}
	return ack, string(code)
}

// ackCharsets are the single-byte character sets (by hl7v2.CanonicalCharset name) an ACK can
// be written back in.
var ackCharsets = map[string]*charmap.Charmap{
	"8859/1": charmap.ISO8859_1, "8859/2": charmap.ISO8859_2, "8859/3": charmap.ISO8859_3,
	"8859/4": charmap.ISO8859_4, "8859/5": charmap.ISO8859_5, "8859/6": charmap.ISO8859_6,
	"8859/7": charmap.ISO8859_7, "8859/8": charmap.ISO8859_8, "8859/9": charmap.ISO8859_9,
	"8859/15": charmap.ISO8859_15, "WINDOWS-1252": charmap.Windows1252,
}

// ackCharset returns the single-byte character set msg was read with, in which its ACK must
// be written for the sender to read the MSH values it echoes (MSH-3 to -6, MSH-10) as it wrote
// them; nil when the message was read as UTF-8 (or ASCII). It follows hl7v2's rules: valid
// UTF-8 is read as UTF-8; otherwise the single-byte charset MSH-18 declares, else, when
// MSH-18 is empty or ASCII, the connector's.
func ackCharset(h hl7v2.Header, c Connector, msg []byte) *charmap.Charmap {
	if utf8.Valid(msg) {
		return nil
	}
	declared := ""
	if len(h.CharacterSets) > 0 {
		declared, _ = hl7v2.CanonicalCharset(h.CharacterSets[0])
	}
	if cm := ackCharsets[declared]; cm != nil {
		return cm
	}
	if declared != "" && declared != "ASCII" || c.Charset == "" {
		return nil
	}
	name, _ := hl7v2.CanonicalCharset(c.Charset)
	return ackCharsets[name]
}

// encodeAck writes an ACK built in UTF-8 in cs (nil: leaves it UTF-8). Characters cs lacks
// (only from our own texts) become its substitute byte.
func encodeAck(ack []byte, cs *charmap.Charmap) []byte {
	if cs == nil {
		return ack
	}
	out, err := encoding.ReplaceUnsupported(cs.NewEncoder()).Bytes(ack)
	if err != nil {
		return ack
	}
	return out
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// keepRejected stores rejected input for audit: a prefix of at most RejectedKeepBytes, with
// size (the bytes received, at least len(raw)) and the SHA-256 of raw, within the connector's
// budget per minute. Beyond the budget it counts and logs what it did not store.
func (in *Ingestor) keepRejected(ctx context.Context, c Connector, conn mllp.ConnInfo, raw []byte, size int64, reason string) {
	sum := sha256.Sum256(raw)
	if ok, dropped := in.rejectAllowed(c.ID); !ok {
		if in.Metrics != nil {
			in.Metrics.MLLPRejectedDropped.WithLabelValues(c.Name).Inc()
		}
		if dropped == 1 || dropped%100 == 0 {
			in.Logger.Warn("rejected input not stored: the connector's budget per minute is spent", "connector_id", c.ID,
				"reason", reason, "size_bytes", size, "not_stored", dropped)
		}
		return
	}
	keep := in.RejectedKeepBytes
	if keep <= 0 {
		keep = DefaultRejectedKeepBytes
	}
	prefix := raw[:min(len(raw), keep)]
	if _, err := db.New(in.Pool).Hl7RejectedInputInsert(ctx, db.Hl7RejectedInputInsertParams{
		TenantID: c.TenantID, ConnectorID: c.ID, Raw: prefix, SizeBytes: max(size, int64(len(raw))), RawSHA256: sum[:],
		Reason: reason, RemoteAddr: addrString(conn),
	}); err != nil {
		in.Logger.Error("keep rejected input for audit", "connector_id", c.ID, "size_bytes", size, "error", err)
	}
}

// rejectAllowed takes a token of connector id's budget; when there is none it reports how
// many inputs went unstored since the last one stored.
func (in *Ingestor) rejectAllowed(id uuid.UUID) (bool, int64) {
	in.budgetMu.Lock()
	defer in.budgetMu.Unlock()
	if in.budgets == nil {
		in.budgets = map[uuid.UUID]*rejectBudget{}
	}
	b := in.budgets[id]
	if b == nil {
		n := in.RejectedPerMinute
		if n <= 0 {
			n = DefaultRejectedPerMinute
		}
		b = &rejectBudget{limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)}
		in.budgets[id] = b
	}
	if b.limiter.Allow() {
		b.dropped = 0
		return true, 0
	}
	b.dropped++
	return false, b.dropped
}

func (in *Ingestor) controlID() string {
	if in.NewControlID != nil {
		return in.NewControlID()
	}
	// 20 characters: the length MSH-10 allows up to v2.5, which many receivers still enforce.
	var b [12]byte
	_, _ = rand.Read(b[:])
	return controlIDEncoding.EncodeToString(b[:])
}

func (in *Ingestor) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func addrString(conn mllp.ConnInfo) string {
	if conn.RemoteAddr == nil {
		return ""
	}
	return conn.RemoteAddr.String()
}

var controlIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
