package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nhp/interop/bench/internal/benchdb"
	"github.com/nhp/interop/bench/internal/devproc"
)

// service is the `interop dev` under test: one binary, restarted on the same databases, ports
// and data directory after each kill, its PostgreSQL reached through the stall proxy.
type service struct {
	bin     string
	env     []string
	base    string // http://<gateway>
	mllp    string
	logPath string
	// dbNames are the service's, the embedded Temporal server's and its visibility's.
	dbNames []string
	// directURL reaches the service database without the proxy, for the soak's own reads.
	directURL string

	mu    sync.Mutex
	proc  *devproc.Proc
	runs  int
	kills []killRecord
}

// killRecord is one kill -9 and how long the service took to be ready again.
type killRecord struct {
	at         time.Duration // since the start of the load
	readyAfter time.Duration // from the kill
	err        error
}

// newService prepares the environment of `interop dev`: fresh database names, free ports, a
// data directory under dir, and DATABASE_URL through the proxy at proxyAddr.
func newService(bin, dir, proxyAddr string, dbMaxConns int) (*service, error) {
	name := benchdb.UniqueName("soak")
	direct, err := benchdb.URL(name)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(direct)
	if err != nil {
		return nil, err
	}
	u.Host = proxyAddr
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable") // the proxy forwards whatever is negotiated; say it plainly
	}
	u.RawQuery = q.Encode()
	addrs, err := devproc.FreeAddrs(5)
	if err != nil {
		return nil, err
	}
	s := &service{
		bin: bin, base: "http://" + addrs[0], mllp: addrs[1], logPath: filepath.Join(dir, "interop.log"),
		dbNames: []string{name, name + "_temporal", name + "_visibility"}, directURL: direct,
	}
	s.env = devproc.Env(map[string]string{
		"DATABASE_URL":                   u.String(),
		"INTEROP_HTTP_ADDR":              addrs[0],
		"INTEROP_MLLP_ADDR":              addrs[1],
		"INTEROP_METRICS_ADDR":           addrs[2],
		"INTEROP_TEMPORAL_FRONTEND_ADDR": addrs[3],
		"INTEROP_TEMPORAL_UI_ADDR":       addrs[4],
		"INTEROP_TEMPORAL_DB":            s.dbNames[1],
		"INTEROP_TEMPORAL_VISIBILITY_DB": s.dbNames[2],
		"INTEROP_DATA_DIR":               filepath.Join(dir, "data"),
		"INTEROP_DB_MAX_CONNS":           strconv.Itoa(dbMaxConns),
		// info: the ingest logs each replayed ACK (a duplicate suppressed) at info.
		"INTEROP_LOG_LEVEL":  "info",
		"INTEROP_LOG_FORMAT": "text",
	})
	return s, nil
}

// upstreamOf is host:port of the cluster URL, where the proxy forwards.
func upstreamOf(clusterURL string) (string, error) {
	u, err := url.Parse(clusterURL)
	if err != nil {
		return "", fmt.Errorf("parse cluster url: %w", err)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", fmt.Errorf("cluster url %q names no TCP host: the stall proxy needs one", clusterURL)
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port), nil
}

// start starts a run of the service and waits until it is ready.
func (s *service) start(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	s.runs++
	label := fmt.Sprintf("run %d", s.runs)
	s.mu.Unlock()
	p, err := devproc.Start(s.bin, s.env, s.logPath, label)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := p.WaitReady(ctx, s.base, 5*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(p.Started), nil
}

// kill sends SIGKILL to the running service, waits restartDelay and starts it again.
func (s *service) kill(ctx context.Context, at, restartDelay time.Duration) killRecord {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	began := time.Now()
	p.Kill()
	select {
	case <-ctx.Done():
	case <-time.After(restartDelay):
	}
	_, err := s.start(ctx)
	rec := killRecord{at: at, readyAfter: time.Since(began), err: err}
	s.mu.Lock()
	s.kills = append(s.kills, rec)
	s.mu.Unlock()
	return rec
}

// stop ends the last run as an operator does (SIGTERM).
func (s *service) stop() error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(60 * time.Second)
}

// alive reports whether the current run has not exited on its own.
func (s *service) alive() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}
