package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// stallProxy forwards TCP connections to one upstream (the PostgreSQL the service uses) and
// can stall: for a while it forwards no byte in either direction, on open connections and on
// connections opened meanwhile, which stay open. That is a database that stops answering
// (a storage freeze, a network partition) rather than one that refuses connections: the
// service's statements and connects hang until their own timeouts, or until the stall ends.
type stallProxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	resume  chan struct{} // non-nil while stalled; closed when the stall ends
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	opened  atomic.Int64
	forward atomic.Int64 // bytes forwarded, both directions
}

// newStallProxy listens on a free loopback port and forwards to upstream.
func newStallProxy(upstream string) (*stallProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &stallProxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect instead of the upstream.
func (p *stallProxy) Addr() string { return p.ln.Addr().String() }

// Stall stops forwarding for d; it returns at once.
func (p *stallProxy) Stall(d time.Duration) {
	p.mu.Lock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
	p.mu.Unlock()
	time.AfterFunc(d, p.Resume)
}

// Resume ends a stall (a no-op when there is none).
func (p *stallProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// gate blocks while the proxy is stalled.
func (p *stallProxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// Close stops accepting, ends a stall and closes every connection.
func (p *stallProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close() // tearing down: the peers see the connection end
	}
	p.mu.Unlock()
	p.Resume()
	_ = p.ln.Close() // ends accept
	p.wg.Wait()
}

func (p *stallProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *stallProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close() // either side ended: the other is closed with it
}

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.opened.Add(1)
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *stallProxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		_ = client.Close() // the client sees the upstream unreachable
		return
	}
	if !p.track(client) || !p.track(server) {
		p.untrack(client)
		p.untrack(server)
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
				p.forward.Add(int64(n))
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	p.untrack(client)
	p.untrack(server)
	<-done
}
