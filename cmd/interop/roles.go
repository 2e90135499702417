package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nhp/interop/internal/blobstore"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/store"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/workflows"
)

func envSet(key string) bool {
	v, ok := os.LookupEnv(key)
	return ok && v != ""
}

type gatewayCmd struct {
	HTTPAddr string `name:"http-addr" help:"HTTP address (env INTEROP_HTTP_ADDR)."`
}

// temporalAddress is the external cluster of the gateway and worker roles.
func temporalAddress(c config.Config) string {
	if c.Temporal.Address != "" {
		return c.Temporal.Address
	}
	return c.Temporal.EmbeddedFrontendAddr
}

func (g gatewayCmd) Run(ctx context.Context, cfg *config.Config) error {
	c := *cfg
	if g.HTTPAddr != "" {
		c.HTTPAddr = g.HTTPAddr
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	certs, mllpCerts, err := loadTLS(c, newLogger(c))
	if err != nil {
		return err
	}
	s, closeAll, err := connect(ctx, c)
	if err != nil {
		return err
	}
	defer closeAll()
	s.certs, s.mllpCerts = certs, mllpCerts
	// The gateway serves the built-in store in process: index rows stored before the search
	// index existed (a no-op once done; replicas share the work).
	reindexStore(ctx, s.store, s.logger)
	return s.runGateway(ctx, readiness(s.pool), nil)
}

type workerCmd struct{}

func (workerCmd) Run(ctx context.Context, cfg *config.Config) error {
	s, closeAll, err := connect(ctx, *cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	ns := s.cfg.Temporal.Namespace
	if err := temporaldev.EnsureSearchAttributes(ctx, s.temporal, ns, workflows.SearchAttributes()); err != nil {
		return fmt.Errorf("register search attributes on namespace %s: %w", ns, err)
	}
	w := s.newWorker()
	s.logger.Info("worker running", "task_queue", s.cfg.Temporal.TaskQueue, "temporal", temporalAddress(s.cfg), "metrics", s.cfg.MetricsAddr)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	go s.runRetention(ctx)
	return serveMetrics(ctx, s.cfg.MetricsAddr, s.registry)
}

// serveMetrics serves /metrics and /healthz for a role without the HTTP gateway, until ctx ends.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		// ctx is done by now: the shutdown gets its own deadline, keeping ctx's values.
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// connect validates c and opens what the production roles share: the database pool, the
// metrics registry and a client of the external Temporal cluster. closeAll releases them.
func connect(ctx context.Context, c config.Config) (s *services, closeAll func(), err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	logger := newLogger(c)
	mt, err := loadMappingTenants(c, logger)
	if err != nil {
		return nil, nil, err
	}
	budget, err := c.DBBudget(false)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	pool, err := openPool(ctx, c, budget, logger)
	if err != nil {
		return nil, nil, err
	}
	reg := newRegistry()
	sdkMetrics, closeMetrics := temporalMetrics(reg)
	tc, err := dialTemporalLazily(ctx, client.Options{HostPort: temporalAddress(c), Namespace: c.Temporal.Namespace}, logger, sdkMetrics)
	if err != nil {
		closeMetrics()
		pool.Close()
		return nil, nil, err
	}
	exports, err := blobstore.Open(ctx, c.ExportBucketURL, c.DataDir)
	if err != nil {
		tc.Close()
		closeMetrics()
		pool.Close()
		return nil, nil, fmt.Errorf("INTEROP_EXPORT_BUCKET: %w", err)
	}
	s = &services{cfg: c, logger: logger, pool: pool, registry: reg, temporal: tc, store: &store.Store{Pool: pool}, mapping: mt, exports: exports}
	return s, func() { _ = exports.Close(); tc.Close(); closeMetrics(); pool.Close() }, nil
}
