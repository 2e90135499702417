package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/jsontext"
)

// Create stores body as a new resource with a server-assigned id.
func (s *Store) Create(ctx context.Context, tenant string, body []byte) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.Create(ctx, tenant, body) })
}

// ConditionalCreate creates body unless a resource of its type already carries ident
// (FHIR If-None-Exist: identifier=system|value); then it returns that resource, unchanged.
// Concurrent calls for one identifier are serialised with a transaction-scoped advisory lock,
// so two processes can never both create.
func (s *Store) ConditionalCreate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalCreate(ctx, tenant, body, ident) })
}

// ConditionalUpdate replaces the resource of body's type that carries ident, or creates it when
// none does (FHIR conditional update: PUT Type?identifier=system|value). When both the stored
// resource and body carry fhir.ExtSourceEventTime and body's event is older, nothing is
// written and the result is Stale: state from a newer event is never overwritten by a message
// processed late. Writers of one identifier are serialised, so the comparison cannot race.
func (s *Store) ConditionalUpdate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalUpdate(ctx, tenant, body, ident) })
}

// ConditionalUpdateMerge is ConditionalUpdate that writes what merge makes of the stored
// resource: merge gets the current version's body (nil when none matches ident) and returns
// the body to store, e.g. incoming with list elements merged (fhir.MergeLists). It runs under
// the identifier's lock, so no writer can come between the read and the write. As for
// ConditionalUpdate, a merged body from an older source event than the stored one is not
// written (Stale).
func (s *Store) ConditionalUpdateMerge(ctx context.Context, tenant string, body []byte, ident fhir.Identifier, merge func(stored []byte) ([]byte, error)) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalUpdateMerge(ctx, tenant, body, ident, merge) })
}

// ConditionalCreateWhere is ConditionalCreate with any search as the condition (If-None-Exist:
// a query string parsed with ParseQuery): no match creates, one match is returned unchanged,
// several are ErrMultipleMatches.
func (s *Store) ConditionalCreateWhere(ctx context.Context, tenant string, body []byte, q Query) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalCreateWhere(ctx, tenant, body, q) })
}

// ConditionalUpdateWhere is ConditionalUpdate with any search as the condition (PUT Type?query).
func (s *Store) ConditionalUpdateWhere(ctx context.Context, tenant string, body []byte, q Query) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalUpdateWhere(ctx, tenant, body, q) })
}

// ConditionalUpdateWhereIfMatch is ConditionalUpdateWhere that applies only when the one match's
// current version is ifMatch (If-Match: W/"<version>"); otherwise, or when nothing matches,
// ErrVersionConflict.
func (s *Store) ConditionalUpdateWhereIfMatch(ctx context.Context, tenant string, body []byte, q Query, ifMatch int64) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) {
		return tx.ConditionalUpdateWhereIfMatch(ctx, tenant, body, q, ifMatch)
	})
}

// Update stores body as typ/id (FHIR update, PUT Type/id): it creates the resource with that
// client-chosen id when the tenant has none, else replaces it. Content equal to the current
// version's is not a new version, so a replay changes nothing; and, as for ConditionalUpdate,
// an older source event than the stored one's is not applied (Stale). body must be of typ and
// carry no other id. Writers of one id are serialised.
func (s *Store) Update(ctx context.Context, tenant, typ, id string, body []byte) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.Update(ctx, tenant, typ, id, body) })
}

// UpdateIfMatch is Update that applies only when the current version is ifMatch (FHIR
// If-Match: W/"<version>"); otherwise, or when there is no current version, ErrVersionConflict.
func (s *Store) UpdateIfMatch(ctx context.Context, tenant, typ, id string, body []byte, ifMatch int64) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.UpdateIfMatch(ctx, tenant, typ, id, body, ifMatch) })
}

// Delete deletes typ/id (FHIR delete): a new version marks it deleted, so that Read says
// ErrGone and history keeps every version. Deleting a missing or deleted resource changes
// nothing and is no error (FHIR delete is idempotent): see DeleteResult.
func (s *Store) Delete(ctx context.Context, tenant, typ, id string) (DeleteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (DeleteResult, error) { return tx.Delete(ctx, tenant, typ, id) })
}

// DeleteWhere deletes the one resource of typ matching q (FHIR conditional delete): none is
// no error, several are ErrMultipleMatches.
func (s *Store) DeleteWhere(ctx context.Context, tenant, typ string, q Query) (DeleteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (DeleteResult, error) { return tx.DeleteWhere(ctx, tenant, typ, q) })
}

