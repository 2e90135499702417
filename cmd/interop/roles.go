package main

import (
	"context"
	"fmt"
	"os"

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
	logger := newLogger(c)
	pool, err := openPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	reg := newRegistry()
	sdkMetrics, closeMetrics := temporalMetrics(reg)
	defer closeMetrics()
	tc, err := dialTemporal(ctx, temporalAddress(c), c.Temporal.Namespace, logger, sdkMetrics)
	if err != nil {
		return err
	}
	defer tc.Close()
	s := &services{cfg: c, logger: logger, pool: pool, registry: reg, temporal: tc, store: &store.Store{Pool: pool}}
	return s.runGateway(ctx, readiness(pool, tc), nil)
}

type workerCmd struct{}

func (workerCmd) Run(ctx context.Context, cfg *config.Config) error {
	c := *cfg
	if err := c.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := newLogger(c)
	pool, err := openPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	reg := newRegistry()
	sdkMetrics, closeMetrics := temporalMetrics(reg)
	defer closeMetrics()
	tc, err := dialTemporal(ctx, temporalAddress(c), c.Temporal.Namespace, logger, sdkMetrics)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := temporaldev.EnsureSearchAttributes(ctx, tc, c.Temporal.Namespace, workflows.SearchAttributes()); err != nil {
		return fmt.Errorf("register search attributes on namespace %s: %w", c.Temporal.Namespace, err)
	}
	s := &services{cfg: c, logger: logger, pool: pool, registry: reg, temporal: tc, store: &store.Store{Pool: pool}}
	w := s.newWorker()
	logger.Info("worker running", "task_queue", c.Temporal.TaskQueue, "temporal", temporalAddress(c))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
