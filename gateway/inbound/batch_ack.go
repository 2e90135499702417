package inbound

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// Batches over MLLP. Some senders put an HL7 batch ([FHS] { [BHS] { MSH … } [BTS] } [FTS])
// into one frame. Each message in it is handled exactly as if it had come alone — its own row,
// dedup, ACK and workflow — and the frame is answered with one batch acknowledgment (HL7 v2
// chapter 2, acknowledging batches) holding the ACK of every message that asks for one.

// maxBatchProblemsLogged bounds the log lines about one batch's envelope problems.
const maxBatchProblemsLogged = 10

// isBatch reports whether a frame's payload starts, after an optional UTF-8 BOM and
// whitespace, with an FHS or BHS segment.
func isBatch(msg []byte) bool {
	msg = bytes.TrimPrefix(msg, []byte("\xEF\xBB\xBF"))
	msg = bytes.TrimLeft(msg, " \t\r\n")
	if len(msg) < 3 || !bytes.HasPrefix(msg, []byte("FHS")) && !bytes.HasPrefix(msg, []byte("BHS")) {
		return false
	}
	// The segment ID ends at the field separator (or the line): "BHSX|" is not a BHS.
	return len(msg) == 3 || !isAlnum(msg[3])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// ingestBatch handles a frame holding a batch: it splits it, ingests every message one after
// the other (each committed before the next starts, so all are committed before the reply is
// returned) and builds the batch acknowledgment. ok is false when the frame holds no MSH at
// all; the caller then answers it as an unreadable message.
//
// Envelope problems (missing trailers, wrong counts, stray segments) never reject the
// messages: they are logged, and their number is written in the reply's trailer comment.
func (in *Ingestor) ingestBatch(ctx context.Context, c Connector, conn mllp.ConnInfo, frame []byte) (reply []byte, ok bool) {
	f, err := hl7v2.SplitBatch(frame)
	if err != nil {
		return nil, false
	}
	var problems []hl7v2.Problem
	for _, p := range f.Problems {
		if p.Severity >= hl7v2.SeverityError {
			problems = append(problems, p)
		}
	}
	for i, p := range problems {
		if i == maxBatchProblemsLogged {
			in.Logger.Warn("batch envelope problems not logged", "connector_id", c.ID, "conn_id", conn.ID, "more", len(problems)-i)
			break
		}
		in.Logger.Warn("batch envelope problem", "connector_id", c.ID, "conn_id", conn.ID,
			"code", p.Code, "line", f.Line(p.Offset), "problem", p.Message)
	}

	acks := make([][]byte, len(f.Messages))
	accepted := 0
	for i, m := range f.Messages {
		ack, code := in.ingest(ctx, c, conn, m.Data)
		in.countMessage(c, code)
		acks[i] = ack
		if code == string(hl7v2.AppAccept) || code == string(hl7v2.CommitAccept) || code == "duplicate" {
			accepted++
		}
	}
	in.Logger.Info("batch received", "connector_id", c.ID, "conn_id", conn.ID, "messages", len(f.Messages),
		"accepted", accepted, "envelope_problems", len(problems))

	comment := ""
	if len(problems) > 0 {
		comment = fmt.Sprintf("%d batch structure problem(s) in the received batch; every message was handled. First: %s",
			len(problems), truncateText(problems[0].Message, 160))
	}
	return buildBatchAck(batchAckInput{File: f, Acks: acks, Comment: comment, ControlID: in.controlID, Now: in.now()}), true
}

// batchAckInput is what buildBatchAck needs.
type batchAckInput struct {
	File *hl7v2.BatchFile
	// Acks holds the ACK of each message of File.Messages, by index; nil for a message that
	// gets none (MSH-15/16 asked for none, or it is itself an acknowledgment).
	Acks [][]byte
	// Comment, when set, goes into BTS-2 of the last batch and FTS-2.
	Comment   string
	ControlID func() string // control ids of the reply's FHS and BHS segments (FHS-11, BHS-11)
	Now       time.Time     // FHS-7 and BHS-7
}

// buildBatchAck builds the acknowledgment of a batch: with the delimiters of the received
// envelope,
//
//	[FHS]   when the input has an FHS: its sender and receiver (FHS-3/4 and FHS-5/6) swapped,
//	        FHS-7 now, FHS-11 a new control id, FHS-12 (reference) the received FHS-11
//	{ BHS   one per batch of the input that holds messages, likewise from its BHS (messages
//	        outside any BHS … BTS group form a batch of their own, described by the FHS):
//	        BHS-12 (reference batch control id) is the received BHS-11
//	  {ACK} the ACK of each of the batch's messages that gets one, in input order
//	  BTS } BTS-1 the number of ACK messages in the batch; BTS-2 Comment, on the last batch
//	[FTS]   FTS-1 the number of batches; FTS-2 Comment
//
// A batch whose messages all asked for no ACK is answered with an empty batch, which HL7
// reads as "all accepted".
func buildBatchAck(in batchAckInput) []byte {
	f := in.File
	d := f.Delimiters
	now := hl7v2.FormatTime(in.Now, hl7v2.PrecisionSecond)

	type group struct {
		header *hl7v2.Segment // BHS, or the FHS for messages outside any batch
		msgs   []int
	}
	var groups []group
	for i, m := range f.Messages {
		if n := len(groups); n > 0 && f.Messages[groups[n-1].msgs[0]].Batch == m.Batch {
			groups[n-1].msgs = append(groups[n-1].msgs, i)
			continue
		}
		hdr := f.FHS
		if m.Batch >= 0 {
			hdr = f.Batches[m.Batch].BHS
		} else if hdr == nil && len(f.Batches) > 0 {
			hdr = f.Batches[0].BHS
		}
		groups = append(groups, group{header: hdr, msgs: []int{i}})
	}

	var b bytes.Buffer
	if f.FHS != nil {
		writeEnvelopeHeader(&b, "FHS", f.FHS, d, now, in.ControlID())
	}
	for gi, g := range groups {
		writeEnvelopeHeader(&b, "BHS", g.header, d, now, in.ControlID())
		n := 0
		for _, i := range g.msgs {
			if ack := in.Acks[i]; len(ack) > 0 {
				b.Write(ack)
				if ack[len(ack)-1] != '\r' {
					b.WriteByte('\r')
				}
				n++
			}
		}
		comment := ""
		if gi == len(groups)-1 {
			comment = in.Comment
		}
		writeTrailer(&b, "BTS", d, strconv.Itoa(n), comment)
	}
	if f.FHS != nil {
		writeTrailer(&b, "FTS", d, strconv.Itoa(len(groups)), in.Comment)
	}
	return b.Bytes()
}

// writeEnvelopeHeader writes an FHS or BHS answering the received header recv (nil: unknown):
// fields 3 to 6 swapped, 7 now, 11 our control id, 12 the received field 11.
func writeEnvelopeHeader(b *bytes.Buffer, name string, recv *hl7v2.Segment, d hl7v2.Delimiters, now, controlID string) {
	hd := func(n int) string {
		if recv == nil {
			return ""
		}
		f := recv.Field(n)
		return joinComponents(d, f.Component(1).Value(), f.Component(2).Value(), f.Component(3).Value())
	}
	ref := ""
	if recv != nil {
		ref = d.EscapeValue(recv.Field(11).Value())
	}
	fields := []string{
		hd(5), hd(6), hd(3), hd(4), // 3-6: we send to whoever sent to us
		now,        // 7: creation time
		"", "", "", // 8-10: security, name/ID/type, comment
		d.EscapeValue(controlID), // 11: our control id
		ref,                      // 12: the control id being answered
	}
	b.WriteString(name)
	b.WriteByte(d.Field)
	b.WriteString(d.EncodingCharacters())
	writeFields(b, d, fields)
}

// writeTrailer writes a BTS or FTS segment: field 1 count, field 2 comment.
func writeTrailer(b *bytes.Buffer, name string, d hl7v2.Delimiters, count, comment string) {
	b.WriteString(name)
	writeFields(b, d, []string{count, d.EscapeValue(comment)})
}

// writeFields writes encoded fields, each preceded by the field separator, trailing empty
// ones left out, and the segment terminator.
func writeFields(b *bytes.Buffer, d hl7v2.Delimiters, fields []string) {
	n := len(fields)
	for n > 0 && fields[n-1] == "" {
		n--
	}
	for _, f := range fields[:n] {
		b.WriteByte(d.Field)
		b.WriteString(f)
	}
	b.WriteByte('\r')
}

// joinComponents escapes parts and joins them into one field, trailing empty ones left out.
func joinComponents(d hl7v2.Delimiters, parts ...string) string {
	n := len(parts)
	for n > 0 && parts[n-1] == "" {
		n--
	}
	enc := make([]string, n)
	for i, p := range parts[:n] {
		enc[i] = d.EscapeValue(p)
	}
	return strings.Join(enc, string(d.Component))
}

// truncateText cuts s to at most n characters, marking a cut with "...". The reply's
// character set is the sender's, unknown here, so the text is kept ASCII: other characters
// become '?'.
func truncateText(s string, n int) string {
	var b strings.Builder
	k := 0
	for _, r := range s {
		if k == n {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
		k++
	}
	return b.String()
}