// DeleteResult says what a delete did.
type DeleteResult struct {
	// Deleted is set when this call deleted a current resource.
	Deleted bool
	// ID and VersionID name the deletion's version (or, when Deleted is false and the
	// resource was already deleted, the earlier deletion); empty when there never was one.
	ID        string
	VersionID int64
}

// CreateWithID is Create with the id chosen by the caller (a transaction Bundle assigns ids
// before it writes, to resolve urn:uuid references): ErrVersionConflict when typ/id exists.
func (tx *Tx) CreateWithID(ctx context.Context, tenant, id string, body []byte) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	if !fhir.ValidID(id) {
		return WriteResult{}, fmt.Errorf("%w: id %q", fhir.ErrInvalidResource, id)
	}
	row, err := tx.lockAndGet(ctx, tenant, head.ResourceType, id)
	if err != nil {
		return WriteResult{}, err
	}
	if row != nil {
		return WriteResult{}, ErrVersionConflict
	}
	return tx.put(ctx, tenant, head.ResourceType, id, body, nil, "POST")
}

// Create is Store.Create inside the transaction.
func (tx *Tx) Create(ctx context.Context, tenant string, body []byte) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	return tx.put(ctx, tenant, head.ResourceType, uuid.NewString(), body, nil, "POST")
}

// ConditionalCreate is Store.ConditionalCreate inside the transaction.
func (tx *Tx) ConditionalCreate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	if ident.Value == "" {
		return WriteResult{}, fmt.Errorf("%w: conditional write needs an identifier value", fhir.ErrInvalidResource)
	}
	return tx.conditional(ctx, tenant, body, Query{Identifier: &ident}, false, 0)
}

// ConditionalUpdate is Store.ConditionalUpdate inside the transaction.
func (tx *Tx) ConditionalUpdate(ctx context.Context, tenant string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	if ident.Value == "" {
		return WriteResult{}, fmt.Errorf("%w: conditional write needs an identifier value", fhir.ErrInvalidResource)
	}
	return tx.conditional(ctx, tenant, body, Query{Identifier: &ident}, true, 0)
}

// ConditionalUpdateMerge is Store.ConditionalUpdateMerge inside the transaction.
func (tx *Tx) ConditionalUpdateMerge(ctx context.Context, tenant string, body []byte, ident fhir.Identifier, merge func(stored []byte) ([]byte, error)) (WriteResult, error) {
	if ident.Value == "" {
		return WriteResult{}, fmt.Errorf("%w: conditional write needs an identifier value", fhir.ErrInvalidResource)
	}
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	row, err := tx.lockedMatch(ctx, tenant, head.ResourceType, ident)
	if err != nil {
		return WriteResult{}, err
	}
	if row == nil {
		merged, err := merge(nil)
		if err != nil {
			return WriteResult{}, err
		}
		return tx.put(ctx, tenant, head.ResourceType, uuid.NewString(), merged, nil, "POST")
	}
	merged, err := merge(row.Resource)
	if err != nil {
		return WriteResult{}, err
	}
	if rh, err := fhir.ReadHead(merged); err != nil || rh.ResourceType != head.ResourceType {
		return WriteResult{}, fmt.Errorf("%w: the merge of %s/%s is not a %s", fhir.ErrInvalidResource, head.ResourceType, row.ID, head.ResourceType)
	}
	if olderEvent(merged, row.Resource) {
		return WriteResult{Resource: fromRow(*row), Action: ActionUnchanged, Stale: true}, nil
	}
	return tx.put(ctx, tenant, head.ResourceType, row.ID, merged, row, "PUT")
}

// ConditionalCreateWhere is Store.ConditionalCreateWhere inside the transaction.
func (tx *Tx) ConditionalCreateWhere(ctx context.Context, tenant string, body []byte, q Query) (WriteResult, error) {
	return tx.conditional(ctx, tenant, body, q, false, 0)
}

// ConditionalUpdateWhere is Store.ConditionalUpdateWhere inside the transaction.
func (tx *Tx) ConditionalUpdateWhere(ctx context.Context, tenant string, body []byte, q Query) (WriteResult, error) {
	return tx.conditional(ctx, tenant, body, q, true, 0)
}

