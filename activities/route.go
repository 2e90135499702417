package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/owner"
)

// RouteResult counts what the owners did with the mapped resources.
type RouteResult struct {
	Created   int
	Updated   int
	Unchanged int
	// Stale counts updates not applied because the owner holds state from a newer event.
	Stale int `json:",omitempty"`
	// Missing counts patches whose target the owner does not hold (a merge of a patient it
	// never received): a patch creates nothing.
	Missing int `json:",omitempty"`
}

// RouteBundle applies the attempt's mapped transaction Bundle entry by entry, each to the
// service that owns its resource type, rewriting urn:uuid references to the ids the owners
// assigned, and links every resource to the message. Entries are conditional writes keyed on
// business identifiers, or updates of a name-based id (MessageHeader, Provenance), so a retry
// or a replay converges on the same resources.
func (a *Activities) RouteBundle(ctx context.Context, ref MessageRef) (_ RouteResult, retErr error) {
	q := db.New(a.Pool)
	attempt, err := q.Hl7ProcessingAttemptGet(ctx, ref.AttemptID)
	if err != nil {
		return RouteResult{}, fmt.Errorf("load attempt: %w", err)
	}
	var bundle fhir.Bundle
	if err := json.Unmarshal(attempt.MappedBundle, &bundle); err != nil {
		return RouteResult{}, temporal.NewNonRetryableApplicationError("attempt has no mapped bundle", ErrTypeMapping, err)
	}
	table, err := q.RoutingTable(ctx, attempt.TenantID, a.DefaultOwner)
	if err != nil {
		return RouteResult{}, err
	}

	// Links are written once, also when an entry fails: what was written stays linked.
	links := &resourceLinks{p: db.Hl7ResourceLinkInsertManyParams{TenantID: attempt.TenantID, MessageID: ref.MessageID, AttemptID: &ref.AttemptID}}
	defer func() {
		if err := links.flush(ctx, q); err != nil && retErr == nil {
			retErr = err
		}
	}()
	var res RouteResult
	refs := map[string]string{}
	// written records, per "Type/id", whether this Bundle's conditional update of it applied
	// (true) or was stale: a merged list (fhir.MergeLists) lists what the newest message
	// about each entry says.
	written := map[string]bool{}
	for i, entry := range bundle.Entry {
		body, err := fhir.RewriteReferences(entry.Resource, refs)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d: %v", i, err), ErrTypeMapping, err)
		}
		head, err := fhir.ReadHead(body)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d: %v", i, err), ErrTypeMapping, err)
		}
		write, err := idempotentWrite(entry.Request, head)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d (%s): %v", i, head.ResourceType, err), ErrTypeMapping, err)
		}
		typ := head.ResourceType
		if write.patch != "" {
			typ = write.patch // the body is the patch (Parameters), not the resource
		}
		label, err := table.Owner(typ, "")
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRouting, err)
		}
		var older bool
		if write.update && write.id == "" && len(fhir.MergedLists(body)) > 0 {
			write.merge = func(stored []byte) ([]byte, error) {
				merged, o, err := fhir.MergeLists(stored, body, written)
				older = o
				return merged, err
			}
		}
		r, err := a.write(ctx, attempt.TenantID, label, typ, body, write)
		if errors.Is(err, owner.ErrTargetMissing) {
			res.Missing++
			continue
		}
		if err != nil {
			return res, err
		}
		stale := r.Stale
		if older && r.Action == owner.Unchanged {
			stale = true // its lists added nothing and its other elements are older
		}
		if stale {
			res.Stale++
		}
		if write.update && write.id == "" {
			written[head.ResourceType+"/"+r.ID] = !stale
		}
		if entry.FullURL != "" {
			refs[entry.FullURL] = typ + "/" + r.ID
		}
		switch r.Action {
		case owner.Created:
			res.Created++
		case owner.Updated:
			res.Updated++
		default:
			res.Unchanged++
		}
		links.add(typ, r.ID, string(r.Action), label)
	}
	return res, nil
}

// resourceLinks collects a Bundle's Hl7ResourceLinks for one insert: one commit per message
// instead of one per resource.
type resourceLinks struct {
	p db.Hl7ResourceLinkInsertManyParams
}

func (l *resourceLinks) add(typ, id, action, owner string) {
	l.p.ResourceTypes = append(l.p.ResourceTypes, typ)
	l.p.ResourceIDs = append(l.p.ResourceIDs, id)
	l.p.Actions = append(l.p.Actions, action)
	l.p.Owners = append(l.p.Owners, owner)
}

// flush writes the links collected so far.
func (l *resourceLinks) flush(ctx context.Context, q *db.Queries) error {
	if len(l.p.ResourceIDs) == 0 {
		return nil
	}
	if err := q.Hl7ResourceLinkInsertMany(ctx, l.p); err != nil {
		return fmt.Errorf("link %d resources: %w", len(l.p.ResourceIDs), err)
	}
	return nil
}

