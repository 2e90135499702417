// Package fhirapi is the FHIR API at /fhir: the facade that routes each interaction to the
// service owning the resource type (the built-in store in-process, or a remote FHIR server),
// fans searches and history out over several owners and merges them, relays batches and
// transactions, answers the CapabilityStatement, serves Bulk Data $export (kick-off, status,
// files; the work is the BulkExport workflow) and counts routed requests (FhirRequestRouted).
package fhirapi

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/store"
)

// Deps are the FHIR API's collaborators.
type Deps struct {
	Pool  *db.Pool
	Store *store.Store
	Auth  httpkit.Verifier
	// DefaultOwner owns resource types no routing rule names ("builtin" in dev).
	DefaultOwner string
	// BaseURL is the public base of this server, for absolute links (the API is at BaseURL/fhir).
	BaseURL string
	Logger  *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means 16 MiB.
	MaxBodyBytes int64
	// Temporal and TaskQueue start BulkExport runs; without Temporal $export is not served.
	Temporal  client.Client
	TaskQueue string
	// FHIR configures how the facade reaches the owners of resources.
	FHIR Options
	// Exports configures Bulk Data $export; without a bucket (or Temporal) it is not served.
	Exports ExportOptions
}

// API is the FHIR API's handler.
type API struct {
	d            Deps
	authenticate echo.MiddlewareFunc
}

// New builds the FHIR API over d.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 16 << 20
	}
	return &API{d: d, authenticate: httpkit.Authenticate(d.Auth, d.Logger)}
}

// Routes registers the API on f, the /fhir group: everything but metadata and export files
// (fetched by their signed URL) needs a bearer token.
func (h *API) Routes(f *echo.Group) {
	f.Use(httpkit.BodyLimit(h.d.MaxBodyBytes), httpkit.FHIRFormat)
	exportRoutes(f, h)
	fhirRoutes(f, h)
}
