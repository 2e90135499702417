// Package activities implements the Temporal activities: the glue between the pure packages
// (hl7v2, mapping, routing) and the database and network. Workflows call them through
// `var a *activities.Activities`; every method classifies its errors at this boundary, so the
// workflow's retry policy sees transient failures and stops at permanent ones.
package activities

import (
	"context"
	"log/slog"
	"net/http"

	"gocloud.dev/blob"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/mapping"
	"github.com/nhp/interop/internal/store"
)

// Activities holds the dependencies of every activity; fields are set by the worker.
type Activities struct {
	Pool *db.Pool
	// Store is the built-in FHIR store, the owner named "builtin" in routing rules.
	Store *store.Store
	// HTTP reaches external owners.
	HTTP *http.Client
	// DefaultOwner owns resource types that no routing rule of the tenant names.
	DefaultOwner string
	Logger       *slog.Logger
	// Metrics may be nil (tests).
	Metrics *Metrics
	// Mapping holds the tenants' mapping configuration (national profiles, time zones); nil
	// maps every tenant with the base profiles.
	Mapping *mapping.Tenants
	// Exports is the bucket Bulk Data export files are written to; nil fails every export.
	Exports *blob.Bucket
	// ExportFileMaxBytes and ExportFileMaxCount split a task's output into files; 0 means
	// DefaultExportFileMaxBytes and DefaultExportFileMaxCount.
	ExportFileMaxBytes int64
	ExportFileMaxCount int64
	// OwnerToken mints the bearer token sent to an external owner on behalf of tenant, with
	// scope (SMART, e.g. system/*.rs for an export's searches, system/*.cu for the Route
	// step's writes): the worker has no caller's token to forward. Nil sends none.
	OwnerToken func(ctx context.Context, tenant, scope string) (string, error)
	// ExportOwnerPageCount is the _count of the searches an export sends to external owners;
	// 0 means DefaultExportOwnerPageCount.
	ExportOwnerPageCount int
	// ExportOwnerPageMaxBytes bounds one page of an owner's search, as it arrives; a larger page
	// fails the export. 0 means DefaultExportOwnerPageMaxBytes.
	ExportOwnerPageMaxBytes int64
}

// Error types of non-retryable application errors: the retry policy stops at these, and
// support staff see the type in the Temporal UI.
const (
	ErrTypeParse        = "HL7ParseError"
	ErrTypeMapping      = "HL7MappingError"
	ErrTypeRouting      = "FhirRoutingError"
	ErrTypeOwnerRefused = "FhirOwnerRejected"
	ErrTypeNotFound     = "MessageNotFound"
)

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}
