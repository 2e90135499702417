package fhirapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
)

// tableCache keeps each tenant's routing table for ttl, so that a request does not pay a
// database round trip for rules that change rarely. It holds no invariant: the database does;
// a rule change reaches every replica within ttl.
type tableCache struct {
	pool         *db.Pool
	defaultOwner string
	ttl          time.Duration

	mu sync.Mutex
	m  map[string]cachedTable
}

type cachedTable struct {
	t  routing.Table
	at time.Time
}

// maxCachedTenants bounds the cache; past it, the cache starts over.
const maxCachedTenants = 10000

func (tc *tableCache) get(ctx context.Context, tenant string) (routing.Table, error) {
	if tc.ttl > 0 {
		tc.mu.Lock()
		e, ok := tc.m[tenant]
		tc.mu.Unlock()
		if ok && time.Since(e.at) < tc.ttl {
			return e.t, nil
		}
	}
	t, err := db.New(tc.pool).RoutingTable(ctx, tenant, tc.defaultOwner)
	if err != nil {
		return routing.Table{}, err
	}
	if tc.ttl > 0 {
		tc.mu.Lock()
		if tc.m == nil || len(tc.m) >= maxCachedTenants {
			tc.m = make(map[string]cachedTable)
		}
		tc.m[tenant] = cachedTable{t: t, at: time.Now()}
		tc.mu.Unlock()
	}
	return t, nil
}

// routeError turns a refused route into the OperationOutcome its request deserves: an
// ambiguous or unowned write is unprocessable (422); a read or search nobody owns is not
// found (404), an ambiguous one a bad request (400). The routing package words the message
// with types and categories only, never owner URLs.
func routeError(err error, write bool) error {
	var re *routing.RouteError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case write:
		return httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueType("business-rule"), re.Error())
	case errors.Is(err, routing.ErrAmbiguous):
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, re.Error())
	}
	return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotSupported, re.Error())
}

