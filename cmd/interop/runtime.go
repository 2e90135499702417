package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	sdklog "go.temporal.io/sdk/log"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/config"
)

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// newRegistry is the process's Prometheus registry: Go runtime and process collectors plus
// whatever the gateway and the Temporal SDK register.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// temporalMetrics reports the SDK's metrics (workflow and activity latencies, poll and
// task counters) into reg.
func temporalMetrics(reg *prometheus.Registry) (client.MetricsHandler, func()) {
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: reg})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		Prefix:          "temporal",
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), func() { _ = closer.Close() }
}

// dialTemporal connects to Temporal with opts (HostPort, Namespace and, for the embedded
// server with sign-in on, its Credentials), logging to logger.
func dialTemporal(ctx context.Context, opts client.Options, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts.Logger = sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk"))
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// dialTemporalLazily is dialTemporal for roles that must start while Temporal is down: the
// gateway acknowledges messages with PostgreSQL alone, and its sweeper starts their workflows
// once Temporal answers. The client connects on first use.
func dialTemporalLazily(ctx context.Context, opts client.Options, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	c, err := dialTemporal(ctx, opts, logger, metrics)
	if err == nil {
		return c, nil
	}
	logger.Warn("temporal is unreachable; starting anyway, workflows start when it answers", "temporal", opts.HostPort, "error", err)
	opts.Logger = sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk"))
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	lazy, lerr := client.NewLazyClient(opts)
	if lerr != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w", opts.HostPort, errors.Join(err, lerr))
	}
	return lazy, nil
}

// signer returns the HS256 key: INTEROP_JWT_SECRET, else the dev secret under the data dir.
func signer(cfg config.Config) (auth.HS256, error) {
	if cfg.JWTSecret != "" {
		if len(cfg.JWTSecret) < 32 {
			return auth.HS256{}, fmt.Errorf("INTEROP_JWT_SECRET must be at least 32 characters")
		}
		return auth.HS256{Secret: []byte(cfg.JWTSecret)}, nil
	}
	secret, err := auth.DevSecret(cfg.DataDir)
	if err != nil {
		return auth.HS256{}, err
	}
	return auth.HS256{Secret: secret}, nil
}
