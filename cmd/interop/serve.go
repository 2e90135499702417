package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"gocloud.dev/blob"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway"
	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/fhirapi"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/inbound"
	"github.com/nhp/interop/gateway/smartapi"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/crypto"
	"github.com/nhp/interop/internal/mapping"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/smart"
	"github.com/nhp/interop/internal/store"
	"github.com/nhp/interop/internal/tlscert"
	"github.com/nhp/interop/worker"
)

// services are the long-lived pieces one process shares between its roles.
type services struct {
	cfg      config.Config
	logger   *slog.Logger
	pool     *db.Pool
	registry *prometheus.Registry
	temporal client.Client
	store    *store.Store
	// listenerAddrs is filled in by runGateway so callers (and tests) can learn bound ports.
	listeners *inbound.Listeners
	acts      *activities.Activities
	// sealer seals connector credentials; runGateway loads it when the role has not.
	sealer *crypto.Sealer
	// mapping is the tenants' mapping configuration (INTEROP_MAPPING_TENANTS).
	mapping *mapping.Tenants
	// exports is the bucket of Bulk Data export files (INTEROP_EXPORT_BUCKET).
	exports *blob.Bucket
	// certs is the HTTP listener's TLS certificate (INTEROP_TLS_CERT/KEY); nil serves plain HTTP.
	certs *tlscert.Reloader
	// mllpCerts is the certificate of MLLP listeners whose connectors ask for TLS
	// (INTEROP_MLLP_TLS_CERT/KEY, else the HTTP listener's); nil when neither is set.
	mllpCerts *tlscert.Reloader
	// dev is `interop dev`: SMART clients may then register JWKS URLs on loopback.
	dev bool
	// devOwners allows owners on loopback (`interop dev`: `interop store` and test owners on
	// 127.0.0.1) on top of INTEROP_OWNER_ALLOW.
	devOwners bool
	owners    *netguard.Policy
}

// ownerPolicy is the owner address policy: INTEROP_OWNER_ALLOW (checked by Config.Validate),
// plus loopback under `interop dev`.
func (s *services) ownerPolicy() *netguard.Policy {
	if s.owners != nil {
		return s.owners
	}
	p, err := netguard.Parse(s.cfg.OwnerAllow)
	if err != nil {
		s.logger.Error("INTEROP_OWNER_ALLOW ignored: owners on internal addresses are refused", "error", err)
		p = nil
	}
	if s.devOwners {
		if p, err = p.With(netguard.Loopback); err != nil {
			panic(err) // a constant
		}
		s.logger.Info("interop dev: owners on loopback (127.0.0.0/8, ::1) are allowed; other internal addresses need INTEROP_OWNER_ALLOW")
	}
	if p == nil {
		p = &netguard.Policy{}
	}
	s.owners = p
	return p
}

// newWorker is the process's worker. Its pipeline steps (local activities) each hold a
// database connection for most of their run: their concurrency follows the service pool
// (worker.DefaultMaxConcurrentLocalActivities for the default pool of 20), so that a smaller
// budget queues steps instead of timing them out waiting for a connection.
func (s *services) newWorker() sdkworker.Worker {
	local := worker.DefaultMaxConcurrentLocalActivities * int(s.pool.MaxConns()) / db.DefaultMaxConns
	return worker.New(s.temporal, s.cfg.Temporal.TaskQueue, s.activities(), worker.Options{
		MaxConcurrentLocalActivities: max(4, min(local, worker.DefaultMaxConcurrentLocalActivities*4)),
	})
}

func (s *services) activities() *activities.Activities {
	if s.acts != nil {
		return s.acts
	}
	s.acts = &activities.Activities{
		Pool: s.pool, Store: s.store, HTTP: s.ownerPolicy().Client(30 * time.Second),
		DefaultOwner: routing.Builtin, Logger: s.logger, Metrics: activities.NewMetrics(s.registry),
		Mapping: s.mapping, Exports: s.exports,
		ExportFileMaxCount: s.cfg.ExportFileMaxCount, ExportFileMaxBytes: s.cfg.ExportFileMaxBytes,
		OwnerToken: s.ownerToken(),
	}
	return s.acts
}

