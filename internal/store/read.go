package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// Read returns the current version of typ/id in tenant.
func (s *Store) Read(ctx context.Context, tenant, typ, id string) (Resource, error) {
	row, err := db.New(s.Pool).FhirResourceGet(ctx, db.FhirResourceGetParams{TenantID: tenant, ResourceType: typ, ID: id})
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

// Query is a search over one resource type. Zero fields do not filter.
type Query struct {
	ID         string
	Identifier *fhir.Identifier
	// AnySystem matches Identifier.Value under any system (token search without "|").
	AnySystem bool
	Count     int
}

// MaxCount caps _count so one search cannot pull a whole table into memory.
const MaxCount = 1000

// DefaultCount is the page size when _count is absent.
const DefaultCount = 50

// SearchResult is one page of matches and the total number of matches.
type SearchResult struct {
	Resources []Resource
	Total     int
}

// Search returns the resources of typ in tenant that match q, oldest update first.
func (s *Store) Search(ctx context.Context, tenant, typ string, q Query) (SearchResult, error) {
	if q.ID != "" {
		r, err := s.Read(ctx, tenant, typ, q.ID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrGone) {
			return SearchResult{Resources: []Resource{}}, nil
		}
		if err != nil {
			return SearchResult{}, err
		}
		if q.Identifier != nil && !hasIdentifier(r, *q.Identifier, q.AnySystem) {
			return SearchResult{Resources: []Resource{}}, nil
		}
		return SearchResult{Resources: []Resource{r}, Total: 1}, nil
	}
	containment := []byte("{}")
	if q.Identifier != nil {
		containment = identifierContainment(*q.Identifier, q.AnySystem)
	}
	count := q.Count
	if count <= 0 {
		count = DefaultCount
	}
	count = min(count, MaxCount)
	queries := db.New(s.Pool)
	noSystem := q.Identifier != nil && q.Identifier.System == "" && !q.AnySystem
	fetch := count
	if noSystem {
		fetch = MaxCount // filtered below: containment cannot say "has no system"
	}
	rows, err := queries.FhirResourceSearch(ctx, db.FhirResourceSearchParams{
		TenantID: tenant, ResourceType: typ, Containment: containment, MaxRows: int32(fetch),
	})
	if err != nil {
		return SearchResult{}, fmt.Errorf("search %s: %w", typ, err)
	}
	total := len(rows)
	if noSystem {
		rows = exactIdentifierMatches(rows, *q.Identifier)
		total = len(rows)
		rows = rows[:min(len(rows), count)]
	} else if total == count {
		n, err := queries.FhirResourceCount(ctx, db.FhirResourceCountParams{TenantID: tenant, ResourceType: typ, Containment: containment})
		if err != nil {
			return SearchResult{}, fmt.Errorf("count %s: %w", typ, err)
		}
		total = int(n)
	}
	out := make([]Resource, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return SearchResult{Resources: out, Total: total}, nil
}

func hasIdentifier(r Resource, want fhir.Identifier, anySystem bool) bool {
	var body struct {
		Identifier []fhir.Identifier `json:"identifier"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return false
	}
	for _, id := range body.Identifier {
		if id.Value == want.Value && (anySystem || id.System == want.System) {
			return true
		}
	}
	return false
}
