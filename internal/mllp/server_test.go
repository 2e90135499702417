package mllp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTimeout bounds every wait in these tests so that a bug shows as a
// failure rather than a hung test; it is never expected to elapse.
const testTimeout = 10 * time.Second

// ackHandler replies "ACK|" followed by the message.
func ackHandler() Handler {
	return HandlerFunc(func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		return append([]byte("ACK|"), msg...)
	})
}

// serve starts s on a loopback port and shuts it down when the test ends,
// checking that Serve returned ErrServerClosed. It returns the address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		select {
		case err := <-errc:
			require.ErrorIs(t, err, ErrServerClosed)
		case <-ctx.Done():
			t.Fatal("Serve did not return after Shutdown")
		}
	})
	return l.Addr().String()
}

// rawConn is a test peer speaking MLLP by hand.
type rawConn struct {
	t *testing.T
	net.Conn
	r *Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(testTimeout)))
	return &rawConn{t: t, Conn: c, r: NewReader(c, 0)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	_, err := c.Write([]byte(s))
	require.NoError(c.t, err)
}

func (c *rawConn) send(msg string) {
	c.t.Helper()
	require.NoError(c.t, WriteFrame(c, []byte(msg)))
}

func (c *rawConn) readFrame() string {
	c.t.Helper()
	f, err := c.r.ReadFrame()
	require.NoError(c.t, err)
	return string(f)
}

// expectClosed asserts that the server closed the connection, without
// sending anything more.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	f, err := c.r.ReadFrame()
	require.Nil(c.t, f)
	require.Error(c.t, err)
	require.False(c.t, errors.Is(err, net.ErrClosed), "connection closed locally")
	var ne net.Error
	if errors.As(err, &ne) {
		require.False(c.t, ne.Timeout(), "server did not close the connection: %v", err)
	}
}

