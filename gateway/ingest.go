package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/workflows"
)

// Connector is what a listener knows of the InteropConnector it serves.
type Connector struct {
	ID       uuid.UUID
	TenantID string
	Name     string
}

// Ingestor is the durable half of the inbound path: it stores each message and only then
// builds the ACK. Nothing it acknowledges can be lost, because the ACK is returned only after
// the raw bytes are committed; a resend of a stored message gets the stored ACK again.
type Ingestor struct {
	Pool    *pgxpool.Pool
	Starter *Starter
	Metrics *Metrics
	Logger  *slog.Logger
	// NewControlID makes ACK control ids; nil means a random UUID without dashes.
	NewControlID func() string
	// Now is the clock for ACK timestamps; nil means time.Now.
	Now func() time.Time
}

// Handler returns the MLLP handler of one connector.
func (in *Ingestor) Handler(c Connector) mllp.Handler {
	return mllp.HandlerFunc(func(ctx context.Context, conn mllp.ConnInfo, msg []byte) []byte {
		start := time.Now()
		ack, code := in.ingest(ctx, c, conn, msg)
		if in.Metrics != nil {
			in.Metrics.MLLPMessages.WithLabelValues(c.Name, code).Inc()
			in.Metrics.MLLPAckSeconds.WithLabelValues(c.Name).Observe(time.Since(start).Seconds())
		}
		return ack
	})
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
		in.keepRejected(ctx, c, conn, partial, reason)
	}
}

func (in *Ingestor) ingest(ctx context.Context, c Connector, conn mllp.ConnInfo, msg []byte) (ack []byte, code string) {
	h, err := hl7v2.ReadHeader(msg)
	if err != nil {
		in.keepRejected(ctx, c, conn, msg, "unreadable MSH: "+err.Error())
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
		in.keepRejected(ctx, c, conn, msg, "MSH-10 message control id is empty")
		return in.reply(h, hl7v2.OutcomeRejected, "MSH-10 (message control id) is required",
			hl7v2.AckError{Code: hl7v2.ErrorCodeRequiredFieldMissing, Location: hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}})
	}
	accept, code := in.reply(h, hl7v2.OutcomeAccepted, "")
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

	var duplicate *db.Hl7MessageGetByKeyRow
	err = db.InTx(ctx, in.Pool, func(q *db.Queries) error {
		row, err := q.Hl7MessageInsert(ctx, db.Hl7MessageInsertParams{
			TenantID: c.TenantID, ConnectorID: c.ID, MessageControlID: h.ControlID, SendingApp: key.SendingApp,
			SendingFacility: h.SendingFacility.String(), MessageCode: h.Type.Code, TriggerEvent: h.Type.Trigger,
			MessageStructure: h.Type.Structure, Hl7Version: h.Version, MessageTime: msgTime,
			Raw: msg, RawSHA256: sum[:], AckCode: code, Ack: accept,
			WorkflowID: workflows.InboundHL7WorkflowID(key), RemoteAddr: addrString(conn),
		})
		if errors.Is(db.Interpret(err), db.ErrNotFound) {
			existing, err := q.Hl7MessageGetByKey(ctx, db.Hl7MessageGetByKeyParams{ConnectorID: c.ID, MessageControlID: h.ControlID, SendingApp: key.SendingApp})
			if err != nil {
				return fmt.Errorf("read duplicate: %w", err)
			}
			duplicate = &existing
			return nil
		}
		if err != nil {
			return fmt.Errorf("insert message: %w", err)
		}
		input.MessageID = row.ID
		return outbox.Emit(ctx, q, c.TenantID, outbox.Hl7MessageReceived, row.ID.String(), map[string]any{
			"messageId": row.ID, "connectorId": c.ID, "messageType": input.MessageType,
		})
	})
	if err != nil {
		// Not stored, so not acknowledged: the sender must resend.
		in.Logger.Error("store inbound message", "connector_id", c.ID, "message_control_id", h.ControlID, "error", err)
		return in.reply(h, hl7v2.OutcomeError, "message not stored; resend it",
			hl7v2.AckError{Code: hl7v2.ErrorCodeInternal})
	}
	if duplicate != nil {
		if [32]byte(duplicate.RawSHA256) == sum {
			in.Logger.Info("duplicate message: replayed its ACK", "connector_id", c.ID, "message_control_id", h.ControlID, "message_id", duplicate.ID)
			if len(duplicate.Ack) == 0 {
				return nil, "duplicate"
			}
			return duplicate.Ack, "duplicate"
		}
		in.Logger.Warn("same control id, different content: rejected", "connector_id", c.ID, "message_control_id", h.ControlID, "message_id", duplicate.ID)
		return in.reply(h, hl7v2.OutcomeRejected, "MSH-10 "+h.ControlID+" was already received from this sender with different content",
			hl7v2.AckError{Code: hl7v2.ErrorCodeDuplicateKey, Location: hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: 10}})
	}
	if in.Starter != nil {
		in.Starter.Enqueue(StartRequest{WorkflowID: workflows.InboundHL7WorkflowID(key), Input: input})
	}
	if len(accept) == 0 {
		return nil, code
	}
	return accept, code
}

// reply builds the ACK for an outcome in the mode (original or enhanced) the sender asked
// for in MSH-15/16; nil when the sender asked for none (NE, or ER on success).
func (in *Ingestor) reply(h hl7v2.Header, o hl7v2.Outcome, text string, errs ...hl7v2.AckError) ([]byte, string) {
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
	return ack, string(code)
}

func (in *Ingestor) keepRejected(ctx context.Context, c Connector, conn mllp.ConnInfo, raw []byte, reason string) {
	if _, err := db.New(in.Pool).Hl7RejectedInputInsert(ctx, db.Hl7RejectedInputInsertParams{
		TenantID: c.TenantID, ConnectorID: c.ID, Raw: raw, Reason: reason, RemoteAddr: addrString(conn),
	}); err != nil {
		in.Logger.Error("keep rejected input for audit", "connector_id", c.ID, "size_bytes", len(raw), "error", err)
	}
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
