package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// ConnectorFromRow returns what a listener knows of a connector row: the Connector its
// Ingestor serves and the connector's settings. Settings that are not a JSON object are an
// error.
func ConnectorFromRow(c db.InteropConnector) (Connector, connector.Settings, error) {
	settings, err := connector.Decode(c.Settings)
	if err != nil {
		return Connector{}, settings, fmt.Errorf("connector %s: %w", c.ID, err)
	}
	return Connector{
		ID: c.ID, TenantID: c.TenantID, Name: c.Name,
		Charset: settings.Charset, DuplicatePolicy: settings.DuplicatePolicy,
	}, settings, nil
}

// Listeners keeps one MLLP listener open for each active inbound mllp connector in the
// database, converging by polling, so connectors activated or deactivated through the admin
// API (by any gateway replica) open or close here without a restart.
type Listeners struct {
	Pool     *db.Pool
	Ingestor *Ingestor
	Logger   *slog.Logger
	// Interval between reconciliations; 0 means 5 s.
	Interval time.Duration
	// DefaultHost is the bind host for connectors without listen_host.
	DefaultHost string
	// Metrics, when set, carries interop_mllp_listener_up and the listen failures.
	Metrics *Metrics
	// TLSCertificate serves the certificate of connectors whose settings ask for TLS (the
	// process's MLLP certificate, re-read when renewed); nil when none is configured, and such
	// a connector then fails to open with a reason in its health.
	TLSCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	mu      sync.Mutex
	running map[uuid.UUID]*listener
	// failed holds the last failure to open each active connector's listener, until it opens
	// or the connector stops being active.
	failed map[uuid.UUID]listenFailure
}

// ListenerState is what this process knows of an active connector's listener: open, or
// failing to open with the last error (a port another process holds, a host not on this
// machine). Each gateway replica reports its own listener.
type ListenerState struct {
	Listening bool
	// Addr is the bound address while listening, else the address it tried.
	Addr string
	// LastError is the last failure to open, "" while listening.
	LastError   string
	LastErrorAt time.Time
}

type listenFailure struct {
	name, addr string
	err        string
	at         time.Time
}

// State reports the listener of an active connector; false when this process holds no
// listener for it and has not tried to open one (the connector is not an active inbound
// mllp connector, or these Listeners have not reconciled since it became one).
func (l *Listeners) State(connectorID uuid.UUID) (ListenerState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.running[connectorID]; ok {
		return ListenerState{Listening: true, Addr: ln.addr}, true
	}
	if f, ok := l.failed[connectorID]; ok {
		return ListenerState{Addr: f.addr, LastError: f.err, LastErrorAt: f.at}, true
	}
	return ListenerState{}, false
}

type listener struct {
	version time.Time // the connector's updated_at when opened; a change reopens it
	name    string
	addr    string
	server  *mllp.Server
	done    chan struct{}
}

// Run reconciles until ctx ends, then shuts every listener down gracefully.
func (l *Listeners) Run(ctx context.Context) error {
	interval := l.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if err := l.Reconcile(ctx); err != nil {
		l.Logger.Error("open mllp listeners", "error", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Close()
			return nil
		case <-t.C:
			if err := l.Reconcile(ctx); err != nil && ctx.Err() == nil {
				l.Logger.Warn("reconcile mllp listeners", "error", err)
			}
		}
	}
}

// Reconcile opens listeners for newly active connectors and closes those no longer active.
func (l *Listeners) Reconcile(ctx context.Context) error {
	rows, err := db.New(l.Pool).ConnectorListActiveListeners(ctx)
	if err != nil {
		return fmt.Errorf("list active connectors: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running == nil {
		l.running = map[uuid.UUID]*listener{}
		l.failed = map[uuid.UUID]listenFailure{}
	}
	want := map[uuid.UUID]db.InteropConnector{}
	for _, c := range rows {
		want[c.ID] = c
	}
	for id, ln := range l.running {
		if c, ok := want[id]; !ok || !c.UpdatedAt.Equal(ln.version) {
			l.stop(id, ln)
			if !ok {
				l.forget(id, ln.name)
			}
		}
	}
	for id, f := range l.failed {
		if _, ok := want[id]; !ok {
			l.forget(id, f.name)
		}
	}
	var errs []error
	for id, c := range want {
		if _, ok := l.running[id]; ok {
			continue
		}
		addr, err := l.open(c)
		if err != nil {
			errs = append(errs, err)
			l.failed[id] = listenFailure{name: c.Name, addr: addr, err: err.Error(), at: time.Now()}
			l.setUp(c.Name, id, false)
			if l.Metrics != nil {
				l.Metrics.MLLPListenFailures.WithLabelValues(c.Name, id.String()).Inc()
			}
			continue
		}
		delete(l.failed, id)
		l.setUp(c.Name, id, true)
	}
	return errors.Join(errs...)
}

func (l *Listeners) setUp(name string, id uuid.UUID, up bool) {
	if l.Metrics == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	l.Metrics.MLLPListenerUp.WithLabelValues(name, id.String()).Set(v)
}

// forget drops what is known of a connector that is no longer an active listener.
func (l *Listeners) forget(id uuid.UUID, name string) {
	delete(l.failed, id)
	if l.Metrics != nil {
		l.Metrics.MLLPListenerUp.DeleteLabelValues(name, id.String())
	}
}

// Addr returns the bound address of a connector's listener, "" if it is not open.
func (l *Listeners) Addr(connectorID uuid.UUID) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln, ok := l.running[connectorID]; ok {
		return ln.addr
	}
	return ""
}

