package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// outcome is what one sender knows of one message it sent.
type outcome struct {
	sender int
	kind   kind
	app    string
	id     string // MSH-10
	sha    [32]byte
	// sends counts the frames written for it: 1, plus every resend after a connection error,
	// a timeout or an AE/CE.
	sends int
	aes   int // AE/CE answers, each followed by a resend
	// code is the final MSA-1 (AA, CA, AR, CR…), or "" when no final answer came before the
	// sender gave up.
	code    hl7v2.AckCode
	ackText string
	ackID   string // MSA-2 of the final answer
	sentAt  time.Time
	ackedAt time.Time
	latency time.Duration // of the exchange that got the final answer
	lastErr string
	// dup is the deliberate resend of an accepted message on the same connection: dupSent
	// when it was answered, dupSame when the answer was the stored ACK, byte for byte.
	dupSent, dupSame bool
	dupCode          hl7v2.AckCode
}

func (o *outcome) accepted() bool { return o.code.Accepted() }

// special is a message a sender slips into its feed when asked: the n-th poison, or the n-th
// sound message with a hostile MSH-10.
type special struct {
	poison bool
	n      int
}

// senderStats are counters shared by all senders, read by the progress line.
type senderStats struct {
	connects   atomic.Int64
	dialErrors atomic.Int64
	sendErrors atomic.Int64 // connection errors and timeouts, each followed by a resend
	aes        atomic.Int64
	accepted   atomic.Int64
	rejected   atomic.Int64
}

// sender is one MLLP client, as a hospital system's interface engine behaves: one connection,
// one message at a time, waiting for each ACK; on a connection error or a timeout it
// reconnects and resends the same bytes (same MSH-10), on AE it resends after a pause, and it
// only moves on once the message is accepted or rejected.
type sender struct {
	n          int
	addr       string
	rate       float64 // messages per second
	ackTimeout time.Duration
	dupEvery   int // every dupEvery-th accepted ordinary message is resent at once; 0: never
	feed       *feed
	specials   chan special
	stats      *senderStats

	mu  sync.Mutex
	out []*outcome

	conn *mllp.Client
}

// run sends until stop closes; the message in flight then is still delivered until giveUp
// ends. Message i is due at start + i/rate: after an outage the sender catches up, as an
// engine draining its queue does.
func (s *sender) run(giveUp context.Context, stop <-chan struct{}, start time.Time) {
	defer func() {
		if s.conn != nil {
			_ = s.conn.Close() // done sending
		}
	}()
	interval := time.Duration(float64(time.Second) / s.rate)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		select {
		case <-stop:
			return
		case <-time.After(time.Until(due)):
		}
		var k kind
		var id string
		var msg []byte
		now := time.Now()
		select {
		case sp := <-s.specials:
			if sp.poison {
				k, id, msg = s.feed.poison(now, sp.n)
			} else {
				k, id, msg = s.feed.hostile(now, sp.n)
			}
		default:
			k, id, msg = s.feed.next(now)
		}
		o := &outcome{sender: s.n, kind: k, app: s.feed.app, id: id, sha: sha256.Sum256(msg), sentAt: now}
		s.mu.Lock()
		s.out = append(s.out, o)
		s.mu.Unlock()
		ack := s.deliver(giveUp, o, msg)
		if o.accepted() && s.dupEvery > 0 && !k.expectDead() && i%s.dupEvery == s.dupEvery-1 {
			s.resendAccepted(o, msg, ack)
		}
		if giveUp.Err() != nil {
			return
		}
	}
}

// outcomes returns what the sender recorded; call it once run has returned.
func (s *sender) outcomes() []*outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

// deliver sends msg until it gets a final answer or ctx ends, and returns the ACK's bytes.
func (s *sender) deliver(ctx context.Context, o *outcome, msg []byte) []byte {
	backoff := 100 * time.Millisecond
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	for {
		if err := ctx.Err(); err != nil {
			o.lastErr = "gave up: " + o.lastErr
			return nil
		}
		if s.conn == nil {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := mllp.Dial(dctx, s.addr)
			cancel()
			if err != nil {
				s.stats.dialErrors.Add(1)
				o.lastErr = err.Error()
				pause()
				continue
			}
			s.conn = c
			s.stats.connects.Add(1)
		}
		o.sends++
		sctx, cancel := context.WithTimeout(ctx, s.ackTimeout)
		began := time.Now()
		reply, err := s.conn.Send(sctx, msg)
		cancel()
		if err != nil {
			// The message may or may not be stored: the sender cannot know, so it resends
			// on a new connection, with the same MSH-10.
			s.stats.sendErrors.Add(1)
			o.lastErr = err.Error()
			_ = s.conn.Close() // unusable after an error
			s.conn = nil
			pause()
			continue
		}
		ack, err := hl7v2.ParseAck(reply)
		if err != nil {
			s.stats.sendErrors.Add(1)
			o.lastErr = "unreadable ACK: " + err.Error()
			_ = s.conn.Close() // out of step with the receiver
			s.conn = nil
			pause()
			continue
		}
		switch ack.Code {
		case hl7v2.AppError, hl7v2.CommitError:
			// "Not stored; resend it".
			o.aes++
			s.stats.aes.Add(1)
			o.lastErr = string(ack.Code) + ": " + ack.Text
			pause()
			continue
		case hl7v2.AppAccept, hl7v2.CommitAccept:
			s.stats.accepted.Add(1)
		default:
			s.stats.rejected.Add(1)
		}
		o.code, o.ackText, o.ackID = ack.Code, ack.Text, ack.ControlID
		o.ackedAt = time.Now()
		o.latency = o.ackedAt.Sub(began)
		return reply
	}
}

// resendAccepted sends an accepted message again at once, as a sender that missed the ACK
// would: the service must answer with the ACK it stored, byte for byte, and store nothing.
func (s *sender) resendAccepted(o *outcome, msg, ack []byte) {
	if s.conn == nil || ack == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ackTimeout)
	defer cancel()
	reply, err := s.conn.Send(ctx, msg)
	if err != nil {
		_ = s.conn.Close() // unusable after an error; the next message reconnects
		s.conn = nil
		return
	}
	o.dupSent = true
	o.dupSame = bytes.Equal(reply, ack)
	if info, err := hl7v2.ParseAck(reply); err == nil {
		o.dupCode = info.Code
	}
}

func (o *outcome) String() string {
	return fmt.Sprintf("%s %s (%s)", o.app, o.id, o.kind)
}
