package mllp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// defaultAddr is the IANA-registered port for HL7 over MLLP.
const defaultAddr = ":2575"

// maxAcceptDelay caps the back-off after temporary accept errors, such as
// running out of file descriptors, so that the server recovers promptly
// once the condition clears.
const maxAcceptDelay = time.Second

// Server accepts MLLP connections and passes each message to a [Handler].
// Its exported fields must be set before serving starts and not changed
// afterwards. A Server must not be copied once used.
//
// Each connection is served by its own goroutine, one message at a time:
// read a frame, call the handler, write its reply, read the next frame.
//
// # Limits
//
// ReadTimeout closes connections on which nothing arrives for that long,
// whether between frames or inside one; time spent in the handler does not
// count. MaxMessageSize bounds each payload and, per read, the junk skipped
// between frames.
//
// When MaxConnections connections are open, a new connection is accepted
// and closed at once (and logged) rather than left waiting in the listen
// backlog: a sender whose connection is closed fails fast and retries,
// whereas one left in the backlog believes it is connected and times out
// waiting for acknowledgements of messages nobody reads.
//
// # Frame errors
//
// Junk bytes are reported to OnFrameError with [ErrJunk] and the
// connection carries on; junk made only of CR, LF, spaces and tabs, which
// some senders add after each frame, is skipped without a report.
//
// An oversized frame ([ErrFrameTooLarge]), a frame cut short
// ([ErrIncompleteFrame], also when ReadTimeout expires inside a frame) or
// too much junk ([ErrTooMuchJunk]) is reported and the connection is
// closed without a reply. For an oversized frame, the sender is still
// transmitting a message the server will not accept, and waiting for its
// end could take unbounded time; closing gives the sender a prompt, clear
// failure instead of a wait for an acknowledgement that never comes.
//
// # Shutdown
//
// [Server.Shutdown] stops accepting, closes connections that are idle (not
// receiving a frame, in the handler or writing a reply) and lets the others
// finish their current message, reply included, before closing them. If
// its context ends first, it cancels the handlers' context, closes every
// connection and returns the context's error. [Server.Close] does that at
// once. Both may be called before, during or after Serve, and more than
// once; afterwards Serve and ListenAndServe return [ErrServerClosed].
type Server struct {
	// Addr is the TCP address ListenAndServe listens on; empty means
	// ":2575", the port registered for HL7.
	Addr string
	// Handler is called for every message. It must not be nil.
	Handler Handler
	// MaxMessageSize bounds payloads, in bytes; 0 means
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// ReadTimeout closes a connection on which no byte arrives for this
	// long; 0 means no timeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one reply; 0 means no timeout.
	WriteTimeout time.Duration
	// MaxConnections bounds the open connections; 0 means no limit.
	MaxConnections int
	// OnFrameError, if set, is called for junk and for frames that cannot
	// be delivered, with the bytes concerned (also in err's
	// [FrameError.Partial], owned by the callee) so that the owner can keep
	// them for audit. err is a [*FrameError]. It runs on the connection's
	// goroutine, so it may be called concurrently for different
	// connections, and it delays that connection while it runs.
	OnFrameError func(conn ConnInfo, err error, partial []byte)
	// Logger receives the server's logs; nil means slog.Default(). Message
	// contents are never logged, only sizes and connection identifiers.
	Logger *slog.Logger

	// inShutdown is set once Shutdown or Close has been called. It is
	// written under mu so that starting a connection and shutting down
	// are ordered, and read without it on hot paths.
	inShutdown atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	nextID    uint64
	// baseCtx is the handlers' context; cancel ends it on Close.
	baseCtx context.Context
	cancel  context.CancelFunc
	// wg counts connection goroutines. Add is only called under mu
	// before shutdown, so Wait after shutdown is safe.
	wg sync.WaitGroup
}

