package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers each line with itself.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// A stall holds every byte, on an open connection and on one opened during it, and both
// carry on once it ends.
func TestStallProxy(t *testing.T) {
	p, err := newStallProxy(echoServer(t))
	require.NoError(t, err)
	defer p.Close()

	exchange := func(c net.Conn, r *bufio.Reader, line string, within time.Duration) (string, error) {
		require.NoError(t, c.SetDeadline(time.Now().Add(within)))
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			return "", err
		}
		return r.ReadString('\n')
	}
	open, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer open.Close()
	ro := bufio.NewReader(open)
	got, err := exchange(open, ro, "before", time.Second)
	require.NoError(t, err)
	require.Equal(t, "before\n", got)

	p.Stall(time.Hour)
	_, err = exchange(open, ro, "during", 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing comes back while stalled")
	fresh, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "connections are still accepted while stalled")
	defer fresh.Close()
	rf := bufio.NewReader(fresh)
	_, err = exchange(fresh, rf, "new", 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "and carry nothing")

	p.Resume()
	// The line written during the stall arrives first, then the next.
	require.NoError(t, open.SetDeadline(time.Now().Add(2*time.Second)))
	got, err = ro.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "during\n", got)
	require.NoError(t, fresh.SetDeadline(time.Now().Add(2*time.Second)))
	got, err = rf.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "new\n", got)
	got, err = exchange(open, ro, "after", time.Second)
	require.NoError(t, err)
	require.Equal(t, "after\n", got)
}