func dialClient(t testing.TB, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func send(t *testing.T, c *Client, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	reply, err := c.Send(ctx, []byte(msg))
	require.NoError(t, err)
	return string(reply)
}

// frameErrors collects the calls to OnFrameError.
type frameErrors struct {
	ch chan frameErrorCall
}

type frameErrorCall struct {
	conn    ConnInfo
	err     error
	partial []byte
}

func newFrameErrors() *frameErrors { return &frameErrors{ch: make(chan frameErrorCall, 16)} }

func (f *frameErrors) hook(conn ConnInfo, err error, partial []byte) {
	f.ch <- frameErrorCall{conn, err, partial}
}

func (f *frameErrors) next(t *testing.T) frameErrorCall {
	t.Helper()
	select {
	case c := <-f.ch:
		return c
	case <-time.After(testTimeout):
		t.Fatal("OnFrameError not called")
		return frameErrorCall{}
	}
}

func TestServerMessagesInOrder(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialClient(t, addr)
	for i := range 100 {
		msg := fmt.Sprintf("MSH|^~\\&|%d\rPID|%d\r", i, i)
		require.Equal(t, "ACK|"+msg, send(t, c, msg))
	}
}

func TestServerPipelinedFrames(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialRaw(t, addr)
	c.write("\vone\x1c\r\vtwo\x1c\r\vthree\x1c\r")
	require.Equal(t, "ACK|one", c.readFrame())
	require.Equal(t, "ACK|two", c.readFrame())
	require.Equal(t, "ACK|three", c.readFrame())
}

func TestServerFrameSplitAcrossWrites(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialRaw(t, addr)
	for _, part := range []string{"\vMS", "H|1", "\x1c", "\r"} {
		c.write(part)
		time.Sleep(5 * time.Millisecond) // let each part arrive alone
	}
	require.Equal(t, "ACK|MSH|1", c.readFrame())
}

func TestServerConcurrentConnections(t *testing.T) {
	const conns, msgs = 8, 50
	var (
		mu       sync.Mutex
		inFlight = map[uint64]int{}
		overlap  atomic.Bool
	)
	h := HandlerFunc(func(_ context.Context, ci ConnInfo, msg []byte) []byte {
		mu.Lock()
		inFlight[ci.ID]++
		if inFlight[ci.ID] > 1 {
			overlap.Store(true)
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		inFlight[ci.ID]--
		mu.Unlock()
		return append([]byte("ACK|"), msg...)
	})
	addr := serve(t, &Server{Handler: h})

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := Dial(ctx, addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range msgs {
				msg := fmt.Sprintf("conn %d msg %d", i, j)
				reply, err := c.Send(ctx, []byte(msg))
				if err != nil {
					errs <- err
					return
				}
				if string(reply) != "ACK|"+msg {
					errs <- fmt.Errorf("reply %q to %q", reply, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.False(t, overlap.Load(), "handler ran concurrently on one connection")
}

func TestServerNilAndEmptyReplies(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		switch string(msg) {
		case "silent":
			return nil
		case "empty":
			return []byte{}
		}
		return append([]byte("ACK|"), msg...)
	})
	addr := serve(t, &Server{Handler: h})
	c := dialRaw(t, addr)
	c.send("silent")
	c.send("empty")
	c.send("hello")
	require.Equal(t, "", c.readFrame(), "empty reply is an empty frame")
	require.Equal(t, "ACK|hello", c.readFrame(), "nil reply sends nothing")
}

func TestServerConnInfo(t *testing.T) {
	infos := make(chan ConnInfo, 4)
	h := HandlerFunc(func(_ context.Context, ci ConnInfo, _ []byte) []byte {
		infos <- ci
		return []byte("ok")
	})
	addr := serve(t, &Server{Handler: h})
	c1, c2 := dialRaw(t, addr), dialRaw(t, addr)
	c1.send("a")
	require.Equal(t, "ok", c1.readFrame())
	c2.send("b")
	require.Equal(t, "ok", c2.readFrame())
	c1.send("c")
	require.Equal(t, "ok", c1.readFrame())

	i1, i2, i3 := <-infos, <-infos, <-infos
	require.NotZero(t, i1.ID)
	require.NotEqual(t, i1.ID, i2.ID)
	require.Equal(t, i1.ID, i3.ID)
	require.Equal(t, c1.LocalAddr().String(), i1.RemoteAddr.String())
	require.Equal(t, addr, i1.LocalAddr.String())
	require.False(t, i1.Accepted.IsZero())
}

func TestServerMaxConnections(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler(), MaxConnections: 2})
	c1, c2 := dialRaw(t, addr), dialRaw(t, addr)
	// A round trip proves each connection is registered by the server.
	c1.send("1")
	require.Equal(t, "ACK|1", c1.readFrame())
	c2.send("2")
	require.Equal(t, "ACK|2", c2.readFrame())

	c3 := dialRaw(t, addr)
	c3.expectClosed()

	// Once a slot frees up, new connections are served again.
	require.NoError(t, c1.Close())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		if WriteFrame(c, []byte("4")) != nil {
			return false
		}
		f, err := NewReader(c, 0).ReadFrame()
		return err == nil && string(f) == "ACK|4"
	}, testTimeout, 10*time.Millisecond)
}

// The read timeouts below are short for speed but long enough that a
// loaded machine does not trip them between a test's dial and first write.

func TestServerReadTimeout(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler(), ReadTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send("1")
	require.Equal(t, "ACK|1", c.readFrame())
	c.expectClosed()
}

