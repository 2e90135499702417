package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/store"
)

// storeCmd runs the built-in FHIR store alone, as an owning FHIR service with its own database:
// tests and users stand several up behind one gateway.
type storeCmd struct {
	Addr           string `default:"127.0.0.1:8090" help:"Address to serve FHIR REST on."`
	DatabaseURL    string `name:"database-url" env:"INTEROP_STORE_DATABASE_URL" help:"PostgreSQL URL of the store's own database (default: DATABASE_URL)."`
	BaseURL        string `name:"base-url" help:"Absolute URL clients reach the store at, for links (default: http://<addr>)."`
	CreateDatabase bool   `name:"create-database" help:"Create the database first when it does not exist."`
	CursorKey      string `name:"cursor-key" env:"INTEROP_STORE_CURSOR_KEY" help:"Hex key signing paging cursors (replicas must share it; default: random per process)."`
	MaxBodyBytes   int64  `name:"max-body-bytes" default:"8388608" help:"Largest request body accepted."`
}

func (c storeCmd) Run(ctx context.Context, cfg *config.Config) error {
	logger := newLogger(*cfg).With("role", "store")
	dbURL := orDefault(c.DatabaseURL, cfg.DatabaseURL)
	if c.CreateDatabase {
		if err := db.EnsureDatabase(ctx, dbURL); err != nil {
			return err
		}
	}
	if err := db.MigrateUp(dbURL); err != nil {
		return fmt.Errorf("migrate store database: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	budget, err := cfg.DBBudget(false)
	if err != nil {
		cancel()
		return err
	}
	pool, err := db.OpenWith(openCtx, dbURL, db.Options{MaxConns: budget.Service, ApplicationName: "interop-store"})
	cancel()
	if err != nil {
		return err
	}
	defer pool.Close()
	var key []byte
	if c.CursorKey != "" {
		if key, err = hex.DecodeString(c.CursorKey); err != nil || len(key) < 32 {
			return errors.New("--cursor-key: want at least 32 bytes, hex-encoded")
		}
	}
	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		JWKSURL: cfg.JWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: logger,
		HS256: func() (auth.HS256, error) { return signer(*cfg) },
	})
	if err != nil {
		return err
	}
	st := &store.Store{Pool: pool}
	reindexStore(ctx, st, logger)
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("store: listen on %s: %w", c.Addr, err)
	}
	base := orDefault(c.BaseURL, "http://"+ln.Addr().String())
	h := fhirserver.New(st, fhirserver.Options{
		BaseURL: base, CursorKey: key, MaxBodyBytes: c.MaxBodyBytes, Logger: logger,
		Authorize: func(ctx context.Context, typ string, in auth.Interaction) bool {
			p, ok := ctx.Value(principalKey{}).(auth.Principal)
			return ok && p.Scopes.Allows(typ, in)
		},
	})
	srv := &http.Server{Handler: bearerAuth(verifier, h, logger.Info), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("fhir store listening", "addr", ln.Addr().String(), "base_url", base)
	select {
	case err := <-errc:
		return fmt.Errorf("store: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), config.ShutdownGrace)
	defer done()
	return srv.Shutdown(shutdownCtx)
}

type principalKey struct{}

// bearerAuth lets GET /metadata through and otherwise wants a valid bearer token, whose tenant
// claim becomes the request's tenant (fhirserver.WithTenant) and whose scopes the handler's
// Authorize checks per interaction. Refusals are OperationOutcomes; the reason is logged only.
func bearerAuth(v auth.Verifier, next http.Handler, logf func(msg string, args ...any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Trim(r.URL.Path, "/") == "metadata" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			unauthorized(w, `Bearer realm="interop"`, "missing bearer token")
			return
		}
		p, err := v.Verify(token)
		if err != nil || !auth.ValidTenant(p.Tenant) {
			logf("token refused", "error", err)
			unauthorized(w, `Bearer realm="interop", error="invalid_token"`, "invalid or expired bearer token")
			return
		}
		ctx := fhirserver.WithTenant(r.Context(), p.Tenant)
		ctx = context.WithValue(ctx, principalKey{}, p)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func unauthorized(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", fhir.MediaType)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":%q}]}`, msg)
}

// orDefault returns a unless it is empty, else b.
func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