// ownerToken is how the worker authenticates to external owners (the Route step's writes, an
// export's searches): it has no caller's token to forward, so with the HS256 secret (which
// `interop store` and other owners sharing INTEROP_JWT_SECRET verify) it mints a short-lived
// token of the tenant with the scope the activity asks for. With JWKS verification the tokens come from an external
// issuer, which this process cannot sign for: nil, and owners get no Authorization header
// (obtaining a token from the issuer, e.g. a client-credentials grant, is not built).
func (s *services) ownerToken() func(context.Context, string, string) (string, error) {
	if s.cfg.JWKSURL != "" {
		s.logger.Info("the worker sends no token to external owners: tokens come from the JWKS issuer, which this process cannot sign for")
		return nil
	}
	hs, err := signer(s.cfg)
	if err != nil {
		s.logger.Warn("the worker sends no token to external owners: no HS256 secret", "error", err)
		return nil
	}
	return func(_ context.Context, tenant, scope string) (string, error) {
		return hs.Issue("interop-worker", tenant, scope, 5*time.Minute)
	}
}

// runRetention prunes processed messages older than cfg.RetainProcessed until ctx ends. Every
// worker may run it: the delete skips rows another replica has locked.
func (s *services) runRetention(ctx context.Context) {
	keep := s.cfg.RetainProcessed
	if keep <= 0 {
		return
	}
	every := min(max(keep/10, time.Minute), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.activities().PruneProcessed(ctx, time.Now().Add(-keep), 1000)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("retention: prune processed messages", "error", err)
		} else if n > 0 {
			s.logger.Info("retention: pruned processed messages", "count", n, "older_than", keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runGateway serves HTTP, the MLLP listeners and the workflow starter until ctx ends, then
// drains them: HTTP first, then listeners (in-flight messages finish and are acknowledged),
// then the starter.
// announce, if not nil, is called once HTTP and the MLLP listeners are bound.
func (s *services) runGateway(ctx context.Context, ready func(context.Context) error, announce func()) error {
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		JWKSURL: s.cfg.JWKSURL, Issuer: s.cfg.JWTIssuer, Audience: s.cfg.JWTAudience, Logger: s.logger,
		HS256: func() (auth.HS256, error) { return signer(s.cfg) },
	})
	if err != nil {
		return err
	}
	if s.sealer == nil {
		if s.sealer, err = connectorSealer(s.cfg, false, s.logger); err != nil {
			return err
		}
	}
	// The SMART Backend Services token endpoint: its access tokens are signed by the key ring
	// (sealed with the connector credentials' keyset) and verified beside the other tokens.
	ring, err := smart.NewKeyRing(ctx, smart.KeyRingConfig{Pool: s.pool, Sealer: s.sealer, Logger: s.logger})
	if err != nil {
		return fmt.Errorf("smart token signing keys: %w", err)
	}
	base := s.cfg.BaseURL()
	tokenServer := &smart.Server{
		Pool: s.pool, Keys: ring, TokenURL: smartapi.TokenURL(base), Issuer: base, Audience: base + "/fhir",
		ClientKeys: &smart.ClientKeys{AllowPrivate: s.dev, Logger: s.logger}, Logger: s.logger,
	}
	verifier = auth.Chain{Issued: auth.IssuedVerifier{Issuer: base, Audience: base + "/fhir", Keys: ring}, Other: verifier}
	inboundMetrics := inbound.NewMetrics(s.registry)
	s.registry.MustRegister(&inbound.BacklogCollector{Pool: s.pool, Logger: s.logger})
	starter := &inbound.Starter{
		Client: s.temporal, TaskQueue: s.cfg.Temporal.TaskQueue, Pool: s.pool,
		Metrics: inboundMetrics, Logger: s.logger,
	}
	ingestor := &inbound.Ingestor{Pool: s.pool, Starter: starter, Metrics: inboundMetrics, Logger: s.logger}
	s.listeners = &inbound.Listeners{Pool: s.pool, Ingestor: ingestor, Logger: s.logger, DefaultHost: s.cfg.MLLPBindHost, Metrics: inboundMetrics}
	if s.mllpCerts != nil {
		s.listeners.TLSCertificate = s.mllpCerts.GetCertificate
	}

	cursorKey, err := signingKey(s.cfg, "interop fhir gateway paging cursor")
	if err != nil {
		return err
	}
	if cursorKey == nil {
		s.logger.Warn("FHIR paging cursors are signed with a per-process key: a next link works only on the replica that issued it; set INTEROP_URL_SIGNING_KEY")
	}
	exportKey, err := signingKey(s.cfg, "interop bulk export file url")
	if err != nil {
		return err
	}
	routed := &fhirapi.RoutedEvents{Pool: s.pool, Logger: s.logger}
	// The audit trail: started before the server answers anything, closed (drained) after it
	// has stopped answering.
	auditWriter := &auditlog.Writer{
		Pool: s.pool, Observer: audit.Observer{Name: "interop", BaseURL: base}, Logger: s.logger, SpoolDir: s.cfg.AuditSpool(),
	}
	if err := auditWriter.Register(s.registry); err != nil {
		return err
	}
	if err := auditWriter.Start(ctx); err != nil {
		return err
	}
	defer func() {
		drainCtx, cancel := context.WithTimeout(context.Background(), config.ShutdownGrace)
		defer cancel()
		if err := auditWriter.Close(drainCtx); err != nil {
			s.logger.Error("audit trail: not every record was written before stopping", "error", err)
		}
	}()
	e := gateway.New(gateway.Deps{
		FHIR:    fhirapi.Options{CursorKey: cursorKey, Routed: routed, Profiles: s.mapping.NationalProfiles},
		Exports: fhirapi.ExportOptions{Bucket: s.exports, SigningKey: exportKey, Retention: s.cfg.ExportRetention, Parallelism: s.cfg.ExportParallelism},
		Pool:    s.pool, Store: s.store, Auth: verifier, DefaultOwner: routing.Builtin,
		BaseURL: s.cfg.BaseURL(), TemporalUIURL: s.cfg.TemporalUIURL(), TemporalNamespace: s.cfg.Temporal.Namespace,
		Ready: ready, Metrics: httpkit.NewMetrics(s.registry), Gatherer: s.registry, Logger: s.logger,
		Temporal: s.temporal, TaskQueue: s.cfg.Temporal.TaskQueue,
		Sealer: s.sealer, TLS: s.certs != nil, SMART: tokenServer, AllowPrivateJWKS: s.dev,
		Listeners: s.listeners, OwnerPolicy: s.ownerPolicy(), Audit: auditWriter,
	})
	httpSrv := gateway.NewHTTPServer(e, s.certs)
	// Bind before serving so that a taken port is an error of this call, not a log line.
	httpLn, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http gateway: listen on %s: %w", s.cfg.HTTPAddr, err)
	}
	if err := s.listeners.Reconcile(ctx); err != nil {
		s.logger.Error("open mllp listeners", "error", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(5)
	go func() {
		defer wg.Done()
		routed.Run(runCtx)
	}()
	go func() {
		defer wg.Done()
		tokenServer.Run(runCtx)
	}()
	go func() {
		defer wg.Done()
		if err := gateway.Serve(httpSrv, httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server on %s: %w", s.cfg.HTTPAddr, err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		_ = s.listeners.Run(runCtx)
	}()
	go func() {
		defer wg.Done()
		starter.Run(runCtx)
	}()
	s.logger.Info("http gateway listening", "addr", s.cfg.HTTPAddr, "tls", s.certs != nil)
	if announce != nil {
		announce()
	}

	<-runCtx.Done()
	shutdownCtx, done := context.WithTimeout(context.Background(), config.ShutdownGrace)
	defer done()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		s.logger.Warn("http shutdown", "error", err)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// loadTLS loads the HTTP listener's certificate when INTEROP_TLS_CERT and INTEROP_TLS_KEY are
// set, and the MLLP listeners' when INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY are (else
// the HTTP one serves MLLP too): a missing, unreadable or mismatched pair stops start-up here,
// before anything else is opened, with the files named.
func loadTLS(cfg config.Config, logger *slog.Logger) (httpCerts, mllpCerts *tlscert.Reloader, err error) {
	if cfg.TLS() {
		if httpCerts, err = tlscert.New(cfg.TLSCertFile, cfg.TLSKeyFile, logger); err != nil {
			return nil, nil, fmt.Errorf("https: %w", err)
		}
		logger.Info("http gateway serves TLS (HTTP/2, HSTS)", "cert_file", cfg.TLSCertFile)
	}
	mllpCerts = httpCerts
	if cfg.MLLPTLSCertFile != "" {
		if mllpCerts, err = tlscert.New(cfg.MLLPTLSCertFile, cfg.MLLPTLSKeyFile, logger); err != nil {
			return nil, nil, fmt.Errorf("mllp tls: %w", err)
		}
	}
	return httpCerts, mllpCerts, nil
}

// signingKey is the key the gateway signs something with (paging cursors, export file URLs),
// one per purpose: derived from INTEROP_URL_SIGNING_KEY when set, else from the HS256 token
// secret, which every replica shares. With JWKS verification and no signing key there is no
// shared secret here: nil, so that each replica signs with its own random key and a link works
// only on the replica that issued it (a warning says so).
func signingKey(cfg config.Config, purpose string) ([]byte, error) {
	var secret []byte
	switch {
	case cfg.URLSigningKey != "":
		k, err := hex.DecodeString(cfg.URLSigningKey)
		if err != nil || len(k) < 32 {
			return nil, errors.New("INTEROP_URL_SIGNING_KEY: want at least 32 bytes, hex-encoded (e.g. `openssl rand -hex 32`)")
		}
		secret = k
	case cfg.JWKSURL == "":
		hs, err := signer(cfg)
		if err != nil {
			return nil, nil
		}
		secret = hs.Secret
	default:
		return nil, nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil), nil
}

// readiness is the gateway's readiness: the database only. Messages are acknowledged with
// PostgreSQL alone, so a Temporal outage must not take the listeners out of a load balancer;
// it shows as interop_workflow_starts_total{outcome="error"} and a growing pending backlog.
func readiness(pool *db.Pool) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return nil
	}
}

// connectorSealer loads the keyset that seals connector credentials: INTEROP_KEYSET_FILE when
// set, else the development keyset under the data directory, which only `interop dev`
// (createDev) creates. A gateway without either refuses to start, saying what to do.
func connectorSealer(cfg config.Config, createDev bool, logger *slog.Logger) (*crypto.Sealer, error) {
	if cfg.KeysetFile != "" {
		s, err := crypto.LoadCleartextKeysetFile(cfg.KeysetFile)
		if err != nil {
			return nil, fmt.Errorf("INTEROP_KEYSET_FILE: %w", err)
		}
		logger.Info("connector credentials keyset loaded", "keyset_file", cfg.KeysetFile, "primary_key_id", s.KeyID())
		return s, nil
	}
	path := crypto.DevKeysetPath(cfg.DataDir)
	if createDev {
		s, err := crypto.DevKeyset(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("development keyset: %w", err)
		}
		return s, nil
	}
	s, err := crypto.LoadCleartextKeysetFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no keyset for connector credentials: set INTEROP_KEYSET_FILE to a cleartext Tink JSON "+
			"keyset of AEAD keys (e.g. `tinkey create-keyset --key-template AES256_GCM --out-format json --out keyset.json`), "+
			"or, for development only, run `interop dev` once so that it creates %s", path)
	}
	if err != nil {
		return nil, fmt.Errorf("development keyset: %w", err)
	}
	logger.Warn("sealing connector credentials with the development keyset; set INTEROP_KEYSET_FILE in production",
		"keyset_file", path)
	return s, nil
}

