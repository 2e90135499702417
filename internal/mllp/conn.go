package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// serverConn is one connection accepted by a Server.
type serverConn struct {
	srv  *Server
	nc   net.Conn
	info ConnInfo

	mu sync.Mutex
	// active is set from a frame's start block until its reply is written:
	// Shutdown leaves such a connection to finish its message.
	active bool
	// closed is set once the server has closed nc.
	closed bool
}

// serve runs the connection's read-handle-reply loop until the peer goes
// away, an error occurs or the server shuts down.
func (c *serverConn) serve() {
	s := c.srv
	log := s.logger().With("conn_id", c.info.ID, "remote_addr", addrString(c.info.RemoteAddr))
	log.Debug("mllp connection opened", "local_addr", addrString(c.info.LocalAddr))
	var messages uint64
	reason := "server shutdown"
	defer func() {
		// Only OnFrameError can get here: handler panics are recovered in
		// handle. Either way one connection must not take the server down.
		if p := recover(); p != nil {
			reason = "panic"
			log.Error("mllp connection panicked", "panic", p, "stack", string(debug.Stack()))
		}
		c.close()
		s.removeConn(c)
		log.Debug("mllp connection closed", "reason", reason, "messages", messages,
			"duration", time.Since(c.info.Accepted))
	}()

	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			reason = "tls handshake failed"
			if c.isOpen() {
				log.Warn("mllp TLS handshake failed", "err", err)
			}
			return
		}
		if c.info.TLSPeer != "" {
			log.Info("mllp TLS client authenticated", "peer", c.info.TLSPeer)
		}
	}
	r := NewReader(connReader{c}, s.maxMessageSize())
	r.onStart = c.setActive
	for !s.inShutdown.Load() {
		msg, err := r.ReadFrame()
		c.reportJunk(log, r, err)
		if err != nil {
			reason = c.readFailed(log, err)
			return
		}
		if !c.isOpen() {
			// Shutdown closed the connection as the frame completed. No
			// reply can be sent, so the sender will retry: do not process
			// the message twice.
			return
		}
		start := time.Now()
		reply, ok := c.handle(log, msg)
		if !ok {
			reason = "handler panic"
			return
		}
		if reply != nil {
			if err := c.writeReply(reply); err != nil {
				reason = c.writeFailed(log, err)
				return
			}
		}
		messages++
		// Guarded so that the hot path does not box arguments for a log
		// line that is usually disabled.
		if log.Enabled(s.baseCtx, slog.LevelDebug) {
			log.Debug("mllp message handled", "bytes", len(msg), "reply_bytes", len(reply),
				"duration", time.Since(start))
		}
		c.setIdle()
	}
}

// handshake completes TLS before the first frame, bounded by the read timeout, so that a peer
// that connects and never completes the handshake holds its slot no longer than an idle one,
// and a failure is reported as what it is rather than as a read error. The verified client
// certificate's subject, if any, goes into the connection's info for the handler and the logs.
func (c *serverConn) handshake(tc *tls.Conn) error {
	ctx := c.srv.baseCtx
	if t := c.srv.ReadTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if chains := tc.ConnectionState().VerifiedChains; len(chains) > 0 && len(chains[0]) > 0 {
		c.info.TLSPeer = chains[0][0].Subject.String()
	}
	return nil
}

// handle calls the handler, turning a panic into ok == false so that the
// connection is closed without a reply.
func (c *serverConn) handle(log *slog.Logger, msg []byte) (reply []byte, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("mllp handler panicked", "panic", p, "bytes", len(msg), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return c.srv.Handler.ServeMLLP(c.srv.baseCtx, c.info, msg), true
}

func (c *serverConn) writeReply(reply []byte) error {
	if t := c.srv.WriteTimeout; t > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(t)); err != nil {
			return fmt.Errorf("set write deadline: %w", err)
		}
	}
	return WriteFrame(c.nc, reply)
}

// reportJunk reports bytes the last read discarded. ErrTooMuchJunk carries
// the same bytes and is reported by readFailed.
func (c *serverConn) reportJunk(log *slog.Logger, r *Reader, err error) {
	n, junk := r.Discarded()
	if n == 0 || errors.Is(err, ErrTooMuchJunk) {
		return
	}
	if int64(len(junk)) == n && isBlank(junk) {
		// Some senders end frames with an extra line feed or pad them
		// with blanks: harmless, and too frequent to audit.
		log.Debug("mllp blank bytes between frames discarded", "bytes", n)
		return
	}
	c.frameError(log, &FrameError{Err: ErrJunk, Partial: junk, Size: n})
}

// isBlank reports whether b holds only line endings, spaces and tabs.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// readFailed reports a read error and returns why the connection closes.
func (c *serverConn) readFailed(log *slog.Logger, err error) string {
	var fe *FrameError
	switch {
	case errors.Is(err, io.EOF):
		return "peer closed"
	case errors.As(err, &fe):
		c.frameError(log, fe)
		return "frame error"
	case !c.isOpen():
		return "server shutdown"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "read timeout"
	default:
		log.Info("mllp read failed", "err", err)
		return "read error"
	}
}

// writeFailed reports a write error and returns why the connection closes.
func (c *serverConn) writeFailed(log *slog.Logger, err error) string {
	if errors.Is(err, ErrInvalidPayload) {
		log.Error("mllp handler reply cannot be framed", "err", err)
		return "invalid reply"
	}
	if !c.isOpen() {
		return "server shutdown"
	}
	log.Warn("mllp reply write failed", "err", err)
	return "write error"
}

func (c *serverConn) frameError(log *slog.Logger, fe *FrameError) {
	log.Warn("mllp frame error", "err", fe, "bytes", fe.Size)
	if f := c.srv.OnFrameError; f != nil {
		f(c.info, fe, fe.Partial)
	}
}

func (c *serverConn) setActive() {
	c.mu.Lock()
	c.active = true
	c.mu.Unlock()
}

func (c *serverConn) setIdle() {
	c.mu.Lock()
	c.active = false
	c.mu.Unlock()
}

func (c *serverConn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed
}

// closeIfIdle closes the connection unless it is in the middle of a
// message. The state check and the decision are made under the lock so
// that a connection cannot start a message after being judged idle.
func (c *serverConn) closeIfIdle() {
	c.mu.Lock()
	idle := !c.active && !c.closed
	if idle {
		c.closed = true
	}
	c.mu.Unlock()
	if idle {
		// Closing outside the lock: a TLS close may block on the peer.
		_ = c.nc.Close()
	}
}

func (c *serverConn) close() {
	c.mu.Lock()
	wasClosed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !wasClosed {
		_ = c.nc.Close()
	}
}

// connReader applies the server's ReadTimeout to every read, which makes
// it an inactivity timeout: a slow but steady sender of a large message is
// not cut off, and time spent in the handler does not count.
type connReader struct{ c *serverConn }

func (r connReader) Read(p []byte) (int, error) {
	if t := r.c.srv.ReadTimeout; t > 0 {
		if err := r.c.nc.SetReadDeadline(time.Now().Add(t)); err != nil {
			return 0, err
		}
	}
	return r.c.nc.Read(p)
}
