package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/internal/blobstore"
	"github.com/nhp/interop/internal/connector"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/internal/store"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/workflows"
)

type devCmd struct {
	HTTPAddr string `name:"http-addr" help:"HTTP gateway address (env INTEROP_HTTP_ADDR, default 127.0.0.1:8080)."`
	MLLPAddr string `name:"mllp-addr" help:"Default inbound MLLP connector address (env INTEROP_MLLP_ADDR, default 127.0.0.1:2575)."`
	DataDir  string `name:"data-dir" help:"Data directory (env INTEROP_DATA_DIR, default ./.data)."`
}

// The connector `interop dev` seeds so that a message can be sent right away.
const (
	defaultTenant    = "default"
	defaultFacility  = "default"
	defaultConnector = "default-mllp"
)

func (d devCmd) Run(ctx context.Context, cfg *config.Config) error {
	started := time.Now()
	c := *cfg
	if d.HTTPAddr != "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if d.MLLPAddr != "" {
		c.MLLPAddr = d.MLLPAddr
	}
	if d.DataDir != "" {
		c.DataDir = d.DataDir
	}
	if !envSet("INTEROP_LOG_FORMAT") {
		c.LogFormat = "text"
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := newLogger(c)
	certs, mllpCerts, err := loadTLS(c, logger)
	if err != nil {
		return err
	}

	if err := db.EnsureDatabase(ctx, c.DatabaseURL); err != nil {
		return err
	}
	if err := db.MigrateUp(c.DatabaseURL); err != nil {
		return err
	}
	budget, err := c.DBBudget(c.Temporal.Address == "")
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	pool, err := openPool(ctx, c, budget, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := newRegistry()
	temporalAddr := c.Temporal.Address
	dial := client.Options{HostPort: temporalAddr, Namespace: c.Temporal.Namespace}
	if temporalAddr == "" {
		srv, err := temporaldev.Start(ctx, temporaldev.Options{
			DatabaseURL:            c.DatabaseURL,
			DatabaseName:           c.Temporal.EmbeddedDatabase,
			VisibilityDatabaseName: c.Temporal.EmbeddedVisibilityDatabase,
			FrontendAddr:           c.Temporal.EmbeddedFrontendAddr,
			UIAddr:                 c.Temporal.EmbeddedUIAddr,
			UIReadOnly:             c.Temporal.UIReadOnly,
			OIDC:                   temporalUIOIDC(c, logger),
			Namespace:              c.Temporal.Namespace,
			SearchAttributes:       workflows.SearchAttributes(),
			NumHistoryShards:       c.Temporal.HistoryShards,
			DynamicConfigFile:      c.Temporal.DynamicConfigFile,
			MaxConns:               budget.Temporal,
			VisibilityMaxConns:     budget.TemporalVisibility,
			ApplicationName:        temporalAppName,
			Logger:                 logger.With("component", "temporal-server"),
		})
		if err != nil {
			return fmt.Errorf("start embedded temporal: %w", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				logger.Warn("stop embedded temporal", "error", err)
			}
		}()
		temporalAddr = srv.FrontendHostPort()
		// With sign-in on, the embedded frontend admits this process by its own credential.
		dial = srv.ClientOptions(dial)
	}
	sdkMetrics, closeMetrics := temporalMetrics(reg)
	defer closeMetrics()
	tc, err := dialTemporalLazily(ctx, dial, logger, sdkMetrics)
	if err != nil {
		return err
	}
	defer tc.Close()

	if err := seedDefaultConnector(ctx, pool, c.MLLPAddr, logger); err != nil {
		return err
	}

	sealer, err := connectorSealer(c, true, logger)
	if err != nil {
		return err
	}
	mt, err := loadMappingTenants(c, logger)
	if err != nil {
		return err
	}
	exports, err := blobstore.Open(ctx, c.ExportBucketURL, c.DataDir)
	if err != nil {
		return fmt.Errorf("INTEROP_EXPORT_BUCKET: %w", err)
	}
	// Each export file's upload is checked when it is written; closing the bucket at exit only
	// releases its client (as the serve roles' cleanup does).
	defer func() { _ = exports.Close() }()
	s := &services{cfg: c, logger: logger, pool: pool, registry: reg, temporal: tc, store: &store.Store{Pool: pool}, sealer: sealer, mapping: mt, exports: exports, certs: certs, mllpCerts: mllpCerts,
		dev: true, devOwners: true}
	reindexStore(ctx, s.store, logger)
	w := s.newWorker()
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	go s.runRetention(ctx)

	return s.runGateway(ctx, readiness(pool), func() {
		logger.Info("interop dev is up",
			"startup_seconds", strconv.FormatFloat(time.Since(started).Seconds(), 'f', 2, 64),
			"fhir", c.BaseURL()+"/fhir", "admin", c.BaseURL()+"/admin",
			"mllp", c.MLLPAddr, "temporal", temporalAddr, "temporal_ui", c.TemporalUIURL())
	})
}

// temporalUIOIDC is the embedded Temporal UI's sign-in from INTEROP_OIDC_*, nil when it is off.
func temporalUIOIDC(c config.Config, logger *slog.Logger) *temporaldev.OIDC {
	o := c.Temporal.OIDC
	if !o.Enabled() {
		return nil
	}
	callback := c.TemporalUICallbackURL()
	if c.TemporalUISignInInClear() {
		logger.Warn("the Temporal UI's sign-in returns over plain HTTP: its session cookies cannot be Secure and its "+
			"tokens cross the network in clear; serve the UI over HTTPS (a TLS proxy) and set INTEROP_OIDC_CALLBACK_URL "+
			"to the https URL", "callback_url", callback)
	}
	return &temporaldev.OIDC{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
		CallbackURL: callback, RolesClaim: o.RolesClaim, ReadRoles: o.ReadRoles, WriteRoles: o.WriteRoles,
	}
}

// seedDefaultConnector makes sure the default tenant has an active inbound MLLP connector on
// mllpAddr. An existing one is kept (and its port moved when the address changed).
func seedDefaultConnector(ctx context.Context, pool *db.Pool, mllpAddr string, logger *slog.Logger) error {
	host, portStr, err := net.SplitHostPort(mllpAddr)
	if err != nil {
		return fmt.Errorf("mllp address %q: %w", mllpAddr, err)
	}
	port64, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return fmt.Errorf("mllp address %q: port: %w", mllpAddr, err)
	}
	port := int32(port64)
	return db.InTx(ctx, pool, func(q *db.Queries) error {
		conn, err := q.ConnectorGetByName(ctx, db.ConnectorGetByNameParams{TenantID: defaultTenant, Name: defaultConnector})
		if errors.Is(err, db.ErrNotFound) {
			settings := connector.Settings{ReadTimeoutSeconds: 600}.JSON()
			conn, err = q.ConnectorInsert(ctx, db.ConnectorInsertParams{
				TenantID: defaultTenant, FacilityID: defaultFacility, Name: defaultConnector,
				Protocol: db.ConnectorProtocolMLLP, Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft,
				ListenHost: &host, ListenPort: &port, Settings: settings,
			})
			if err != nil {
				return fmt.Errorf("seed default connector: %w", err)
			}
			logger.Info("seeded the default inbound MLLP connector", "connector_id", conn.ID, "addr", mllpAddr)
		} else if err != nil {
			return fmt.Errorf("look up default connector: %w", err)
		}
		if conn.ListenPort == nil || *conn.ListenPort != port || conn.ListenHost == nil || *conn.ListenHost != host {
			if err := q.ConnectorSetListenAddr(ctx, db.ConnectorSetListenAddrParams{ID: conn.ID, ListenHost: &host, ListenPort: &port}); err != nil {
				return fmt.Errorf("move default connector to %s: %w", mllpAddr, err)
			}
		}
		if conn.Status == db.ConnectorStatusActive {
			return nil
		}
		if _, err := q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: defaultTenant, ID: conn.ID, Status: db.ConnectorStatusActive}); err != nil {
			if errors.Is(err, db.ErrConflict) {
				return fmt.Errorf("activate default connector on %s: another active connector holds that port or slot: %w", mllpAddr, err)
			}
			return fmt.Errorf("activate default connector: %w", err)
		}
		return outbox.Emit(ctx, q, defaultTenant, outbox.ConnectorActivated, conn.ID.String(), map[string]any{
			"connectorId": conn.ID, "protocol": conn.Protocol,
		})
	})
}