func TestServerReadTimeoutExcludesHandler(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		time.Sleep(900 * time.Millisecond)
		return append([]byte("ACK|"), msg...)
	})
	addr := serve(t, &Server{Handler: h, ReadTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send("1")
	require.Equal(t, "ACK|1", c.readFrame())
	c.send("2")
	require.Equal(t, "ACK|2", c.readFrame())
}

func TestServerReadTimeoutInsideFrame(t *testing.T) {
	fe := newFrameErrors()
	addr := serve(t, &Server{Handler: ackHandler(), ReadTimeout: 300 * time.Millisecond, OnFrameError: fe.hook})
	c := dialRaw(t, addr)
	c.write("\vMSH|stalled")
	call := fe.next(t)
	require.ErrorIs(t, call.err, ErrIncompleteFrame)
	require.Equal(t, "MSH|stalled", string(call.partial))
	c.expectClosed()
}

func TestServerFrameErrors(t *testing.T) {
	t.Run("junk is reported and the frame served", func(t *testing.T) {
		fe := newFrameErrors()
		addr := serve(t, &Server{Handler: ackHandler(), OnFrameError: fe.hook})
		c := dialRaw(t, addr)
		c.write("GET / HTTP/1.0\r\n\r\n\vMSH|1\x1c\r")
		require.Equal(t, "ACK|MSH|1", c.readFrame())
		call := fe.next(t)
		require.ErrorIs(t, call.err, ErrJunk)
		require.Equal(t, "GET / HTTP/1.0\r\n\r\n", string(call.partial))
		var ferr *FrameError
		require.ErrorAs(t, call.err, &ferr)
		require.Equal(t, int64(18), ferr.Size)
		require.NotZero(t, call.conn.ID)
	})
	t.Run("blank junk is not reported", func(t *testing.T) {
		fe := newFrameErrors()
		addr := serve(t, &Server{Handler: ackHandler(), OnFrameError: fe.hook})
		c := dialRaw(t, addr)
		c.write("\vMSH|1\x1c\r\n")
		require.Equal(t, "ACK|MSH|1", c.readFrame())
		c.write(" \t\r\n\vMSH|2\x1c\r")
		require.Equal(t, "ACK|MSH|2", c.readFrame())
		c.write("\n.\vMSH|3\x1c\r")
		require.Equal(t, "ACK|MSH|3", c.readFrame())
		call := fe.next(t)
		require.ErrorIs(t, call.err, ErrJunk)
		require.Equal(t, "\n.", string(call.partial), "only junk that is not blank is reported")
		require.Empty(t, fe.ch)
	})
	t.Run("oversize frame closes the connection", func(t *testing.T) {
		fe := newFrameErrors()
		addr := serve(t, &Server{Handler: ackHandler(), MaxMessageSize: 16, OnFrameError: fe.hook})
		c := dialRaw(t, addr)
		c.send(string(bytes.Repeat([]byte("x"), 100)))
		call := fe.next(t)
		require.ErrorIs(t, call.err, ErrFrameTooLarge)
		require.Equal(t, bytes.Repeat([]byte("x"), 16), call.partial)
		c.expectClosed()
	})
	t.Run("too much junk closes the connection", func(t *testing.T) {
		fe := newFrameErrors()
		addr := serve(t, &Server{Handler: ackHandler(), MaxMessageSize: 16, OnFrameError: fe.hook})
		c := dialRaw(t, addr)
		c.write(string(bytes.Repeat([]byte("j"), 100)))
		call := fe.next(t)
		require.ErrorIs(t, call.err, ErrTooMuchJunk)
		require.Len(t, call.partial, 16)
		c.expectClosed()
		require.Empty(t, fe.ch, "junk must be reported once")
	})
	t.Run("incomplete frame is reported with its bytes", func(t *testing.T) {
		fe := newFrameErrors()
		addr := serve(t, &Server{Handler: ackHandler(), OnFrameError: fe.hook})
		c := dialRaw(t, addr)
		c.write("\vMSH|cut")
		require.NoError(t, c.Conn.(*net.TCPConn).CloseWrite())
		call := fe.next(t)
		require.ErrorIs(t, call.err, ErrIncompleteFrame)
		require.ErrorIs(t, call.err, io.ErrUnexpectedEOF)
		require.Equal(t, "MSH|cut", string(call.partial))
		c.expectClosed()
	})
	t.Run("missing CR at end of stream is accepted", func(t *testing.T) {
		addr := serve(t, &Server{Handler: ackHandler()})
		c := dialRaw(t, addr)
		c.write("\vMSH|1\x1c")
		require.NoError(t, c.Conn.(*net.TCPConn).CloseWrite())
		require.Equal(t, "ACK|MSH|1", c.readFrame())
	})
}

func TestServerHandlerPanic(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		if string(msg) == "boom" {
			panic("boom")
		}
		return append([]byte("ACK|"), msg...)
	})
	addr := serve(t, &Server{Handler: h})
	c1 := dialRaw(t, addr)
	c1.send("boom")
	c1.expectClosed()

	c2 := dialRaw(t, addr)
	c2.send("fine")
	require.Equal(t, "ACK|fine", c2.readFrame())
}

func TestServerFrameErrorHookPanic(t *testing.T) {
	addr := serve(t, &Server{
		Handler:      ackHandler(),
		OnFrameError: func(ConnInfo, error, []byte) { panic("hook") },
	})
	c1 := dialRaw(t, addr)
	c1.write("junk\vA\x1c\r")
	c1.expectClosed()

	c2 := dialRaw(t, addr)
	c2.send("fine")
	require.Equal(t, "ACK|fine", c2.readFrame())
}

func TestServerInvalidReply(t *testing.T) {
	h := HandlerFunc(func(context.Context, ConnInfo, []byte) []byte { return []byte("bad\vreply") })
	addr := serve(t, &Server{Handler: h})
	c := dialRaw(t, addr)
	c.send("1")
	c.expectClosed()
}

