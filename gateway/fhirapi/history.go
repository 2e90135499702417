package fhirapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
)

// typeHistory is GET Type/_history: the versions of the type's resources at its owner(s).
func (g *fhirGateway) typeHistory(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	q.Del("_format")
	return g.run(c, fhirCall{interaction: interHistoryType, method: http.MethodGet, typ: typ, query: q, header: searchHeaders(c.Request())})
}

// systemHistory is GET /_history: the versions of every resource of the tenant, at every
// owner of its routing table. It reads every type, so it needs read on every type (SMART:
// system/*.r): a token for some types only would see versions of others.
func (g *fhirGateway) systemHistory(c echo.Context) error {
	if !httpkit.Principal(c).Scopes.Allows("*", auth.Read) {
		return httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden,
			"token scopes do not grant 'r' on every type, which a system history needs (e.g. system/*.r); ask each type's history instead")

	}
	q := c.QueryParams()
	q.Del("_format")
	res, err := g.dispatch(c.Request().Context(), callerOf(c), fhirCall{interaction: interHistorySystem, method: http.MethodGet, query: q, header: searchHeaders(c.Request())})
	if err != nil {
		return err
	}
	return writeResult(c, res)
}

// tenantOwners are every owner of a routing table: each rule's and the fallback's, sorted.
func tenantOwners(t routing.Table) []string {
	var owners []string
	for _, r := range t.Rules {
		if !slices.Contains(owners, r.OwnerURL) {
			owners = append(owners, r.OwnerURL)
		}
	}
	if t.Default != "" && !slices.Contains(owners, t.Default) {
		owners = append(owners, t.Default)
	}
	slices.Sort(owners)
	return owners
}

// historyKeys order a merged history: newest version first.
var historyKeys = []sortKey{{name: "_lastUpdated", desc: true}}

// historyKey is a history entry's sort key: when its version was made (response.lastModified,
// else the resource's meta.lastUpdated; a deletion has no resource).
func historyKey(e fhir.BundleEntry) []sortValue {
	if e.Response != nil && e.Response.LastModified != "" {
		return []sortValue{toSortValue(e.Response.LastModified)}
	}
	return sortValues(e.Resource, historyKeys)
}

// historyEntryType is the resource type a history entry is a version of: its request URL's
// first segment, else its resource's type; "" if neither says.
func historyEntryType(e fhir.BundleEntry) string {
	if e.Request != nil {
		if typ, _, _ := strings.Cut(strings.TrimPrefix(e.Request.URL, "/"), "/"); routing.IsResourceType(typ) {
			return typ
		}
	}
	if head, err := fhir.ReadHead(e.Resource); err == nil {
		return head.ResourceType
	}
	return ""
}

// typeOrSystemHistory answers a type history (call.typ set) or a system history: the versions at the
// owners of the type, or at every owner of the tenant, newest first. Several owners' histories
// are merged by when each version was made and paged as a fan-out search is, under a signed
// cursor; one owner's is paged the same way, so that its links never reach the client.
func (g *fhirGateway) typeOrSystemHistory(ctx context.Context, cl caller, table routing.Table, call fhirCall) (*fhirResult, error) {
	q := call.query
	if len(q[cursorParam]) > 1 {
		return nil, badCursor()
	}
	path, what := "/_history", "the tenant's resources"
	var owners []string
	if call.typ != "" {
		var err error
		if owners, err = table.Owners(call.typ); err != nil {
			return nil, routeError(err, false)
		}
		path, what = "/"+call.typ+"/_history", call.typ
	} else if owners = tenantOwners(table); len(owners) == 0 {
		return nil, httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotSupported, "no service owns any resource type of this tenant")
	}
	count := defaultSearchCount
	if v, ok := q["_count"]; ok {
		n, err := strconv.Atoi(v[0])
		if len(v) > 1 || err != nil || n < 1 {
			return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "_count must be a positive integer, given once")
		}
		count = min(n, maxSearchCount)
	}
	// The cursor is bound to the history's path, so that it is never a search's cursor.
	var cur *pageCursor
	if tok := q.Get(cursorParam); tok != "" {
		c, err := g.openCursor(cl.p.Tenant, path, q, tok)
		if err != nil || c.Owners != ownersDigest(owners) || len(c.Pages) != len(owners) {
			return nil, badCursor()
		}
		cur = &c
	}
	recordType := call.typ
	if recordType == "" {
		recordType = "*"
	}
	for _, o := range owners {
		g.opts.Routed.Record(cl.p.Tenant, recordType, o, call.interaction)
	}
	oq := ownerSearchQuery(q)
	oq.Set("_count", strconv.Itoa(count))
	p := ownerPager{path: path, query: oq, header: call.header, keys: historyKeys, keyOf: historyKey, searched: call.typ}
	if call.typ == "" {
		// An owner may hold versions of types the table now routes elsewhere (or nowhere):
		// the tenant's history is what its routing table says, as each type's history is.
		p.keep = func(owner string, e fhir.BundleEntry) bool {
			typ := historyEntryType(e)
			if typ == "" {
				return true
			}
			owners, err := table.Owners(typ)
			return err == nil && slices.Contains(owners, owner)
		}
	}
	fp, refused, err := g.fanoutPage(ctx, cl, table, owners, what, p, count, cur)
	if err != nil || refused != nil {
		return refused, err
	}
	link := func(cursor string) string {
		v := ownerSearchQuery(q)
		if cursor != "" {
			v.Set(cursorParam, cursor)
		}
		if len(v) == 0 {
			return g.base + path
		}
		return g.base + path + "?" + v.Encode()
	}
	out := &fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: "history",
		Meta:  &fhir.Meta{LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)},
		Link:  []fhir.BundleLink{{Relation: "self", URL: link(q.Get(cursorParam))}},
		Entry: fp.merged,
	}
	switch {
	case p.keep == nil && fp.haveTotal:
		out.Total = &fp.total
	case cur == nil && !fp.hasNext && len(fp.warnings) == 0:
		n := len(fp.merged) // owners' totals count versions p.keep drops; this page is all there is
		out.Total = &n
	}
	if fp.hasNext {
		out.Link = append(out.Link, fhir.BundleLink{Relation: "next", URL: link(g.signCursor(cl.p.Tenant, path, q, fp.next))})
	}
	header := g.partialResult(cl, out, fp.warnings, what, "history")
	withheldWarning(header, fp.withheld)
	return bundleResult(out, header)
}
