// Package adminapi is the admin API at /admin, for operators and support staff of a tenant:
// connectors (the InteropConnector lifecycle), the inbound message log and its reprocessing,
// FHIR routing rules, the tenant's domain events and its audit trail. Every route needs the
// admin scope.
package adminapi

import (
	"log/slog"

	"github.com/google/uuid"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/inbound"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/netguard"
)

// Deps are the admin API's collaborators.
type Deps struct {
	Pool *db.Pool
	Auth httpkit.Verifier
	// BaseURL is the public base of this server, for absolute links.
	BaseURL string
	// TemporalUIURL links admin responses to workflow runs; "" when unknown.
	TemporalUIURL string
	// TemporalNamespace is the namespace of the workflow runs linked to.
	TemporalNamespace string
	// Temporal and TaskQueue start reprocessing runs; without Temporal reprocessing is refused.
	Temporal  client.Client
	TaskQueue string
	Logger    *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means 16 MiB.
	MaxBodyBytes int64
	// Sealer seals connector credentials (internal/crypto over a Tink keyset); nil refuses
	// requests that carry credentials with 503.
	Sealer Sealer
	// AllowPrivateJWKS lets SMART clients register JWKS URLs on loopback over http
	// (development and tests); production registers https URLs only.
	AllowPrivateJWKS bool
	// Listeners, when set, reports the health of this process's MLLP listeners, shown on
	// active connectors (listening, lastError).
	Listeners ListenerStates
	// OwnerPolicy decides which addresses a routing rule's ownerUrl may name (netguard; the
	// operator's INTEROP_OWNER_ALLOW); nil refuses loopback, private, link-local, multicast,
	// unspecified and cloud metadata addresses.
	OwnerPolicy *netguard.Policy
}

// ListenerStates reports this process's MLLP listener of a connector (inbound.Listeners).
type ListenerStates interface {
	State(connectorID uuid.UUID) (inbound.ListenerState, bool)
}

// API is the admin API's handler.
type API struct {
	d Deps
}

// New builds the admin API over d.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 16 << 20
	}
	return &API{d: d}
}

// Routes registers the API on admin, the /admin group, behind a bearer token with the admin
// scope.
func (h *API) Routes(admin *echo.Group) {
	admin.Use(httpkit.BodyLimit(h.d.MaxBodyBytes), httpkit.Authenticate(h.d.Auth, h.d.Logger), httpkit.RequireScope(auth.AdminScope), httpkit.CheckText)
	admin.GET("/events", h.listEvents)
	messageRoutes(admin, h)
	connectorRoutes(admin, h)
	routingRuleRoutes(admin, h)
	clientRoutes(admin, h)
	auditRoutes(admin, h)
}