// ConditionalUpdateWhereIfMatch is Store.ConditionalUpdateWhereIfMatch inside the transaction.
func (tx *Tx) ConditionalUpdateWhereIfMatch(ctx context.Context, tenant string, body []byte, q Query, ifMatch int64) (WriteResult, error) {
	if ifMatch <= 0 {
		return WriteResult{}, ErrVersionConflict
	}
	return tx.conditional(ctx, tenant, body, q, true, ifMatch)
}

// Update is Store.Update inside the transaction.
func (tx *Tx) Update(ctx context.Context, tenant, typ, id string, body []byte) (WriteResult, error) {
	return tx.update(ctx, tenant, typ, id, body, 0)
}

// UpdateIfMatch is Store.UpdateIfMatch inside the transaction.
func (tx *Tx) UpdateIfMatch(ctx context.Context, tenant, typ, id string, body []byte, ifMatch int64) (WriteResult, error) {
	if ifMatch <= 0 {
		return WriteResult{}, ErrVersionConflict
	}
	return tx.update(ctx, tenant, typ, id, body, ifMatch)
}

func (tx *Tx) update(ctx context.Context, tenant, typ, id string, body []byte, ifMatch int64) (WriteResult, error) {
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
	row, err := tx.lockAndGet(ctx, tenant, typ, id)
	switch {
	case err != nil:
		return WriteResult{}, err
	case ifMatch > 0 && (row == nil || row.Deleted || row.VersionID != ifMatch):
		return WriteResult{}, ErrVersionConflict
	case row == nil:
		return tx.put(ctx, tenant, typ, id, body, nil, "PUT")
	case !row.Deleted && olderEvent(body, row.Resource):
		return WriteResult{Resource: fromRow(*row), Action: ActionUnchanged, Stale: true}, nil
	}
	return tx.put(ctx, tenant, typ, id, body, row, "PUT")
}

// lockAndGet serialises writers of typ/id and reads its current row; nil when there is none.
func (tx *Tx) lockAndGet(ctx context.Context, tenant, typ, id string) (*db.FhirResource, error) {
	// "\x1f\x1f" keeps these keys apart from conditional writes' identifier keys.
	if err := tx.q.AdvisoryXactLock(ctx, tenant+"\x1f"+typ+"\x1f\x1f"+id); err != nil {
		return nil, fmt.Errorf("lock id: %w", err)
	}
	row, err := tx.q.FhirResourceGet(ctx, db.FhirResourceGetParams{TenantID: tenant, ResourceType: typ, ID: id})
	switch {
	case errors.Is(err, db.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read %s/%s: %w", typ, id, err)
	}
	return &row, nil
}

// Delete is Store.Delete inside the transaction.
func (tx *Tx) Delete(ctx context.Context, tenant, typ, id string) (DeleteResult, error) {
	row, err := tx.lockAndGet(ctx, tenant, typ, id)
	switch {
	case err != nil:
		return DeleteResult{}, err
	case row == nil:
		return DeleteResult{}, nil
	case row.Deleted:
		return DeleteResult{ID: id, VersionID: row.VersionID}, nil
	}
	version := row.VersionID + 1
	now := tx.s.now().Truncate(time.Microsecond)
	if err := tx.q.FhirResourceUpsert(ctx, db.FhirResourceUpsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Deleted: true,
		Resource: row.Resource, SortDate: minDate,
	}); err != nil {
		return DeleteResult{}, fmt.Errorf("delete %s/%s: %w", typ, id, err)
	}
	if err := tx.q.FhirResourceHistoryInsert(ctx, db.FhirResourceHistoryInsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Deleted: true, Method: "DELETE",
	}); err != nil {
		return DeleteResult{}, fmt.Errorf("insert history of %s/%s: %w", typ, id, err)
	}
	if err := tx.writeIndex(ctx, tenant, typ, id, searchIndex{}); err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{Deleted: true, ID: id, VersionID: version}, nil
}

// DeleteWhere is Store.DeleteWhere inside the transaction.
func (tx *Tx) DeleteWhere(ctx context.Context, tenant, typ string, q Query) (DeleteResult, error) {
	matches, err := tx.matches(ctx, tenant, typ, q)
	switch {
	case err != nil:
		return DeleteResult{}, err
	case len(matches) > 1:
		return DeleteResult{}, ErrMultipleMatches
	case len(matches) == 0:
		return DeleteResult{}, nil
	}
	return tx.Delete(ctx, tenant, typ, matches[0].ID)
}

// ErrNoCriteria means a conditional operation came without search criteria (400): it would
// otherwise match every resource of the type.
var ErrNoCriteria = fmt.Errorf("%w: a conditional operation needs search criteria", ErrInvalidSearch)

// matches locks the condition q and returns up to two of its current matches.
func (tx *Tx) matches(ctx context.Context, tenant, typ string, q Query) ([]Resource, error) {
	if len(q.params()) == 0 {
		return nil, ErrNoCriteria
	}
	// \x1f (unit separator): text values cannot hold NUL, and no tenant or type holds \x1f.
	// An identifier condition keeps the key it has always had (system|value), so writers
	// through the HTTP API and through activities serialise on the same lock.
	key := tenant + "\x1f" + typ + "\x1f"
	if len(q.Params) == 0 && q.ID == "" && q.Identifier != nil && !q.AnySystem {
		key += q.Identifier.Token()
	} else {
		key += "?" + q.canonical()
	}
	if err := tx.q.AdvisoryXactLock(ctx, key); err != nil {
		return nil, fmt.Errorf("lock condition: %w", err)
	}
	return tx.find(ctx, tenant, typ, q)
}

// find returns up to two current matches of a condition. An identifier alone — every
// conditional write of the inbound pipeline — takes a fixed query on the identifier tokens:
// the general search orders by _lastUpdated, and on a young table without statistics the
// planner walks that order and filters, which grows with the table.
func (tx *Tx) find(ctx context.Context, tenant, typ string, q Query) ([]Resource, error) {
	if len(q.Params) == 0 && q.ID == "" && q.Identifier != nil && q.Identifier.Value != "" {
		rows, err := tx.q.FhirResourceByIdentifier(ctx, db.FhirResourceByIdentifierParams{
			TenantID: tenant, ResourceType: typ, Value: q.Identifier.Value,
			AnySystem: q.AnySystem, System: q.Identifier.System,
		})
		if err != nil {
			return nil, fmt.Errorf("find %s by identifier: %w", typ, err)
		}
		out := make([]Resource, len(rows))
		for i, r := range rows {
			out[i] = fromRow(r)
		}
		return out, nil
	}
	res, err := tx.Search(ctx, tenant, typ, Query{ID: q.ID, Identifier: q.Identifier, AnySystem: q.AnySystem, Params: q.Params, Count: 2, Total: TotalNone})
	if err != nil {
		return nil, err
	}
	return res.Resources, nil
}

// conditional is a conditional create (update false) or update; ifMatch > 0, for an update,
// is the version the match must be at.
func (tx *Tx) conditional(ctx context.Context, tenant string, body []byte, q Query, update bool, ifMatch int64) (WriteResult, error) {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return WriteResult{}, err
	}
	if !update && len(q.params()) > 0 {
		// A conditional create whose match exists already is a no-op, so it needs no lock:
		// the shared Practitioners, Organizations and Locations of every message of a feed
		// would otherwise serialise all of that feed's writers on their locks.
		found, err := tx.find(ctx, tenant, head.ResourceType, q)
		if err != nil {
			return WriteResult{}, err
		}
		if len(found) == 1 {
			return WriteResult{Resource: found[0], Action: ActionUnchanged}, nil
		}
	}
	matches, err := tx.matches(ctx, tenant, head.ResourceType, q)
	if err != nil {
		return WriteResult{}, err
	}
	switch {
	case len(matches) > 1:
		return WriteResult{}, ErrMultipleMatches
	case len(matches) == 1 && !update:
		return WriteResult{Resource: matches[0], Action: ActionUnchanged}, nil
	case ifMatch > 0 && len(matches) == 0:
		return WriteResult{}, ErrVersionConflict // no current version to be at ifMatch
	case ifMatch > 0:
		row, err := tx.lockAndGet(ctx, tenant, head.ResourceType, matches[0].ID)
		switch {
		case err != nil:
			return WriteResult{}, err
		case row == nil || row.Deleted || row.VersionID != ifMatch:
			return WriteResult{}, ErrVersionConflict
		case olderEvent(body, row.Resource):
			return WriteResult{Resource: fromRow(*row), Action: ActionUnchanged, Stale: true}, nil
		}
		return tx.put(ctx, tenant, head.ResourceType, matches[0].ID, body, row, "PUT")
	case len(matches) == 1 && olderEvent(body, matches[0].Body):
		return WriteResult{Resource: matches[0], Action: ActionUnchanged, Stale: true}, nil
	case len(matches) == 1:
		row, err := tx.lockAndGet(ctx, tenant, head.ResourceType, matches[0].ID)
		if err != nil {
			return WriteResult{}, err
		}
		return tx.put(ctx, tenant, head.ResourceType, matches[0].ID, body, row, "PUT")
	}
	return tx.put(ctx, tenant, head.ResourceType, uuid.NewString(), body, nil, "POST")
}

// put writes a new version of (typ, id) and its search index; prev is the current row, nil
// when there is none, and method the request that made the version, as history records it.
// An update whose content equals the current version's is a no-op, so replays do not grow
// history.
func (tx *Tx) put(ctx context.Context, tenant, typ, id string, body []byte, prev *db.FhirResource, method string) (WriteResult, error) {
	version := int64(1)
	action := ActionCreated
	if prev != nil {
		if !prev.Deleted && fhir.SameContent(prev.Resource, body) {
			return WriteResult{Resource: fromRow(*prev), Action: ActionUnchanged}, nil
		}
		version = prev.VersionID + 1
		action = ActionUpdated
		if prev.Deleted {
			action = ActionCreated // FHIR: an update of a deleted resource creates it anew
		}
	}
	now := tx.s.now().Truncate(time.Microsecond)
	stamped, err := stamp(body, id, version, now)
	if err != nil {
		return WriteResult{}, err
	}
	// What jsonb cannot hold (not UTF-8, a lone surrogate, NUL) is the resource's fault, told
	// as such before the database refuses it (db.ErrInvalidData).
	if err := jsontext.Check(stamped); err != nil {
		return WriteResult{}, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
	}
	idx, err := extractIndex(typ, stamped)
	if err != nil {
		return WriteResult{}, err
	}
	if err := tx.q.FhirResourceUpsert(ctx, db.FhirResourceUpsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Resource: stamped,
		SortDate: idx.sortDate,
	}); err != nil {
		return WriteResult{}, fmt.Errorf("upsert %s/%s: %w", typ, id, err)
	}
	if err := tx.q.FhirResourceHistoryInsert(ctx, db.FhirResourceHistoryInsertParams{
		TenantID: tenant, ResourceType: typ, ID: id, VersionID: version, LastUpdated: now, Method: method, Resource: stamped,
	}); err != nil {
		return WriteResult{}, fmt.Errorf("insert history of %s/%s: %w", typ, id, err)
	}
	if err := tx.writeIndex(ctx, tenant, typ, id, idx); err != nil {
		return WriteResult{}, err
	}
	return WriteResult{
		Resource: Resource{Type: typ, ID: id, VersionID: version, LastUpdated: now, Body: stamped},
		Action:   action,
	}, nil
}

// writeIndex replaces the search index rows of typ/id with idx (none: removes them).
func (tx *Tx) writeIndex(ctx context.Context, tenant, typ, id string, idx searchIndex) error {
	p := db.FhirSearchIndexReplaceParams{
		TenantID: tenant, ResourceType: typ, ID: id,
		TokenParams: []string{}, TokenSystems: []string{}, TokenCodes: []string{},
		RefParams: []string{}, RefTypes: []string{}, RefIDs: []string{},
		DateParams: []string{}, DateLos: []time.Time{}, DateHis: []time.Time{},
	}
	for _, t := range idx.tokens {
		p.TokenParams, p.TokenSystems, p.TokenCodes = append(p.TokenParams, t.param), append(p.TokenSystems, t.system), append(p.TokenCodes, t.code)
	}
	for _, r := range idx.refs {
		p.RefParams, p.RefTypes, p.RefIDs = append(p.RefParams, r.param), append(p.RefTypes, r.typ), append(p.RefIDs, r.id)
	}
	for _, d := range idx.dates {
		p.DateParams, p.DateLos, p.DateHis = append(p.DateParams, d.param), append(p.DateLos, d.lo), append(p.DateHis, d.hi)
	}
	if err := tx.q.FhirSearchIndexReplace(ctx, p); err != nil {
		return fmt.Errorf("index %s/%s: %w", typ, id, err)
	}
	return nil
}

// Reindex writes the search index of rows stored before it existed (search_indexed false),
// batch rows per transaction, and returns how many it indexed. Run it after migrating a
// database that already held resources; until then those rows are found by identifier
// (the migration indexed identifiers) but not by the other parameters.
func (s *Store) Reindex(ctx context.Context, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	total := 0
	for {
		n, err := inTx(ctx, s, func(tx *Tx) (int, error) {
			rows, err := tx.q.FhirResourceUnindexed(ctx, rowLimit(batch))
			if err != nil {
				return 0, fmt.Errorf("list unindexed resources: %w", err)
			}
			for _, r := range rows {
				idx := searchIndex{sortDate: minDate}
				if !r.Deleted {
					if idx, err = extractIndex(r.ResourceType, r.Resource); err != nil {
						idx = searchIndex{sortDate: minDate} // unreadable: stays findable by id only
					}
				}
				if err := tx.writeIndex(ctx, r.TenantID, r.ResourceType, r.ID, idx); err != nil {
					return 0, err
				}
				if err := tx.q.FhirResourceMarkIndexed(ctx, db.FhirResourceMarkIndexedParams{
					TenantID: r.TenantID, ResourceType: r.ResourceType, ID: r.ID, SortDate: idx.sortDate,
				}); err != nil {
					return 0, fmt.Errorf("mark %s/%s indexed: %w", r.ResourceType, r.ID, err)
				}
			}
			return len(rows), nil
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
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

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(errors.Join(errors.New("marshal of a plain value failed"), err)) // strings and maps of RawMessage always marshal
	}
	return b
}

// olderEvent reports whether incoming describes an event older than the stored resource's.
func olderEvent(incoming, stored []byte) bool {
	in, okIn := fhir.SourceEventTime(incoming)
	st, okSt := fhir.SourceEventTime(stored)
	return okIn && okSt && in.Before(st)
}

func fromRow(r db.FhirResource) Resource {
	return Resource{Type: r.ResourceType, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Body: r.Resource}
}

// ConditionalPatch applies a FHIRPath Patch (fhir.ApplyPatch) to the resource of typ that
// carries ident (FHIR conditional patch: PATCH Type?identifier=system|value) and stores the
// result as a new version, or nothing when the patch changes nothing. None carrying ident is
// ErrNotFound (a patch creates nothing); several are ErrMultipleMatches. Writers of one
// identifier are serialised, so a patch never loses a concurrent update.
// ConditionalPatch applies a FHIRPath Patch (fhir.ApplyPatch) to the resource of typ that
// carries ident (FHIR conditional patch: PATCH Type?identifier=system|value) and stores the
// result as a new version. None carrying ident is ErrNotFound (a patch creates nothing);
// several are ErrMultipleMatches. The resource is locked between the read and the write, so a
// patch never loses a concurrent update.
func (s *Store) ConditionalPatch(ctx context.Context, tenant, typ string, ident fhir.Identifier, patch []byte) (WriteResult, error) {
	return inTx(ctx, s, func(tx *Tx) (WriteResult, error) { return tx.ConditionalPatch(ctx, tenant, typ, ident, patch) })
}

// ConditionalPatch is Store.ConditionalPatch inside the transaction.
func (tx *Tx) ConditionalPatch(ctx context.Context, tenant, typ string, ident fhir.Identifier, patch []byte) (WriteResult, error) {
	if ident.Value == "" {
		return WriteResult{}, fmt.Errorf("%w: conditional patch needs an identifier value", fhir.ErrInvalidResource)
	}
	if !fhir.ValidType(typ) {
		return WriteResult{}, fmt.Errorf("%w: resource type %q", fhir.ErrInvalidResource, typ)
	}
	row, err := tx.lockedMatch(ctx, tenant, typ, ident)
	switch {
	case err != nil:
		return WriteResult{}, err
	case row == nil:
		return WriteResult{}, ErrNotFound
	}
	patched, err := fhir.ApplyPatch(row.Resource, patch)
	if err != nil {
		return WriteResult{}, err
	}
	// History records the version the patch made as an update: it stores the whole result,
	// and history's methods are POST, PUT and DELETE.
	return tx.put(ctx, tenant, typ, row.ID, patched, row, "PUT")
}

// lockedMatch returns the current version of the one resource of typ that carries ident,
// locked until the transaction ends; nil when none does (or it was deleted meanwhile).
// Several are ErrMultipleMatches.
func (tx *Tx) lockedMatch(ctx context.Context, tenant, typ string, ident fhir.Identifier) (*db.FhirResource, error) {
	matches, err := tx.matches(ctx, tenant, typ, Query{Identifier: &ident})
	switch {
	case err != nil:
		return nil, err
	case len(matches) > 1:
		return nil, ErrMultipleMatches
	case len(matches) == 0:
		return nil, nil
	}
	row, err := tx.lockAndGet(ctx, tenant, typ, matches[0].ID)
	if err != nil || row == nil || row.Deleted {
		return nil, err
	}
	return row, nil
}
