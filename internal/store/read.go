package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nhp/interop/db"
)

// Read returns the current version of typ/id in tenant: ErrNotFound when the tenant never had
// it, ErrGone when it was deleted.
func (s *Store) Read(ctx context.Context, tenant, typ, id string) (Resource, error) {
	return read(ctx, db.New(s.Pool), tenant, typ, id)
}

// Read is Store.Read inside the transaction.
func (tx *Tx) Read(ctx context.Context, tenant, typ, id string) (Resource, error) {
	return read(ctx, tx.q, tenant, typ, id)
}

func read(ctx context.Context, q *db.Queries, tenant, typ, id string) (Resource, error) {
	row, err := q.FhirResourceGet(ctx, db.FhirResourceGetParams{TenantID: tenant, ResourceType: typ, ID: id})
	if err != nil {
		if errors.Is(db.Interpret(err), db.ErrNotFound) {
			return Resource{}, ErrNotFound
		}
		return Resource{}, fmt.Errorf("read %s/%s: %w", typ, id, err)
	}
	if row.Deleted {
		return Resource{}, ErrGone
	}
	return fromRow(row), nil
}

// ReadVersion returns version of typ/id (FHIR vread): ErrNotFound when there is no such
// version, ErrGone when that version is a deletion.
func (s *Store) ReadVersion(ctx context.Context, tenant, typ, id string, version int64) (Resource, error) {
	row, err := db.New(s.Pool).FhirResourceVersionGet(ctx, db.FhirResourceVersionGetParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version,
	})
	if err != nil {
		if errors.Is(db.Interpret(err), db.ErrNotFound) {
			return Resource{}, ErrNotFound
		}
		return Resource{}, fmt.Errorf("read %s/%s version %d: %w", typ, id, version, err)
	}
	if row.Deleted {
		return Resource{}, ErrGone
	}
	return fromHistoryRow(row).Resource, nil
}

// HistoryEntry is one version in a history: a resource, or a deletion (Deleted, no Body).
type HistoryEntry struct {
	Resource
	Deleted bool
	// Method is the request that made the version: POST, PUT or DELETE.
	Method string
}

// HistoryOptions pages a history.
type HistoryOptions struct {
	// Count caps the entries: 0 means DefaultCount, above MaxCount means MaxCount.
	Count int
	// Since keeps versions made at or after it (_since); zero keeps all.
	Since time.Time
	// BeforeVersion, in an instance history, keeps versions older than it (paging); 0 keeps all.
	BeforeVersion int64
}

// History returns the versions of typ/id, newest first (FHIR instance _history), deletions
// included; ErrNotFound when the tenant never had the resource.
func (s *Store) History(ctx context.Context, tenant, typ, id string, opts HistoryOptions) ([]HistoryEntry, error) {
	before := opts.BeforeVersion
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := db.New(s.Pool).FhirResourceHistoryList(ctx, db.FhirResourceHistoryListParams{
		TenantID: tenant, ResourceType: typ, ID: id, BeforeVersion: before, MaxRows: int32(pageSize(opts.Count)),
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", typ, id, err)
	}
	if len(rows) == 0 && opts.BeforeVersion <= 0 {
		return nil, ErrNotFound
	}
	out := make([]HistoryEntry, 0, len(rows))
	for _, r := range rows {
		if !opts.Since.IsZero() && r.LastUpdated.Before(opts.Since) {
			continue
		}
		out = append(out, fromHistoryRow(r))
	}
	return out, nil
}

// TypeHistory returns the versions of every resource of typ in tenant, newest first (FHIR
// type-level _history), deletions included.
func (s *Store) TypeHistory(ctx context.Context, tenant, typ string, opts HistoryOptions) ([]HistoryEntry, error) {
	since := opts.Since
	if since.IsZero() {
		since = minDate
	}
	rows, err := db.New(s.Pool).FhirResourceTypeHistoryList(ctx, db.FhirResourceTypeHistoryListParams{
		TenantID: tenant, ResourceType: typ, Since: since, MaxRows: int32(pageSize(opts.Count)),
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", typ, err)
	}
	out := make([]HistoryEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromHistoryRow(r))
	}
	return out, nil
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultCount
	}
	return min(n, MaxCount)
}

func fromHistoryRow(r db.FhirResourceHistory) HistoryEntry {
	return HistoryEntry{
		Resource: Resource{Type: r.ResourceType, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Body: r.Resource},
		Deleted:  r.Deleted, Method: r.Method,
	}
}
