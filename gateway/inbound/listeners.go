package inbound

import (
	"context"
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

	mu      sync.Mutex
	running map[uuid.UUID]*listener
}

type listener struct {
	version time.Time // the connector's updated_at when opened; a change reopens it
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
	}
	want := map[uuid.UUID]db.InteropConnector{}
	for _, c := range rows {
		want[c.ID] = c
	}
	for id, ln := range l.running {
		if c, ok := want[id]; !ok || !c.UpdatedAt.Equal(ln.version) {
			l.stop(id, ln)
		}
	}
	var errs []error
	for id, c := range want {
		if _, ok := l.running[id]; ok {
			continue
		}
		if err := l.open(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

func (l *Listeners) open(c db.InteropConnector) error {
	if c.ListenPort == nil {
		return fmt.Errorf("connector %s has no listen port", c.ID)
	}
	conn, settings, err := ConnectorFromRow(c)
	if err != nil {
		return err
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("connector %s (%s): listen on %s: %w", c.Name, c.ID, addr, err)
	}
	srv := &mllp.Server{
		Handler:        l.Ingestor.Handler(conn),
		MaxMessageSize: settings.MaxMessageSize,
		ReadTimeout:    settings.ReadTimeout(),
		WriteTimeout:   30 * time.Second,
		MaxConnections: settings.MaxConnections,
		OnFrameError:   l.Ingestor.FrameErrorHandler(conn),
		Logger:         l.Logger.With("connector_id", c.ID, "connector", c.Name),
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = 10 * time.Minute
	}
	run := &listener{version: c.UpdatedAt, addr: ln.Addr().String(), server: srv, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			l.Logger.Error("mllp listener stopped", "connector_id", c.ID, "error", err)
		}
	}()
	l.running[c.ID] = run
	l.Logger.Info("mllp listener open", "connector_id", c.ID, "connector", c.Name, "tenant_id", c.TenantID, "addr", run.addr)
	return nil
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
	}
}