func TestServerNilHandler(t *testing.T) {
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = s.Serve(l)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrServerClosed)
	_, err = l.Accept()
	require.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener")
}

// waitActive waits until the server counts one connection as active.
func waitActive(t *testing.T, s *Server) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			c.mu.Lock()
			active := c.active
			c.mu.Unlock()
			if active {
				return true
			}
		}
		return false
	}, testTimeout, time.Millisecond)
}

// startServer serves s and returns its address and Serve's result.
func startServer(t *testing.T, s *Server) (string, <-chan error) {
	t.Helper()
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return l.Addr().String(), errc
}

func shutdownAsync(s *Server, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	return done
}

func TestServerShutdownWaitsForInFlightHandler(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var ctxErr atomic.Value
	h := HandlerFunc(func(ctx context.Context, _ ConnInfo, msg []byte) []byte {
		close(started)
		<-release
		ctxErr.Store(fmt.Sprint(ctx.Err()))
		return append([]byte("ACK|"), msg...)
	})
	s := &Server{Handler: h}
	addr, served := startServer(t, s)
	busy := dialRaw(t, addr)
	idle := dialRaw(t, addr)
	busy.send("in flight")
	<-started

	done := shutdownAsync(s, testTimeout)
	// The idle connection is closed right away...
	idle.expectClosed()
	require.ErrorIs(t, <-served, ErrServerClosed)
	// ...but Shutdown waits for the busy one.
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a handler was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	_, err := net.DialTimeout("tcp", addr, testTimeout)
	require.Error(t, err, "listener still accepting")

	close(release)
	require.Equal(t, "ACK|in flight", busy.readFrame(), "in-flight message must be acknowledged")
	require.NoError(t, <-done)
	require.Equal(t, "<nil>", ctxErr.Load(), "handler context cancelled during graceful shutdown")
	busy.expectClosed()
}

func TestServerShutdownWaitsForFrameInProgress(t *testing.T) {
	s := &Server{Handler: ackHandler()}
	addr, _ := startServer(t, s)
	c := dialRaw(t, addr)
	c.write("\vMSH|first half")
	waitActive(t, s)

	done := shutdownAsync(s, testTimeout)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a frame was arriving", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.write(" second half\x1c\r")
	require.Equal(t, "ACK|MSH|first half second half", c.readFrame())
	require.NoError(t, <-done)
	c.expectClosed()
}

func TestServerShutdownTimeout(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ ConnInfo, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return []byte("too late")
	})
	s := &Server{Handler: h}
	addr, _ := startServer(t, s)
	c := dialRaw(t, addr)
	c.send("stuck")
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
	select {
	case <-cancelled:
	case <-time.After(testTimeout):
		t.Fatal("handler context not cancelled when Shutdown timed out")
	}
	c.expectClosed()
}

func TestServerCloseCancelsHandlers(t *testing.T) {
	started := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ ConnInfo, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		return nil
	})
	s := &Server{Handler: h}
	addr, served := startServer(t, s)
	c := dialRaw(t, addr)
	c.send("1")
	<-started
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-served, ErrServerClosed)
	c.expectClosed()
	// Shutdown after Close waits for the (now ending) connection.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
}

func TestServerLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("shutdown before serve", func(t *testing.T) {
		s := &Server{Handler: ackHandler()}
		require.NoError(t, s.Shutdown(ctx))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.ErrorIs(t, s.Serve(l), ErrServerClosed)
		_, err = l.Accept()
		require.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener")
		require.ErrorIs(t, s.ListenAndServe(), ErrServerClosed)
	})
	t.Run("close before serve", func(t *testing.T) {
		s := &Server{Handler: ackHandler()}
		require.NoError(t, s.Close())
		require.ErrorIs(t, s.ListenAndServe(), ErrServerClosed)
	})
	t.Run("double shutdown and close", func(t *testing.T) {
		s := &Server{Handler: ackHandler()}
		addr, served := startServer(t, s)
		c := dialClient(t, addr)
		require.Equal(t, "ACK|x", send(t, c, "x"))
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-served, ErrServerClosed)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.ErrorIs(t, s.Serve(l), ErrServerClosed)
	})
	t.Run("concurrent shutdowns", func(t *testing.T) {
		s := &Server{Handler: ackHandler()}
		addr, _ := startServer(t, s)
		c := dialClient(t, addr)
		require.Equal(t, "ACK|x", send(t, c, "x"))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { assert.NoError(t, s.Shutdown(ctx)) })
			wg.Go(func() { assert.NoError(t, s.Close()) })
		}
		wg.Wait()
	})
	t.Run("listen and serve", func(t *testing.T) {
		s := &Server{Addr: "127.0.0.1:0", Handler: ackHandler(), Logger: slog.New(slog.DiscardHandler)}
		served := make(chan error, 1)
		go func() { served <- s.ListenAndServe() }()
		require.Eventually(t, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.listeners) == 1
		}, testTimeout, time.Millisecond)
		require.NoError(t, s.Shutdown(ctx))
		require.ErrorIs(t, <-served, ErrServerClosed)
	})
	t.Run("listen error", func(t *testing.T) {
		s := &Server{Addr: "127.0.0.1:-1", Handler: ackHandler()}
		err := s.ListenAndServe()
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrServerClosed)
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes by the logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerNeverLogsPayloads(t *testing.T) {
	const secret = "DOE^JANE^SECRET"
	var logs syncBuffer
	s := &Server{
		Handler:        ackHandler(),
		MaxMessageSize: 64,
		Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	addr := serve(t, s)
	c := dialRaw(t, addr)
	c.write(secret + "\v" + secret + "\x1c\r") // junk and a message
	require.Equal(t, "ACK|"+secret, c.readFrame())
	c.send(secret + string(bytes.Repeat([]byte("x"), 100))) // oversize
	c.expectClosed()
	c2 := dialRaw(t, addr)
	c2.write("\v" + secret) // incomplete
	require.NoError(t, c2.Conn.(*net.TCPConn).CloseWrite())
	c2.expectClosed()

	require.Eventually(t, func() bool {
		return bytes.Count([]byte(logs.String()), []byte("mllp connection closed")) == 2
	}, testTimeout, time.Millisecond)
	out := logs.String()
	require.NotContains(t, out, "SECRET")
	require.Contains(t, out, "conn_id=")
	require.Contains(t, out, "mllp frame error")
	require.Contains(t, out, "mllp message handled")
}

// flakyListener fails its first Accept calls with errs.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// temporaryError is what the net package returns for EMFILE and the like.
type temporaryError struct{}

func (temporaryError) Error() string   { return "too many open files" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

func TestServerAcceptErrors(t *testing.T) {
	t.Run("temporary errors are retried", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		fl := &flakyListener{Listener: l, errs: []error{
			&net.OpError{Op: "accept", Net: "tcp", Err: temporaryError{}},
			&net.OpError{Op: "accept", Net: "tcp", Err: temporaryError{}},
		}}
		s := &Server{Handler: ackHandler(), Logger: slog.New(slog.DiscardHandler)}
		served := make(chan error, 1)
		go func() { served <- s.Serve(fl) }()
		c := dialClient(t, l.Addr().String())
		require.Equal(t, "ACK|1", send(t, c, "1"))
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-served, ErrServerClosed)
	})
	t.Run("other errors stop Serve", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		boom := errors.New("boom")
		s := &Server{Handler: ackHandler(), Logger: slog.New(slog.DiscardHandler)}
		err = s.Serve(&flakyListener{Listener: l, errs: []error{boom}})
		require.ErrorIs(t, err, boom)
		_, err = l.Accept()
		require.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener")
	})
}

func TestConnInfoLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ci := ConnInfo{
		ID:         7,
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000},
		LocalAddr:  &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 2575},
	}
	log.Info("x", "conn", ci)
	require.Contains(t, buf.String(), "conn.id=7 conn.remote_addr=10.0.0.1:4000 conn.local_addr=10.0.0.2:2575")
	buf.Reset()
	log.Info("x", "conn", ConnInfo{ID: 1})
	require.Contains(t, buf.String(), `conn.remote_addr="" conn.local_addr=""`)
}

func TestServerWriteTimeout(t *testing.T) {
	// A reply larger than the socket buffers, to a peer that does not
	// read it, must not block the connection forever.
	big := bytes.Repeat([]byte("x"), 32<<20)
	var logs syncBuffer
	s := &Server{
		Handler:      HandlerFunc(func(context.Context, ConnInfo, []byte) []byte { return big }),
		WriteTimeout: 200 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	addr := serve(t, s)
	c := dialRaw(t, addr)
	c.send("1")
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(logs.String()), []byte("reason=\"write error\""))
	}, testTimeout, 10*time.Millisecond)
	require.Contains(t, logs.String(), "mllp reply write failed")
}