// ListenAndServe listens on s.Addr and serves connections until the
// server is shut down, when it returns [ErrServerClosed]. To learn the
// address when listening on port 0, create the listener and call Serve.
func (s *Server) ListenAndServe() error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = defaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mllp listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each on a new goroutine until
// the server is shut down, when it returns [ErrServerClosed], or l fails.
// Serve takes ownership of l and closes it on return. Temporary accept
// errors are retried with back-off.
func (s *Server) Serve(l net.Listener) error {
	l = &onceCloseListener{Listener: l}
	defer func() { _ = l.Close() }()
	if !s.trackListener(l, true) {
		return ErrServerClosed
	}
	defer s.trackListener(l, false)
	if s.Handler == nil {
		return errors.New("mllp: server has no handler")
	}

	log := s.logger()
	log.Info("mllp server listening", "addr", addrString(l.Addr()))
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("mllp accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			log.Warn("mllp accept failed, retrying", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.startConn(nc)
	}
}

// Shutdown gracefully stops the server: see the Shutdown section of
// [Server]. It returns nil once every connection has closed, or ctx's error
// if ctx ends first, in which case the remaining connections are closed
// forcibly and their handlers' context cancelled. Connection goroutines
// may still be finishing when it returns that error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.beginShutdownLocked()
	conns := s.connsLocked()
	s.mu.Unlock()

	for _, c := range conns {
		c.closeIfIdle()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		_ = s.Close() // always nil
		return ctx.Err()
	}
}

// Close stops the server at once: it stops accepting, cancels the
// handlers' context and closes every connection, without waiting for
// handlers to return. It always returns nil; the error result mirrors
// [io.Closer].
func (s *Server) Close() error {
	s.mu.Lock()
	s.beginShutdownLocked()
	conns := s.connsLocked()
	cancel := s.cancel
	s.mu.Unlock()

	cancel()
	for _, c := range conns {
		c.close()
	}
	return nil
}

// initLocked prepares the zero Server for use.
func (s *Server) initLocked() {
	if s.conns != nil {
		return
	}
	s.listeners = make(map[net.Listener]struct{})
	s.conns = make(map[*serverConn]struct{})
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
}

// beginShutdownLocked marks the server as shutting down and closes its
// listeners so that the Serve loops return.
func (s *Server) beginShutdownLocked() {
	s.initLocked()
	s.inShutdown.Store(true)
	for l := range s.listeners {
		// Serve sees inShutdown and returns ErrServerClosed; the close
		// error carries no information.
		_ = l.Close()
	}
}

func (s *Server) connsLocked() []*serverConn {
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// trackListener registers or forgets l; it refuses to register once the
// server is shutting down.
func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if !add {
		delete(s.listeners, l)
		return true
	}
	if s.inShutdown.Load() {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

// startConn registers nc and starts its goroutine, or closes it if the
// server is shutting down or full.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	if s.MaxConnections > 0 && len(s.conns) >= s.MaxConnections {
		s.mu.Unlock()
		_ = nc.Close()
		s.logger().Warn("mllp connection rejected: too many connections",
			"remote_addr", addrString(nc.RemoteAddr()), "max_connections", s.MaxConnections)
		return
	}
	s.nextID++
	c := &serverConn{
		srv: s,
		nc:  nc,
		info: ConnInfo{
			ID:         s.nextID,
			RemoteAddr: nc.RemoteAddr(),
			LocalAddr:  nc.LocalAddr(),
			Accepted:   time.Now(),
		},
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
}

// removeConn forgets c once its goroutine is done.
func (s *Server) removeConn(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxMessageSize() int {
	if s.MaxMessageSize <= 0 {
		return DefaultMaxMessageSize
	}
	return s.MaxMessageSize
}

// isTemporary reports accept errors worth retrying, such as EMFILE or
// ECONNABORTED. The Temporary method is deprecated for general use but
// remains how the net package flags these.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// onceCloseListener lets Serve and Shutdown both close a listener without
// the second close reporting a spurious error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
