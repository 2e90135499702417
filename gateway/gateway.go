// Package gateway is the service's front door. New composes the HTTP server from its rooms
// — the FHIR API at /fhir (fhirapi), the admin API at /admin (adminapi), both on the shared
// kit (httpkit), each recorded in the audit trail (auditlog) — and serves health, readiness
// and /metrics itself. The MLLP side, which needs
// no HTTP at all, is gateway/inbound, wired by cmd/interop beside this server.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/adminapi"
	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/fhirapi"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/smartapi"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/smart"
	"github.com/nhp/interop/internal/store"
)

// Deps are the HTTP server's collaborators, built by cmd/interop; New hands each room the
// part it needs.
type Deps struct {
	Pool  *db.Pool
	Store *store.Store
	Auth  httpkit.Verifier
	// DefaultOwner owns resource types no routing rule names ("builtin" in dev).
	DefaultOwner string
	// BaseURL is the public base of this server, for absolute links.
	BaseURL string
	// TemporalUIURL links admin responses to workflow runs; "" when unknown.
	TemporalUIURL string
	// TemporalNamespace is the namespace of the workflow runs linked to.
	TemporalNamespace string
	// Ready reports whether the dependencies needed to serve (database, Temporal) answer. Its
	// error starts with the failing component ("database: …"); only that name is shown.
	Ready func(ctx context.Context) error
	// Temporal and TaskQueue start reprocessing runs from the admin API and BulkExport runs.
	Temporal  client.Client
	TaskQueue string
	Metrics   *httpkit.Metrics
	// Gatherer is served on /metrics; nil means the Prometheus default.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means 16 MiB.
	MaxBodyBytes int64
	// Sealer seals connector credentials (internal/crypto over a Tink keyset); nil refuses
	// requests that carry credentials with 503.
	Sealer adminapi.Sealer
	// Listeners, when set, reports this process's MLLP listeners on the admin API's
	// connector views (inbound.Listeners).
	Listeners adminapi.ListenerStates
	// OwnerPolicy decides which addresses owners may have (INTEROP_OWNER_ALLOW): routing
	// rules naming others are refused by the admin API, and the FHIR API's owner client
	// refuses to dial them (unless FHIR.HTTP or FHIR.OwnerPolicy is set). Nil refuses
	// loopback, private, link-local, multicast, unspecified and cloud metadata addresses.
	OwnerPolicy *netguard.Policy
	// FHIR configures how the FHIR facade reaches the owners of resources.
	FHIR fhirapi.Options
	// Exports configures Bulk Data $export; without a bucket (or Temporal) it is not served.
	Exports fhirapi.ExportOptions
	// TLS says the listener serves TLS: every response then carries HSTS.
	TLS bool
	// SMART serves the SMART Backend Services token endpoint, its discovery document and its
	// keys (gateway/smartapi), and the CapabilityStatement declares the token URL; nil serves
	// none of them. Auth must then accept the tokens it issues (auth.Chain).
	SMART *smart.Server
	// AllowPrivateJWKS lets SMART clients register JWKS URLs on loopback (dev, tests).
	AllowPrivateJWKS bool
	// Audit records every request of /fhir (metadata and discovery aside), /admin, the export
	// downloads and the token endpoint as an AuditEvent (auditlog.Writer); nil records none.
	Audit auditlog.Recorder
}

// New builds the HTTP server with every route.
func New(d Deps) *echo.Echo {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 16 << 20
	}
	e := httpkit.NewServer(d.Logger, d.Metrics)
	if d.TLS {
		e.Pre(httpkit.HSTS)
	}
	routes(e, &handlers{d: d})
	return e
}

type handlers struct {
	d Deps
}

func routes(e *echo.Echo, h *handlers) {
	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	gatherer := h.d.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))

	d := h.d
	// audited is the middleware of a room's group: the audit trail's, when there is one.
	audited := func(room auditlog.Room) []echo.MiddlewareFunc {
		if d.Audit == nil {
			return nil
		}
		return []echo.MiddlewareFunc{auditlog.Middleware(d.Audit, room, d.Logger)}
	}
	if d.SMART != nil {
		api := &smartapi.API{Server: d.SMART, BaseURL: d.BaseURL, Logger: d.Logger}
		if mw := audited(auditlog.Token); mw != nil {
			api.Audit = mw[0]
		}
		api.Routes(e)
		if d.FHIR.TokenURL == "" {
			d.FHIR.TokenURL = smartapi.TokenURL(d.BaseURL)
		}
	}
	if d.FHIR.OwnerPolicy == nil {
		d.FHIR.OwnerPolicy = d.OwnerPolicy
	}
	fhirapi.New(fhirapi.Deps{
		Pool: d.Pool, Store: d.Store, Auth: d.Auth, DefaultOwner: d.DefaultOwner, BaseURL: d.BaseURL,
		Logger: d.Logger, MaxBodyBytes: d.MaxBodyBytes, Temporal: d.Temporal, TaskQueue: d.TaskQueue,
		FHIR: d.FHIR, Exports: d.Exports,
	}).Routes(e.Group("/fhir", audited(auditlog.FHIR)...))
	adminapi.New(adminapi.Deps{
		Pool: d.Pool, Auth: d.Auth, BaseURL: d.BaseURL, TemporalUIURL: d.TemporalUIURL,
		TemporalNamespace: d.TemporalNamespace, Temporal: d.Temporal, TaskQueue: d.TaskQueue,
		Logger: d.Logger, MaxBodyBytes: d.MaxBodyBytes, Sealer: d.Sealer, AllowPrivateJWKS: d.AllowPrivateJWKS,
		Listeners: d.Listeners, OwnerPolicy: d.OwnerPolicy,
	}).Routes(e.Group("/admin", audited(auditlog.Admin)...))
}

func (h *handlers) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handlers) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if h.d.Ready != nil {
		if err := h.d.Ready(ctx); err != nil {
			h.d.Logger.Warn("not ready", "error", err)
			// Name the failing dependency, never the error text: /readyz is unauthenticated.
			failing, _, _ := strings.Cut(err.Error(), ":")
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "failing": failing})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