// open starts c's listener; on failure it returns the address it tried ("" before it got
// that far) with the error.
func (l *Listeners) open(c db.InteropConnector) (string, error) {
	if c.ListenPort == nil {
		return "", fmt.Errorf("connector %s has no listen port", c.ID)
	}
	conn, settings, err := ConnectorFromRow(c)
	if err != nil {
		return "", err
	}
	if conn.Charset != "" {
		if _, err := hl7v2.CanonicalCharset(conn.Charset); err != nil {
			// Stored without the admin API's check: messages are still read, each one reporting
			// the unusable setting as a parse problem.
			l.Logger.Warn("connector charset unusable; ignored", "connector_id", c.ID, "charset", conn.Charset, "error", err)
		}
	}
	host := l.DefaultHost
	if c.ListenHost != nil && *c.ListenHost != "" {
		host = *c.ListenHost
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(*c.ListenPort)))
	tlsConfig, err := l.tlsConfig(settings.TLS)
	if err != nil {
		return addr, fmt.Errorf("connector %s (%s): %w", c.Name, c.ID, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return addr, fmt.Errorf("connector %s (%s): listen on %s: %w", c.Name, c.ID, addr, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := &mllp.Server{
		Handler:        l.Ingestor.Handler(conn),
		MaxMessageSize: settings.MaxMessageSize,
		ReadTimeout:    settings.ReadTimeout(),
		WriteTimeout:   30 * time.Second,
		MaxConnections: settings.Connections(),
		OnFrameError:   l.Ingestor.FrameErrorHandler(conn),
		Logger:         l.Logger.With("connector_id", c.ID, "connector", c.Name),
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = 10 * time.Minute
	}
	run := &listener{version: c.UpdatedAt, name: c.Name, addr: ln.Addr().String(), server: srv, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			l.Logger.Error("mllp listener stopped", "connector_id", c.ID, "error", err)
		}
	}()
	l.running[c.ID] = run
	l.Logger.Info("mllp listener open", "connector_id", c.ID, "connector", c.Name, "tenant_id", c.TenantID, "addr", run.addr)
	return run.addr, nil
}

// tlsConfig is the listener's TLS configuration for policy p, nil for plain TCP. TLS 1.2 is
// the floor (what HL7's and IHE's transport guidance asks of MLLP over TLS); with a clientCA a
// sender must present a certificate chaining to it.
func (l *Listeners) tlsConfig(p *connector.TLS) (*tls.Config, error) {
	if p == nil {
		return nil, nil
	}
	if l.TLSCertificate == nil {
		return nil, errors.New("settings ask for TLS but this process has no MLLP certificate " +
			"(set INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY, or INTEROP_TLS_CERT and INTEROP_TLS_KEY)")
	}
	pool, err := p.ClientPool()
	if err != nil {
		return nil, fmt.Errorf("settings.tls.%w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: l.TLSCertificate}
	if pool != nil {
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func (l *Listeners) stop(id uuid.UUID, ln *listener) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ln.server.Shutdown(ctx); err != nil {
		_ = ln.server.Close()
	}
	<-ln.done
	delete(l.running, id)
	l.Logger.Info("mllp listener closed", "connector_id", id, "addr", ln.addr)
}

// Close shuts every listener down, as Run does when its context ends.
func (l *Listeners) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, ln := range l.running {
		l.stop(id, ln)
		l.forget(id, ln.name)
	}
}
