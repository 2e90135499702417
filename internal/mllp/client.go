package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Client sends messages over one MLLP connection and reads one reply frame
// per message. Send calls are serialised, as MLLP requires. A Client is
// safe for concurrent use.
//
// After a failed Send the Client is unusable and every later Send fails:
// the reply of the failed exchange may still arrive, and would otherwise be
// taken for the reply to the next message. Close it and dial again.
type Client struct {
	conn net.Conn
	r    *Reader

	mu sync.Mutex
	// err is set by the first failed exchange.
	err error
}

// DialOption configures [Dial].
type DialOption func(*dialConfig)

type dialConfig struct {
	maxSize int
	dialer  *net.Dialer
	tls     *tls.Config
}

// WithMaxMessageSize bounds reply payloads; the default is
// [DefaultMaxMessageSize].
func WithMaxMessageSize(n int) DialOption {
	return func(c *dialConfig) { c.maxSize = n }
}

// WithDialer sets the dialer, for example to set a local address or TCP
// keep-alive settings. Its timeout applies in addition to the context's.
func WithDialer(d *net.Dialer) DialOption {
	return func(c *dialConfig) { c.dialer = d }
}

// WithTLSConfig makes Dial use TLS with the given configuration.
func WithTLSConfig(cfg *tls.Config) DialOption {
	return func(c *dialConfig) { c.tls = cfg }
}

// Dial connects to the MLLP server at addr ("host:port") over TCP, or TLS
// with [WithTLSConfig]. ctx bounds connecting (and the TLS handshake) only.
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Client, error) {
	cfg := dialConfig{dialer: &net.Dialer{}}
	for _, o := range opts {
		o(&cfg)
	}
	var (
		conn net.Conn
		err  error
	)
	if cfg.tls != nil {
		d := tls.Dialer{NetDialer: cfg.dialer, Config: cfg.tls}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = cfg.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mllp dial: %w", err)
	}
	return NewClient(conn, cfg.maxSize), nil
}

// NewClient returns a Client using conn, which it takes ownership of.
// maxSize bounds reply payloads; 0 means [DefaultMaxMessageSize].
func NewClient(conn net.Conn, maxSize int) *Client {
	return &Client{conn: conn, r: NewReader(conn, maxSize)}
}

// Send writes msg as one frame and returns the payload of the next frame
// received. ctx bounds the whole exchange: its deadline becomes the
// connection's, and cancelling it interrupts the exchange. A server that
// sends no reply makes Send wait until ctx ends, so give ctx a deadline.
// Junk received before the reply is skipped.
//
// A msg containing a frame delimiter fails with [ErrInvalidPayload], and a
// ctx already done fails with its error, before anything is written and
// leaving the Client usable; any other failure leaves it unusable (see
// [Client]). If ctx ended, the error matches
// ctx.Err() with errors.Is.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ValidatePayload(msg); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, fmt.Errorf("mllp client unusable after earlier error: %w", c.err)
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent, so the connection is still in step.
		return nil, fmt.Errorf("mllp send: %w", err)
	}
	reply, err := c.exchange(ctx, msg)
	if err != nil {
		if ctxErr := contextError(ctx, err); ctxErr != nil {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		c.err = err
		return nil, fmt.Errorf("mllp send: %w", err)
	}
	return reply, nil
}

// contextError returns the context error behind an exchange error, if any.
// The connection's deadline is the context's, but its timer may fire a
// moment before the context's own, so a deadline error past the context's
// deadline is the context's too.
func contextError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *Client) exchange(ctx context.Context, msg []byte) ([]byte, error) {
	deadline, _ := ctx.Deadline() // zero when none: clears an earlier one
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if ctx.Done() != nil {
		// Cancellation without a deadline cannot be expressed as one, so
		// interrupt blocked I/O by moving the deadline to the past. Wait
		// for that to finish before returning so that it cannot hit the
		// next exchange.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			_ = c.conn.SetDeadline(time.Unix(1, 0))
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
			}
		}()
	}
	if err := WriteFrame(c.conn, msg); err != nil {
		return nil, err
	}
	reply, err := c.r.ReadFrame()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("connection closed before reply: %w", err)
		}
		return nil, fmt.Errorf("read reply: %w", err)
	}
	return reply, nil
}

// Close closes the connection, interrupting a Send in progress.
func (c *Client) Close() error {
	return c.conn.Close()
}

// RemoteAddr returns the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }
