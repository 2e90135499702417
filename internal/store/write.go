package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// Create stores body as a new resource with a server-assigned id.
func (s *Store) Create(ctx context.Context, tenant string, body []byte) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	var res WriteResult
	err = db.InTx(ctx, s.Pool, func(q *db.Queries) error {
		res, err = s.put(ctx, q, tenant, head.ResourceType, uuid.NewString(), body, nil, "POST")
		return err
	})
	return res, err
}

// ConditionalCreate creates body unless a resource of its type already carries ident
// (FHIR If-None-Exist: identifier=system|value); then it returns that resource, unchanged.
// Concurrent calls for one identifier are serialised with a transaction-scoped advisory lock,
// so two processes can never both create.
func (s *Store) ConditionalCreate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return s.conditional(ctx, tenant, body, ident, false)
}

// ConditionalUpdate replaces the resource of body's type that carries ident, or creates it when
// none does (FHIR conditional update: PUT Type?identifier=system|value). When both the stored
// resource and body carry fhir.ExtSourceEventTime and body's event is older, nothing is
// written and the result is Stale: state from a newer event is never overwritten by a message
// processed late. Writers of one identifier are serialised, so the comparison cannot race.
func (s *Store) ConditionalUpdate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return s.conditional(ctx, tenant, body, ident, true)
}

// Update stores body as typ/id (FHIR update, PUT Type/id): it creates the resource with that
// client-chosen id when the tenant has none, else replaces it. Content equal to the current
// version's is not a new version, so a replay changes nothing; and, as for ConditionalUpdate,
// an older source event than the stored one's is not applied (Stale). body must be of typ and
// carry no other id. Writers of one id are serialised.
func (s *Store) Update(ctx context.Context, tenant, typ, id string, body []byte) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	switch {
	case head.ResourceType != typ:
		return WriteResult{}, fmt.Errorf("%w: a %s sent to update %s/%s", fhir.ErrInvalidResource, head.ResourceType, typ, id)
	case !fhir.ValidID(id):
		return WriteResult{}, fmt.Errorf("%w: id %q", fhir.ErrInvalidResource, id)
	case head.ID != "" && head.ID != id:
		return WriteResult{}, fmt.Errorf("%w: id %q in the body of an update of %s/%s", fhir.ErrInvalidResource, head.ID, typ, id)
	}
	var res WriteResult
	err = db.InTx(ctx, s.Pool, func(q *db.Queries) error {
		// "\x1f\x1f" keeps these keys apart from conditional writes' identifier keys.
		if err := q.AdvisoryXactLock(ctx, tenant+"\x1f"+typ+"\x1f\x1f"+id); err != nil {
			return fmt.Errorf("lock id: %w", err)
		}
		row, err := q.FhirResourceGet(ctx, db.FhirResourceGetParams{TenantID: tenant, ResourceType: typ, ID: id})
		switch {
		case errors.Is(db.Interpret(err), db.ErrNotFound):
			res, err = s.put(ctx, q, tenant, typ, id, body, nil, "PUT")
			return err
		case err != nil:
			return fmt.Errorf("read %s/%s: %w", typ, id, err)
		case !row.Deleted && olderEvent(body, row.Resource):
			res = WriteResult{Resource: fromRow(row), Action: ActionUnchanged, Stale: true}
			return nil
		}
		res, err = s.put(ctx, q, tenant, typ, id, body, &row, "PUT")
		return err
	})
	return res, err
}

func (s *Store) conditional(ctx context.Context, tenant string, body []byte, ident fhir.Identifier, update bool) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	if ident.Value == "" {
		return WriteResult{}, fmt.Errorf("%w: conditional write needs an identifier value", fhir.ErrInvalidResource)
	}
	var res WriteResult
	err = db.InTx(ctx, s.Pool, func(q *db.Queries) error {
		// \x1f (unit separator): text values cannot hold NUL, and no tenant or type holds \x1f.
		lockKey := tenant + "\x1f" + head.ResourceType + "\x1f" + ident.Token()
		if err := q.AdvisoryXactLock(ctx, lockKey); err != nil {
			return fmt.Errorf("lock identifier: %w", err)
		}
		matches, err := q.FhirResourceSearch(ctx, db.FhirResourceSearchParams{
			TenantID: tenant, ResourceType: head.ResourceType,
			Containment: identifierContainment(ident, false), MaxRows: candidateRows(ident),
		})
		if err != nil {
			return fmt.Errorf("search by identifier: %w", err)
		}
		matches = exactIdentifierMatches(matches, ident)
		switch {
		case len(matches) > 1:
			return ErrMultipleMatches
		case len(matches) == 1 && !update:
			res = WriteResult{Resource: fromRow(matches[0]), Action: ActionUnchanged}
			return nil
		case len(matches) == 1 && olderEvent(body, matches[0].Resource):
			res = WriteResult{Resource: fromRow(matches[0]), Action: ActionUnchanged, Stale: true}
			return nil
		case len(matches) == 1:
			res, err = s.put(ctx, q, tenant, head.ResourceType, matches[0].ID, body, &matches[0], "PUT")
			return err
		default:
			res, err = s.put(ctx, q, tenant, head.ResourceType, uuid.NewString(), body, nil, "POST")
			return err
		}
	})
	return res, err
}

// put writes a new version of (typ, id); prev is the current row, nil when there is none, and
// method the request that made the version, as history records it. An update whose content
// equals the current version's is a no-op, so replays do not grow history.
func (s *Store) put(ctx context.Context, q *db.Queries, tenant, typ, id string, body []byte, prev *db.FhirResource, method string) (WriteResult, error) {
	version := int64(1)
	action := ActionCreated
	if prev != nil {
		if !prev.Deleted && sameContent(prev.Resource, body) {
			return WriteResult{Resource: fromRow(*prev), Action: ActionUnchanged}, nil
		}
		version = prev.VersionID + 1
		action = ActionUpdated
	}
	now := s.now().Truncate(time.Microsecond)
	stamped, err := stamp(body, id, version, now)
	if err != nil {
		return WriteResult{}, err
	}
	if err := q.FhirResourceUpsert(ctx, db.FhirResourceUpsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Resource: stamped,
	}); err != nil {
		return WriteResult{}, fmt.Errorf("upsert %s/%s: %w", typ, id, err)
	}
	if err := q.FhirResourceHistoryInsert(ctx, db.FhirResourceHistoryInsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Method: method, Resource: stamped,
	}); err != nil {
		return WriteResult{}, fmt.Errorf("insert history of %s/%s: %w", typ, id, err)
	}
	return WriteResult{
		Resource: Resource{Type: typ, ID: id, VersionID: version, LastUpdated: now, Body: stamped},
		Action:   action,
	}, nil
}

// stamp sets id and meta.versionId/lastUpdated, keeping every other element as sent.
func stamp(body []byte, id string, version int64, at time.Time) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := m["meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("%w: meta: %v", fhir.ErrInvalidResource, err)
		}
	}
	meta["versionId"] = mustJSON(strconv.FormatInt(version, 10))
	meta["lastUpdated"] = mustJSON(at.Format(time.RFC3339Nano))
	m["meta"] = mustJSON(meta)
	m["id"] = mustJSON(id)
	return json.Marshal(m)
}

// sameContent compares two resources ignoring id and meta.versionId/lastUpdated.
func sameContent(stored, incoming []byte) bool {
	a, errA := canonical(stored)
	b, errB := canonical(incoming)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func canonical(body []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	delete(m, "id")
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
		if len(meta) == 0 {
			delete(m, "meta")
		}
	}
	return json.Marshal(m) // map keys marshal sorted, so equal content gives equal bytes
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(errors.Join(errors.New("marshal of a plain value failed"), err)) // strings and maps of RawMessage always marshal
	}
	return b
}

// candidateRows is how many containment matches a conditional write inspects: 2 tell "one or
// several" apart; an identifier without a system also matches every system's identifier of
// that value in JSONB containment, so those candidates are filtered in Go (see
// exactIdentifierMatches) and more are read.
func candidateRows(ident fhir.Identifier) int32 {
	if ident.System == "" {
		return MaxCount
	}
	return 2
}

// exactIdentifierMatches keeps the rows carrying ident exactly: for "|value" (no system) only
// identifiers that have no system, as FHIR token search defines it.
func exactIdentifierMatches(rows []db.FhirResource, ident fhir.Identifier) []db.FhirResource {
	if ident.System != "" {
		return rows
	}
	out := rows[:0]
	for _, r := range rows {
		if hasIdentifier(fromRow(r), ident, false) {
			out = append(out, r)
		}
	}
	return out
}

// olderEvent reports whether incoming describes an event older than the stored resource's.
func olderEvent(incoming, stored []byte) bool {
	in, okIn := fhir.SourceEventTime(incoming)
	st, okSt := fhir.SourceEventTime(stored)
	return okIn && okSt && in.Before(st)
}

func identifierContainment(ident fhir.Identifier, anySystem bool) []byte {
	entry := map[string]string{"value": ident.Value}
	if !anySystem && ident.System != "" {
		entry["system"] = ident.System
	}
	return mustJSON(map[string]any{"identifier": []any{entry}})
}

func fromRow(r db.FhirResource) Resource {
	return Resource{Type: r.ResourceType, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Body: r.Resource}
}
