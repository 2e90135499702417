package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// ExportQuery selects one page of one resource type for a Bulk Data export.
type ExportQuery struct {
	Tenant, Type string
	// TransactionTime is the export's snapshot instant: a resource changed after it is
	// exported as it was at that instant (from its history), and one created after it not at all.
	TransactionTime time.Time
	// Since, when set, keeps only resources whose version at TransactionTime is newer.
	Since time.Time
	// Filters are _typeFilter queries of Type, parsed with ParseQuery; a resource is exported
	// when it matches any of them. Their conditions apply to the current search index.
	Filters []Query
	// Compartment keeps only resources in the Patient compartment (of Patients, when given).
	Compartment bool
	Patients    []string
	// After resumes the export after this id (ids are exported in ascending order).
	After string
	// Limit bounds the rows of the page; 0 means 1000.
	Limit int
}

// ErrNotInCompartment is returned for a compartment export of a type that has no patient
// reference the store indexes.
var ErrNotInCompartment = errors.New("resource type is not in the Patient compartment")

// PatientCompartmentTypes lists the types a patient- or group-level export covers: Patient and
// the types with an indexed patient reference.
func PatientCompartmentTypes() []string {
	out := []string{"Patient"}
	for typ, params := range typeParams {
		if d, ok := params["patient"]; ok && d.kind == kindReference {
			out = append(out, typ)
		}
	}
	slices.Sort(out)
	return out
}

// CompartmentPatients returns the ids of the Patients in whose compartment a resource of typ is,
// by the rule ExportPage applies to the store's index: a Patient's own id; for another type
// the Patient targets of its patient parameter (none when the resource has no patient). It
// reads resources from elsewhere (an owning service's search) the way the store reads its own.
// A type outside PatientCompartmentTypes is ErrNotInCompartment.
func CompartmentPatients(typ string, body []byte) ([]string, error) {
	if typ == "Patient" {
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
		}
		if p.ID == "" {
			return nil, nil
		}
		return []string{p.ID}, nil
	}
	d, ok := typeParams[typ]["patient"]
	if !ok || d.kind != kindReference {
		return nil, fmt.Errorf("%s: %w", typ, ErrNotInCompartment)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
	}
	var ids []string
	for _, p := range d.paths {
		for _, v := range walk(doc, strings.Split(p, ".")) {
			if r, ok := referenceOf(v); ok && r.typ == "Patient" && !slices.Contains(ids, r.id) {
				ids = append(ids, r.id)
			}
		}
	}
	return ids, nil
}

// ExportTypes lists the resource types the tenant has stored, live or deleted.
func (s *Store) ExportTypes(ctx context.Context, tenant string) ([]string, error) {
	types, err := db.New(s.Pool).FhirResourceTypesOfTenant(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("export types: %w", err)
	}
	return types, nil
}

// ExportPage streams one page of q, in ascending id order, to fn: the resource's id and its
// JSON on one line (PostgreSQL's jsonb text, which never contains a newline). line is only
// valid during the call. It returns the rows it passed and the last id, for the next page's
// After; fewer than the limit means the type is done. Memory is bounded by one resource,
// whatever the page's size in bytes.
func (s *Store) ExportPage(ctx context.Context, q ExportQuery, fn func(id string, line []byte) error) (n int, last string, err error) {
	sql, args, err := exportSQL(q)
	if err != nil {
		return 0, "", err
	}
	rows, err := s.Pool.Query(ctx, sql, args...)
	if err != nil {
		return 0, "", fmt.Errorf("export %s: %w", q.Type, err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		last = string(raw[0])
		if err := fn(last, raw[1]); err != nil {
			return n, last, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, last, fmt.Errorf("export %s: %w", q.Type, err)
	}
	return n, last, nil
}

func exportSQL(q ExportQuery) (string, []any, error) {
	args := &sqlArgs{}
	args.add(q.Tenant)
	args.add(q.Type)
	tt := args.add(q.TransactionTime)
	since := q.Since
	if since.IsZero() {
		since = minDate
	}
	where := []string{
		"r.tenant_id = $1", "r.resource_type = $2", "r.id > " + args.add(q.After),
		"NOT v.deleted", "v.last_updated > " + args.add(since),
	}
	fixed := len(where)
	if q.Compartment {
		var pats string
		if len(q.Patients) > 0 {
			pats = args.add(q.Patients)
		}
		switch {
		case q.Type == "Patient" && pats != "":
			where = append(where, "r.id = ANY("+pats+")")
		case q.Type == "Patient":
		default:
			if d, ok := typeParams[q.Type]["patient"]; !ok || d.kind != kindReference {
				return "", nil, fmt.Errorf("%s: %w", q.Type, ErrNotInCompartment)
			}
			c := "EXISTS (SELECT 1 FROM fhir_search_refs c WHERE c.tenant_id = $1 AND c.resource_type = $2 AND c.id = r.id AND c.param = 'patient' AND c.target_type = 'Patient'"
			if pats != "" {
				c += " AND c.target_id = ANY(" + pats + ")"
			}
			where = append(where, c+")")
		}
	}
	if len(q.Filters) > 0 {
		var ors []string
		for _, f := range q.Filters {
			w, err := compileWhere(q.Type, f.params(), args, false)
			if err != nil {
				return "", nil, err
			}
			if len(w.filters) == 0 {
				ors = nil // an empty filter matches everything
				break
			}
			ors = append(ors, "("+strings.Join(w.filters, " AND ")+")")
		}
		if len(ors) > 0 {
			where = append(where, "("+strings.Join(ors, " OR ")+")")
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	// v is the version current at the transaction time: the row itself unless it changed
	// since, then the newest older version from the history (a one-time filter, so rows not
	// changed since the kick-off never touch the history table).
	sql := `SELECT r.id, v.resource::text FROM fhir_resources r
CROSS JOIN LATERAL (
    SELECT r.resource, r.last_updated, r.deleted WHERE r.last_updated <= ` + tt + `
    UNION ALL
    (SELECT h.resource, h.last_updated, h.deleted FROM fhir_resource_history h
     WHERE r.last_updated > ` + tt + ` AND h.tenant_id = r.tenant_id AND h.resource_type = r.resource_type
       AND h.id = r.id AND h.last_updated <= ` + tt + `
     ORDER BY h.version_id DESC LIMIT 1)
) v
WHERE ` + strings.Join(where, " AND ") + `
ORDER BY r.id LIMIT ` + args.add(limit)
	return sql, execMode(compiledWhere{filters: where[fixed:]}, args.args), nil
}

// ExportDeletedPage lists, in ascending id order, the ids of Type deleted after q.Since and
// at or before q.TransactionTime (the `deleted` part of an export with _since). Filters and
// compartments do not apply: a deleted resource is no longer indexed.
func (s *Store) ExportDeletedPage(ctx context.Context, q ExportQuery) ([]string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	ids, err := db.New(s.Pool).FhirResourceDeletedBetween(ctx, db.FhirResourceDeletedBetweenParams{
		TenantID: q.Tenant, ResourceType: q.Type, After: q.After, Since: q.Since, Until: q.TransactionTime, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("export deleted %s: %w", q.Type, err)
	}
	return ids, nil
}
