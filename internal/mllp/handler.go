package mllp

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Handler responds to MLLP messages received by a [Server].
//
// ServeMLLP is called once per message. It is called concurrently for
// different connections but never for the same one: the next message on a
// connection is read only after the previous reply has been written. msg is the frame payload; it is owned by
// the handler, which may keep it. The returned reply is written back as one
// frame; a nil reply sends nothing, while an empty non-nil reply sends an
// empty frame. The server does not keep the reply after writing it.
//
// ctx is cancelled when the server is closed, or when a graceful
// [Server.Shutdown] runs out of time; it is not cancelled when Shutdown
// starts, so that messages already received can still be processed and
// acknowledged.
//
// A reply containing a frame delimiter (see [ValidatePayload]) or a panic
// in the handler closes the connection without a reply, so that the sender
// sees a failure and retries rather than waiting for an acknowledgement.
type Handler interface {
	ServeMLLP(ctx context.Context, conn ConnInfo, msg []byte) (reply []byte)
}

// HandlerFunc adapts an ordinary function to the [Handler] interface.
type HandlerFunc func(ctx context.Context, conn ConnInfo, msg []byte) []byte

// ServeMLLP calls f(ctx, conn, msg).
func (f HandlerFunc) ServeMLLP(ctx context.Context, conn ConnInfo, msg []byte) []byte {
	return f(ctx, conn, msg)
}

// ConnInfo identifies the connection a message arrived on, for logging and
// audit.
type ConnInfo struct {
	// ID is unique among the connections accepted by one Server, starting
	// at 1, so that log lines of one connection can be correlated.
	ID uint64
	// RemoteAddr is the peer's address.
	RemoteAddr net.Addr
	// LocalAddr is the address the connection was accepted on.
	LocalAddr net.Addr
	// Accepted is when the connection was accepted.
	Accepted time.Time
	// TLSPeer is the subject of the client certificate a TLS listener verified (mutual TLS),
	// "" on a plain connection or when no client certificate was asked for.
	TLSPeer string
}

// LogValue implements [slog.LogValuer], so that a ConnInfo logged as one
// attribute expands into a group with snake_case keys.
func (c ConnInfo) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("id", c.ID),
		slog.String("remote_addr", addrString(c.RemoteAddr)),
		slog.String("local_addr", addrString(c.LocalAddr)),
		slog.String("tls_peer", c.TLSPeer),
	)
}

// addrString formats a possibly nil address: net.Conn implementations
// other than TCP may not have one.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