// entryWrite is a transaction entry's idempotent write: a conditional create (POST +
// ifNoneExist), update (PUT Type?identifier=…) or patch (PATCH Type?identifier=…, a
// FHIRPath Patch that adds nothing twice), all keyed on a business identifier; or, when id
// is set, an update of that id (PUT Type/id), for resources that have no business identifier
// and whose id the mapping derives from the message.
type entryWrite struct {
	update bool
	ident  fhir.Identifier
	id     string
	// merge, for a conditional update whose resource merges lists across messages
	// (fhir.ExtMergeList), makes the body to write from the owner's current version.
	merge owner.MergeFunc
	patch string // the patched resource's type; empty unless a patch
}

// write applies one entry to the service that owns typ (owner.Owner: the builtin store
// in-process or a FHIR server over HTTP, alike), mapping a permanent refusal to a
// non-retryable ErrTypeOwnerRefused; every other failure is retried.
func (a *Activities) write(ctx context.Context, tenant, label, typ string, body []byte, w entryWrite) (owner.WriteResult, error) {
	o := a.owner(tenant, label)
	var r owner.WriteResult
	var err error
	switch {
	case w.patch != "":
		// A patch is never stale: what it adds (a merge's link) holds whatever happened since.
		r, err = o.ConditionalPatch(ctx, typ, body, w.ident)
	case w.id != "":
		r, err = o.Update(ctx, typ, w.id, body)
	case w.merge != nil:
		r, err = o.ConditionalUpdateMerge(ctx, typ, body, w.ident, w.merge)
	case w.update:
		r, err = o.ConditionalUpdate(ctx, typ, body, w.ident)
	default:
		r, err = o.ConditionalCreate(ctx, typ, body, w.ident)
	}
	if errors.Is(err, owner.ErrRefused) {
		return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeOwnerRefused, err)
	}
	return r, err
}

// owner is tenant's owner labelled label, reached with the worker's credentials.
func (a *Activities) owner(tenant, label string) owner.Owner {
	r := &owner.Resolver{Store: a.Store, HTTP: a.HTTP, Token: a.OwnerToken}
	return r.Resolve(tenant, label)
}

// idempotentWrite reads how an entry is written: the business identifier from ifNoneExist
// ("identifier=sys|val") of a POST or from the conditional URL of a PUT or of a PATCH (whose
// body must be a FHIRPath Patch, a Parameters resource), or the id of a PUT Type/id, which
// must be the resource's own id when it has one. Every mapped entry must be
// idempotent: an unconditional create would duplicate on replay.
func idempotentWrite(req *fhir.EntryRequest, head fhir.Head) (entryWrite, error) {
	if req == nil {
		return entryWrite{}, errors.New("entry has no request")
	}
	resourceType := head.ResourceType
	var query string
	switch {
	case req.Method == "POST" && req.IfNoneExist != "":
		query = req.IfNoneExist
	case req.Method == "PATCH":
		path, q, ok := strings.Cut(req.URL, "?")
		if !ok || !fhir.ValidType(path) || resourceType != "Parameters" {
			return entryWrite{}, fmt.Errorf("PATCH %q of a %s is not a conditional FHIRPath Patch", req.URL, resourceType)
		}
		w, err := identifierCondition(q)
		w.patch = path
		return w, err
	case req.Method == "PUT":
		path, q, ok := strings.Cut(req.URL, "?")
		if !ok {
			typ, id, _ := strings.Cut(path, "/")
			if typ != resourceType || !fhir.ValidID(id) || (head.ID != "" && head.ID != id) {
				return entryWrite{}, fmt.Errorf("PUT %q is neither a conditional update nor an update of this %s", req.URL, resourceType)
			}
			return entryWrite{update: true, id: id}, nil
		}
		if path != resourceType {
			return entryWrite{}, fmt.Errorf("PUT %q is not a conditional update of %s", req.URL, resourceType)
		}
		query = q
	default:
		return entryWrite{}, fmt.Errorf("%s entry is neither a conditional create nor an update", req.Method)
	}
	w, err := identifierCondition(query)
	w.update = req.Method == "PUT"
	return w, err
}

// identifierCondition reads a condition "identifier=system|value", the only one the mapping
// writes.
func identifierCondition(query string) (entryWrite, error) {
	values, err := url.ParseQuery(query)
	if err != nil {
		return entryWrite{}, fmt.Errorf("condition %q: %w", query, err)
	}
	token := values.Get("identifier")
	if len(values) != 1 || token == "" || !strings.Contains(token, "|") {
		return entryWrite{}, fmt.Errorf("condition %q: want identifier=system|value", query)
	}
	ident, _ := fhir.ParseToken(token)
	return entryWrite{ident: ident}, nil
}
