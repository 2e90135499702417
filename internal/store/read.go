package store

import (
	"context"
	"errors"
	"fmt"
	"math"
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
		if errors.Is(err, db.ErrNotFound) {
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
		if errors.Is(err, db.ErrNotFound) {
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
	// Cursor continues a type or system history from a previous HistoryPage.Next. It is only
	// valid for the same tenant, type, Since and CursorKey.
	Cursor string
	// CursorKey signs and verifies cursors, as Query.CursorKey does.
	CursorKey []byte
}

// HistoryPage is one page of a type or system history, newest version first.
type HistoryPage struct {
	Entries []HistoryEntry
	// Next continues the history after this page (as HistoryOptions.Cursor); "" on the last.
	Next string
}

// historyPos is the keyset position a history cursor carries: the last entry's.
type historyPos struct {
	LastUpdated string `json:"t"`
	Type        string `json:"r"`
	ID          string `json:"i"`
	Version     int64  `json:"v"`
}

// History returns the versions of typ/id, newest first (FHIR instance _history), deletions
// included; ErrNotFound when the tenant never had the resource.
func (s *Store) History(ctx context.Context, tenant, typ, id string, opts HistoryOptions) ([]HistoryEntry, error) {
	before := opts.BeforeVersion
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := db.New(s.Pool).FhirResourceHistoryList(ctx, db.FhirResourceHistoryListParams{
		TenantID: tenant, ResourceType: typ, ID: id, BeforeVersion: before, MaxRows: rowLimit(pageSize(opts.Count)),
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

// TypeHistory returns a page of the versions of every resource of typ in tenant, newest
// first (FHIR type-level _history), deletions included. Versions made while a client pages
// are above its position: paging neither repeats nor skips one.
func (s *Store) TypeHistory(ctx context.Context, tenant, typ string, opts HistoryOptions) (HistoryPage, error) {
	return historyPage(tenant, typ, opts, func(pos historyPos, since time.Time, before time.Time, n int32) ([]db.FhirResourceHistory, error) {
		rows, err := db.New(s.Pool).FhirResourceTypeHistoryList(ctx, db.FhirResourceTypeHistoryListParams{
			TenantID: tenant, ResourceType: typ, Since: since,
			BeforeTime: before, BeforeID: pos.ID, BeforeVersion: pos.Version, MaxRows: n,
		})
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", typ, err)
		}
		return rows, nil
	})
}

// SystemHistory returns a page of the versions of every resource in tenant, newest first (FHIR
// system-level _history), deletions included; paged as TypeHistory.
func (s *Store) SystemHistory(ctx context.Context, tenant string, opts HistoryOptions) (HistoryPage, error) {
	return historyPage(tenant, "", opts, func(pos historyPos, since time.Time, before time.Time, n int32) ([]db.FhirResourceHistory, error) {
		rows, err := db.New(s.Pool).FhirResourceSystemHistoryList(ctx, db.FhirResourceSystemHistoryListParams{
			TenantID: tenant, Since: since,
			BeforeTime: before, BeforeType: pos.Type, BeforeID: pos.ID, BeforeVersion: pos.Version, MaxRows: n,
		})
		if err != nil {
			return nil, fmt.Errorf("history of tenant: %w", err)
		}
		return rows, nil
	})
}

// historyPage reads one page with list, which returns up to n versions made at or after since
// that sort before (before, pos) in the history's order, newest first. typ is "" for the
// system history.
func historyPage(tenant, typ string, opts HistoryOptions, list func(pos historyPos, since, before time.Time, n int32) ([]db.FhirResourceHistory, error)) (HistoryPage, error) {
	since := opts.Since
	if since.IsZero() {
		since = minDate
	}
	binding := tenant + "\x1f" + typ + "\x1f" + since.UTC().Format(time.RFC3339Nano)
	// The first page starts after every version: none is made at maxDate.
	before, pos := maxDate, historyPos{}
	if opts.Cursor != "" {
		if err := verifyPosition(opts.CursorKey, historyCursorDomain, binding, opts.Cursor, &pos); err != nil || pos.ID == "" || pos.Version <= 0 {
			return HistoryPage{}, ErrBadCursor
		}
		t, err := time.Parse(time.RFC3339Nano, pos.LastUpdated)
		if err != nil {
			return HistoryPage{}, ErrBadCursor
		}
		before = t
	}
	count := pageSize(opts.Count)
	rows, err := list(pos, since, before, rowLimit(count+1))
	if err != nil {
		return HistoryPage{}, err
	}
	page := HistoryPage{Entries: make([]HistoryEntry, 0, min(len(rows), count))}
	for _, r := range rows[:min(len(rows), count)] {
		page.Entries = append(page.Entries, fromHistoryRow(r))
	}
	if len(rows) > count {
		last := page.Entries[count-1]
		page.Next = signPosition(opts.CursorKey, historyCursorDomain, binding, historyPos{
			LastUpdated: last.LastUpdated.UTC().Format(time.RFC3339Nano), Type: last.Type, ID: last.ID, Version: last.VersionID,
		})
	}
	return page, nil
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultCount
	}
	return min(n, MaxCount)
}

// rowLimit is n as the int32 a query's LIMIT takes. Page sizes (at most MaxCount, plus one to
// see a next page) and batches are far inside its range; clamping makes the conversion safe
// without relying on that.
func rowLimit(n int) int32 {
	return int32(min(max(n, 0), math.MaxInt32))
}

func fromHistoryRow(r db.FhirResourceHistory) HistoryEntry {
	return HistoryEntry{
		Resource: Resource{Type: r.ResourceType, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Body: r.Resource},
		Deleted:  r.Deleted, Method: r.Method,
	}
}
