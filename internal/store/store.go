// Package store is the built-in FHIR store: versioned FHIR R4 resources in PostgreSQL JSONB,
// with history and conditional writes keyed on business identifiers. It is the default owner of
// every resource type in `interop dev`, and tests run several of them as separate owners.
package store

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers map to FHIR status codes.
var (
	// ErrNotFound means no resource has that type and id in the tenant (404).
	ErrNotFound = errors.New("resource not found")
	// ErrGone means the resource existed and was deleted (410).
	ErrGone = errors.New("resource deleted")
	// ErrMultipleMatches means a conditional write matched more than one resource (412).
	ErrMultipleMatches = errors.New("conditional write matched more than one resource")
)

// Store serves one PostgreSQL database's fhir_resources tables.
type Store struct {
	Pool *pgxpool.Pool
	// Now is the clock for meta.lastUpdated; nil means time.Now.
	Now func() time.Time
}

// Action says what a write did to the stored state.
type Action string

// Actions of a write.
const (
	ActionCreated   Action = "created"
	ActionUpdated   Action = "updated"
	ActionUnchanged Action = "unchanged"
)

// Resource is one stored version.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Body        json.RawMessage
}

// WriteResult is the outcome of a create or update.
type WriteResult struct {
	Resource
	Action Action
	// Stale is set when a conditional update was not applied because the stored resource
	// comes from a newer source event.
	Stale bool
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}