// reindexStore indexes, in the background, resources stored before the store's search index
// existed (migration 000012), so that an upgraded database answers every search parameter.
func reindexStore(ctx context.Context, st *store.Store, logger *slog.Logger) {
	go func() {
		n, err := st.Reindex(ctx, 500)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("reindex the built-in store", "error", err)
		case n > 0:
			logger.Info("built-in store reindexed", "resources", n)
		}
	}()
}

// loadMappingTenants reads INTEROP_MAPPING_TENANTS; a bad file stops the process at start.
func loadMappingTenants(cfg config.Config, logger *slog.Logger) (*mapping.Tenants, error) {
	if cfg.MappingTenantsFile == "" {
		return nil, nil
	}
	f, err := os.Open(cfg.MappingTenantsFile)
	if err != nil {
		return nil, fmt.Errorf("INTEROP_MAPPING_TENANTS: %w", err)
	}
	defer func() { _ = f.Close() }() // read only: LoadTenants reads it, or fails and says why
	t, err := mapping.LoadTenants(f)
	if err != nil {
		return nil, fmt.Errorf("INTEROP_MAPPING_TENANTS %s: %w", cfg.MappingTenantsFile, err)
	}
	logger.Info("tenant mapping configuration loaded", "file", cfg.MappingTenantsFile)
	return t, nil
}

// Application names of the process's pools, as pg_stat_activity shows them.
const (
	serviceAppName  = "interop"
	temporalAppName = "interop-temporal" // and interop-temporal-visibility
)

// openPool connects to the service database with the service pool's share of the budget.
func openPool(ctx context.Context, cfg config.Config, budget config.DBBudget, logger *slog.Logger) (*db.Pool, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := db.OpenWith(ctx, cfg.DatabaseURL, db.Options{MaxConns: budget.Service, ApplicationName: serviceAppName})
	if err != nil {
		return nil, err
	}
	logger.Info("database connection budget (INTEROP_DB_MAX_CONNS)", "total", budget.Total, "service_pool", pool.MaxConns(),
		"temporal", budget.Temporal, "temporal_visibility", budget.TemporalVisibility)
	return pool, nil
}
