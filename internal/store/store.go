// Package store is the built-in FHIR store: versioned FHIR R4 resources in PostgreSQL JSONB,
// with history and conditional writes keyed on business identifiers. It is the default owner of
// every resource type in `interop dev`, and tests run several of them as separate owners.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nhp/interop/db"
)

// Errors callers map to FHIR status codes.
var (
	// ErrNotFound means no resource has that type and id in the tenant (404).
	ErrNotFound = errors.New("resource not found")
	// ErrGone means the resource existed and was deleted (410).
	ErrGone = errors.New("resource deleted")
	// ErrMultipleMatches means a conditional write matched more than one resource (412).
	ErrMultipleMatches = errors.New("conditional write matched more than one resource")
	// ErrVersionConflict means an update's expected version (If-Match) is not the current
	// one, or there is no current one (412).
	ErrVersionConflict = errors.New("resource version conflict")
)

// Store serves one PostgreSQL database's fhir_resources tables and their search index
// (fhir_search_tokens, fhir_search_refs, fhir_search_dates), which every write maintains in
// its own transaction. Every method is confined to the tenant it is given.
type Store struct {
	Pool *db.Pool
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

// Tx runs several store operations in one database transaction (a FHIR transaction Bundle):
// they all apply or none does. It has the Store's read and write methods; get one from InTx.
type Tx struct {
	s    *Store
	q    *db.Queries
	conn db.DBTX
}

// InTx runs fn in one transaction, committed when fn returns nil and rolled back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.InTx(ctx, s.Pool, func(q *db.Queries) error {
		return fn(&Tx{s: s, q: q, conn: q.Conn()})
	})
}

// inTx is InTx returning a value.
func inTx[T any](ctx context.Context, s *Store, fn func(tx *Tx) (T, error)) (T, error) {
	var out T
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

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
