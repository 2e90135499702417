// Package gateway is the service's front door: the echo HTTP server (FHIR facade at /fhir,
// admin API at /admin, health and metrics) and the MLLP listeners that ingest HL7 v2.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/store"
)

// Verifier checks bearer tokens.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

// Deps are the gateway's collaborators, built by cmd/interop.
type Deps struct {
	Pool  *db.Pool
	Store *store.Store
	Auth  Verifier
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
	// Temporal and TaskQueue start reprocessing runs from the admin API.
	Temporal  client.Client
	TaskQueue string
	Metrics   *Metrics
	// Gatherer is served on /metrics; nil means the Prometheus default.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means 16 MiB.
	MaxBodyBytes int64
	// Sealer seals connector credentials (internal/crypto over a Tink keyset); nil refuses
	// requests that carry credentials with 503.
	Sealer Sealer
	// FHIR configures how the FHIR facade reaches the owners of resources.
	FHIR FHIROptions
	// Exports configures Bulk Data $export; without a bucket (or Temporal) it is not served.
	Exports ExportOptions
}

// New builds the HTTP server with every route.
func New(d Deps) *echo.Echo {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 16 << 20
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(d.Logger)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true}))
	e.Use(middleware.RequestID())
	e.Use(requestLogger(d.Logger))
	if d.Metrics != nil {
		e.Use(d.Metrics.middleware())
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

	fhirGroup := e.Group("/fhir", bodyLimit(h.d.MaxBodyBytes), fhirFormat)
	exportRoutes(fhirGroup, h)
	fhirRoutes(fhirGroup, h)

	admin := e.Group("/admin", bodyLimit(h.d.MaxBodyBytes), h.authenticate, requireScope(auth.AdminScope))
	admin.GET("/events", h.listEvents)
	messageRoutes(admin, h)
	connectorRoutes(admin, h)
	routingRuleRoutes(admin, h)
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