// resourceCategories returns the category codes a resource carries (category as a list of
// CodeableConcepts, as on Observation, or as one, as on Procedure): the key that routes a
// write of a type split by category.
func resourceCategories(body []byte) []string {
	var r struct {
		Category json.RawMessage `json:"category"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Category) == 0 {
		return nil
	}
	type concept struct {
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
	}
	var list []concept
	if json.Unmarshal(r.Category, &list) != nil {
		var one concept
		if json.Unmarshal(r.Category, &one) != nil {
			return nil
		}
		list = []concept{one}
	}
	var out []string
	for _, c := range list {
		for _, cd := range c.Coding {
			if cd.Code != "" && !slices.Contains(out, cd.Code) {
				out = append(out, cd.Code)
			}
		}
	}
	return out
}

// searchCategories returns the categories a search names (values of category without a
// modifier, comma-separated values OR-ed), or nil when it names none, which for a type split
// by category means every owner.
func searchCategories(q map[string][]string) []string {
	var out []string
	for _, v := range q["category"] {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// ownerLabel names an owner in messages to clients without its URL: by what it owns.
func ownerLabel(t routing.Table, typ, owner string) string {
	if owner == routing.Builtin {
		return "the built-in store"
	}
	var cats []string
	for _, r := range t.Rules {
		if r.ResourceType == typ && r.OwnerURL == owner && r.Category != "" {
			cats = append(cats, r.Category)
		}
	}
	if len(cats) > 0 {
		slices.Sort(cats)
		return "the owner of " + typ + " category " + strings.Join(cats, ", ")
	}
	return "the owner of " + typ
}

// dispatch routes one interaction to its owner(s) and returns the answer in gateway terms.
func (g *fhirGateway) dispatch(ctx context.Context, cl caller, call fhirCall) (*fhirResult, error) {
	table, err := g.tables.get(ctx, cl.p.Tenant)
	if err != nil {
		return nil, err
	}
	switch call.interaction {
	case interSearch:
		return g.searchType(ctx, cl, table, call)
	case interHistoryType, interHistorySystem:
		return g.typeOrSystemHistory(ctx, cl, table, call)
	case interCreate, interUpdate:
		return g.write(ctx, cl, table, call)
	case interDelete:
		if call.id == "" {
			owner, err := conditionalDeleteOwner(table, call)
			if err != nil {
				return nil, err
			}
			return g.forward(ctx, cl, owner, call)
		}
		return g.byID(ctx, cl, table, call)
	default:
		return g.byID(ctx, cl, table, call)
	}
}

// write sends a create or (conditional) update to the owner of the resource: by its type and,
// for a type split by category, by the categories in its body.
func (g *fhirGateway) write(ctx context.Context, cl caller, table routing.Table, call fhirCall) (*fhirResult, error) {
	head, err := fhir.ReadHead(call.body)
	if err != nil {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "the body is not a FHIR resource in JSON (it needs a resourceType and a valid id, if any)")
	}
	if head.ResourceType != call.typ {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, fmt.Sprintf("body is a %s, the URL says %s", head.ResourceType, call.typ))
	}
	if call.id != "" && head.ID != "" && head.ID != call.id {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, fmt.Sprintf("body has id %q, the URL says %q", head.ID, call.id))
	}
	var cats []string
	if table.IsSplit(call.typ) {
		cats = resourceCategories(call.body)
	}
	owner, err := table.OwnerByCategories(call.typ, cats)
	if err != nil {
		return nil, routeError(err, true)
	}
	res, err := g.forward(ctx, cl, owner, call)
	if err != nil {
		return nil, err
	}
	if res.status < 300 && res.header.Get("Location") == "" && len(res.body) > 0 {
		// A conditional create that found its match may come back without a Location;
		// clients find the resource by it all the same.
		var r struct {
			ID   string `json:"id"`
			Meta struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		if json.Unmarshal(res.body, &r) == nil && fhir.ValidID(r.ID) && fhir.ValidID(r.Meta.VersionID) {
			res.header.Set("Location", g.base+"/"+call.typ+"/"+r.ID+"/_history/"+r.Meta.VersionID)
		}
	}
	applyPrefer(call, res)
	return res, nil
}

// conditionalDeleteOwner is the one owner a conditional delete goes to: the type's, or, for a
// type split by category, the owner of the categories its criteria name. Criteria naming no
// category (or categories of several owners) are refused, not guessed at: the match could
// live at any owner, and "delete the one match" cannot be checked atomically across owners.
func conditionalDeleteOwner(table routing.Table, call fhirCall) (string, error) {
	owners, err := table.SearchOwners(call.typ, searchCategories(call.query))
	if err != nil {
		return "", routeError(err, false)
	}
	if len(owners) > 1 {
		var re *routing.RouteError
		_, err := table.OwnerByCategories(call.typ, searchCategories(call.query))
		msg := call.typ + " is owned by category"
		if errors.As(err, &re) {
			msg = re.Error()
		}
		return "", httpkit.NewOutcome(http.StatusPreconditionFailed, fhir.IssueType("business-rule"),
			"conditional delete is ambiguous: "+msg+". Its match could be at any of "+strconv.Itoa(len(owners))+
				" owning services; add a category parameter naming one owner's category")

	}
	return owners[0], nil
}

// applyPrefer makes the answer to a write what Prefer asked for, whatever the owner did:
// return=minimal has no body, return=OperationOutcome has an outcome as its body.
func applyPrefer(call fhirCall, res *fhirResult) {
	if res.status >= 300 {
		return
	}
	switch fhir.ParsePrefer(call.header.Values("Prefer")).Return {
	case "minimal":
		res.body = nil
	case "OperationOutcome":
		if isOutcome(res.body) {
			return
		}
		msg := call.typ + " " + call.interaction + " done"
		if loc := res.header.Get("Location"); loc != "" {
			msg += ": " + loc
		}
		res.body = outcomeBody(fhir.SeverityInformation, fhir.IssueInformational, msg)
	}
}

func isOutcome(body []byte) bool {
	var h struct {
		ResourceType string `json:"resourceType"`
	}
	return json.Unmarshal(body, &h) == nil && h.ResourceType == "OperationOutcome"
}

// byID serves the interactions on one resource by id: read, vread, history and delete. A type
// owned whole goes to its owner. For a type split by category the gateway does not know the
// resource's category, so it asks every owner: the first owner that has the resource wins
// (ids are assigned by each owner, so one id lives at one owner). A delete asks with a read
// first and deletes where the resource was found.
func (g *fhirGateway) byID(ctx context.Context, cl caller, table routing.Table, call fhirCall) (*fhirResult, error) {
	owners, err := table.Owners(call.typ)
	if err != nil {
		return nil, routeError(err, false)
	}
	if len(owners) == 1 {
		res, err := g.forward(ctx, cl, owners[0], call)
		if err != nil {
			return nil, err
		}
		return g.uniformMiss(call, res), nil
	}
	probe := call
	if call.interaction == interDelete {
		probe = fhirCall{interaction: interRead, method: http.MethodGet, typ: call.typ, id: call.id, header: http.Header{}}
	}
	owner, res, err := g.probe(ctx, cl, owners, probe)
	if err != nil {
		return nil, err
	}
	if call.interaction == interDelete && owner != "" {
		res, err = g.forward(ctx, cl, owner, call)
		if err != nil {
			return nil, err
		}
	}
	return g.uniformMiss(call, res), nil
}

// uniformMiss answers a miss the same way whoever owns the type and whatever the owner said,
// so that no answer tells one tenant whether an id exists for another.
func (g *fhirGateway) uniformMiss(call fhirCall, res *fhirResult) *fhirResult {
	switch res.status {
	case http.StatusNotFound:
		what := call.typ + "/" + call.id
		if call.vid != "" {
			what += "/_history/" + call.vid
		}
		return &fhirResult{status: http.StatusNotFound, header: http.Header{},
			body: outcomeBody(fhir.SeverityError, fhir.IssueNotFound, what+" not found")}
	case http.StatusGone:
		if call.interaction == interRead {
			h := http.Header{}
			if et := res.header.Get("ETag"); et != "" {
				h.Set("ETag", et)
			}
			return &fhirResult{status: http.StatusGone, header: h,
				body: outcomeBody(fhir.SeverityError, fhir.IssueDeleted, call.typ+"/"+call.id+" was deleted")}
		}
	}
	return res
}
