package fhirapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/google/uuid"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
)

// Page sizes of searches: the default when _count is absent and the cap, as in the store.
const (
	defaultSearchCount = 50
	maxSearchCount     = 1000
)

// searchType answers a type-level search. A search the routing table sends to one owner is
// relayed; a search on a type split by category that names no category (or categories of
// several owners) asks every owner concurrently and merges their answers into one searchset,
// paged across owners with a signed cursor.
func (g *fhirGateway) searchType(ctx context.Context, cl caller, table routing.Table, call fhirCall) (*fhirResult, error) {
	q := call.query
	if len(q[cursorParam]) > 1 {
		return nil, badCursor()
	}
	owners, err := table.SearchOwners(call.typ, searchCategories(q))
	if err != nil {
		return nil, routeError(err, false)
	}
	count := -1
	if v, ok := q["_count"]; ok {
		n, err := strconv.Atoi(v[0])
		if len(v) > 1 || err != nil || n < 0 {
			return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "_count must be a non-negative integer, given once")
		}
		count = min(n, maxSearchCount)
	}
	// _summary=count: each owner counts (and is sent _count=0 as well, which every owner
	// understands), the totals are summed, no entries and no next link.
	if v, ok := q["_summary"]; ok {
		if len(v) != 1 {
			return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "_summary must be given once")
		}
		if v[0] == "count" {
			count = 0
		}
	}
	var cur *pageCursor
	if tok := q.Get(cursorParam); tok != "" {
		c, err := g.openCursor(cl.p.Tenant, call.typ, q, tok)
		if err != nil || c.Owners != ownersDigest(owners) || len(c.Pages) != len(owners) {
			return nil, badCursor()
		}
		cur = &c
	}
	for _, o := range owners {
		g.opts.Routed.Record(cl.p.Tenant, call.typ, o, interSearch)
	}
	if len(owners) == 1 {
		return g.searchOne(ctx, cl, owners[0], call, cur)
	}
	if count < 0 {
		count = defaultSearchCount
	}
	return g.searchFanout(ctx, cl, table, owners, call, count, cur)
}

// ownerSearchQuery is the query an owner is sent: the client's, without the gateway's own
// parameters.
func ownerSearchQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		if k != cursorParam && k != "_format" {
			out[k] = v
		}
	}
	return out
}

// pageRequest is the request for an owner's page: the first (path, e.g. /Observation, with
// q) or a page it linked to, with the search's forwarded headers h (searchHeaders).
func pageRequest(path string, q url.Values, page string, h http.Header) ownerRequest {
	r := ownerRequest{method: http.MethodGet, header: http.Header{}}
	for k, vs := range h {
		r.header[k] = vs
	}
	if page == "" {
		r.path, r.query = path, q.Encode()
		return r
	}
	r.path, r.query, _ = strings.Cut(page, "?")
	return r
}

// fetchBundle asks owner for a searchset page. A refusal (4xx) is returned as a translated
// result; a failure as an error.
func (g *fhirGateway) fetchBundle(ctx context.Context, cl caller, owner, typ string, r ownerRequest) (*fhir.Bundle, *fhirResult, error) {
	resp, err := g.send(ctx, cl, owner, r)
	if err != nil {
		return nil, nil, err
	}
	if resp.status != http.StatusOK {
		res := g.translate(cl, owner, typ, resp)
		if res.status >= 500 {
			return nil, res, errOwnerFailed
		}
		return nil, res, nil
	}
	var b fhir.Bundle
	// segmentio's decoder: the same result as encoding/json, at a fraction of the CPU, on the
	// largest thing a fan-out reads (every owner's page, entries and all).
	if err := fastjson.Unmarshal(resp.body, &b); err != nil || b.ResourceType != "Bundle" {
		g.log.Warn("fhir owner answered a search with something other than a Bundle", "owner", owner, "request_id", cl.requestID)
		return nil, nil, errOwnerFailed
	}
	return &b, nil, nil
}

// errOwnerFailed is an owner answering a search with a server error or garbage.
var errOwnerFailed = errors.New("owner failed")

func linkOf(b *fhir.Bundle, rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// searchURL is the gateway URL of a search of typ with q (and cursor, if any).
func (g *fhirGateway) searchURL(typ string, q url.Values, cursor string) string {
	v := ownerSearchQuery(q)
	if cursor != "" {
		v.Set(cursorParam, cursor)
	}
	if len(v) == 0 {
		return g.base + "/" + typ
	}
	return g.base + "/" + typ + "?" + v.Encode()
}

// publicEntry rewrites an owner's entry for the client.
func (g *fhirGateway) publicEntry(owner string, e fhir.BundleEntry) fhir.BundleEntry {
	out := fhir.BundleEntry{Resource: g.rewriteBody(owner, e.Resource), Search: e.Search, Request: e.Request}
	if e.FullURL != "" {
		out.FullURL = g.publicURL(owner, e.FullURL)
	}
	if e.Response != nil { // a history entry's
		r := *e.Response
		if r.Location != "" {
			r.Location = g.publicURL(owner, r.Location)
		}
		r.Outcome = g.rewriteBody(owner, r.Outcome)
		out.Response = &r
	}
	return out
}

func bundleResult(b *fhir.Bundle, header http.Header) (*fhirResult, error) {
	body, err := b.AppendJSON(nil)
	if err != nil {
		return nil, err
	}
	if header == nil {
		header = http.Header{}
	}
	return &fhirResult{status: http.StatusOK, header: header, body: body}, nil
}

// searchOne relays a search to its one owner, keeping the owner's order and page size; only
// the paging link is replaced by a gateway cursor.
func (g *fhirGateway) searchOne(ctx context.Context, cl caller, owner string, call fhirCall, cur *pageCursor) (*fhirResult, error) {
	page := ""
	if cur != nil {
		if cur.Pages[0].Done {
			return nil, badCursor()
		}
		page = cur.Pages[0].Page
	}
	resp, err := g.send(ctx, cl, owner, pageRequest("/"+call.typ, ownerSearchQuery(call.query), page, call.header))
	if err != nil {
		return nil, ownerFailure(mapFailure(err), call.typ)
	}
	if resp.status != http.StatusOK {
		return g.translate(cl, owner, call.typ, resp), nil
	}
	// The built-in store has filtered what the caller may not read; an external owner's answer
	// is filtered here, unless the caller reads every type.
	filter := !resp.trusted && !readsEverything(cl.p.Scopes)
	if !filter {
		if res, ok := g.relaySearchset(cl, owner, call, resp.body); ok {
			return res, nil
		}
	}
	var b fhir.Bundle
	// segmentio's decoder: the same result as encoding/json, at a fraction of the CPU, on the
	// largest thing a fan-out reads (every owner's page, entries and all).
	if err := fastjson.Unmarshal(resp.body, &b); err != nil || b.ResourceType != "Bundle" {
		g.log.Warn("fhir owner answered a search with something other than a Bundle", "owner", owner, "request_id", cl.requestID)
		return nil, ownerFailure(errOwnerUnreachable, call.typ)
	}
	call = linkCall(call, b.Link)
	out := &fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: fhir.BundleSearchset, Total: b.Total,
		Meta: &fhir.Meta{LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)},
		Link: []fhir.BundleLink{{Relation: "self", URL: g.searchURL(call.typ, call.query, call.query.Get(cursorParam))}},
	}
	entries := b.Entry
	if filter {
		withheld := map[string]int{}
		entries = readableEntries(cl.p.Scopes, call.typ, entries, withheld)
		if we, ok := withheldEntry(withheld); ok {
			entries = append(entries, we)
		}
	}
	out.Entry = make([]fhir.BundleEntry, 0, len(entries))
	for _, e := range entries {
		out.Entry = append(out.Entry, g.publicEntry(owner, e))
	}
	if next := linkOf(&b, "next"); next != "" {
		if u := g.nextCursorURL(cl, owner, call, next); u != "" {
			out.Link = append(out.Link, fhir.BundleLink{Relation: "next", URL: u})
		}
	}
	return bundleResult(out, nil)
}

// nextCursorURL is the gateway's next link for an owner's next link, "" if it cannot be
// followed.
func (g *fhirGateway) nextCursorURL(cl caller, owner string, call fhirCall, next string) string {
	rel, ok := ownerRelative(owner, "/"+call.typ, next)
	if !ok {
		return ""
	}
	c := pageCursor{Owners: ownersDigest([]string{owner}), Pages: []ownerPage{{Page: rel}}}
	return g.searchURL(call.typ, call.query, g.signCursor(cl.p.Tenant, call.typ, call.query, c))
}

// linkCall is call as its links show it: with Prefer: handling=lenient, without the
// parameters the owner ignored (its self link leaves them out), so that the self link shows
// the parameters used and the next link (with the cursor bound to them) needs no leniency.
func linkCall(call fhirCall, links []fhir.BundleLink) fhirCall {
	if !lenient(call) {
		return call
	}
	for _, l := range links {
		if l.Relation == "self" {
			call.query = usedQuery(call.query, []string{l.URL})
			break
		}
	}
	return call
}

// usedQuery is q without the parameter values an owner ignored: a value stays when the self
// link of every owner asked carries it under its name. The gateway's own parameters (the
// cursor, and _count and _sort, which a fan-out sets on each owner's request) stay. Without
// a readable self link, q is what was used.
func usedQuery(q url.Values, selfLinks []string) url.Values {
	var used []url.Values
	for _, l := range selfLinks {
		if u, err := url.Parse(l); err == nil {
			used = append(used, u.Query())
		}
	}
	if len(used) == 0 {
		return q
	}
	out := url.Values{}
	for k, vs := range q {
		switch k {
		case cursorParam, "_count", "_sort", "_format":
			out[k] = vs
			continue
		}
		for _, v := range vs {
			kept := true
			for _, u := range used {
				if !slices.Contains(u[k], v) {
					kept = false
					break
				}
			}
			if kept {
				out[k] = append(out[k], v)
			}
		}
	}
	return out
}

// relaySearchset relays one owner's searchset without decoding its entries: the owner's base
// is replaced throughout, and its self and next links, read from the Bundle's envelope before
// "entry", are swapped for the gateway's. ok is false when the body is not laid out so (then
// the caller decodes it whole).
func (g *fhirGateway) relaySearchset(cl caller, owner string, call fhirCall, body []byte) (*fhirResult, bool) {
	resourceType, typ, links, ok := bundleEnvelope(body)
	if !ok {
		return nil, false
	}
	if resourceType != "Bundle" || typ != fhir.BundleSearchset {
		return nil, false
	}
	call = linkCall(call, links)
	out := body
	for _, l := range links {
		var repl string
		switch l.Relation {
		case "self":
			repl = g.searchURL(call.typ, call.query, call.query.Get(cursorParam))
		case "next":
			repl = g.nextCursorURL(cl, owner, call, l.URL)
		default:
			continue // previous/first/last are dropped from the decoded path; rare here
		}
		from, _ := json.Marshal(l.URL)
		to, _ := json.Marshal(repl)
		if repl == "" || !bytes.Contains(out, from) {
			return nil, false
		}
		out = bytes.Replace(out, from, to, 1)
	}
	for _, l := range links {
		if l.Relation != "self" && l.Relation != "next" {
			return nil, false
		}
	}
	return &fhirResult{status: http.StatusOK, header: http.Header{}, body: g.rewriteBody(owner, out)}, true
}

// bundleEnvelope reads a Bundle's members that come before "entry" (resourceType, type,
// link), without decoding the entries; ok is false when the body is not a JSON object, or
// when "entry" comes before any link (the caller then decodes the Bundle whole).
func bundleEnvelope(body []byte) (resourceType, typ string, links []fhir.BundleLink, ok bool) {
	rest := bytes.TrimLeft(body, " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' {
		return "", "", nil, false
	}
	rest = rest[1:]
	for {
		var key string
		var err error
		if rest, err = fastjson.Parse(rest, &key, 0); err != nil {
			return "", "", nil, false
		}
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			return "", "", nil, false
		}
		if key == "entry" {
			// Links after the entries would be missed: let the caller decode the whole Bundle.
			return resourceType, typ, links, links != nil
		}
		var dst any = new(fastjson.RawMessage)
		switch key {
		case "resourceType":
			dst = &resourceType
		case "type":
			dst = &typ
		case "link":
			dst = &links
		}
		if rest, err = fastjson.Parse(rest[1:], dst, 0); err != nil {
			return "", "", nil, false
		}
		rest = bytes.TrimLeft(rest, " \t\r\n")
		switch {
		case len(rest) > 0 && rest[0] == ',':
			rest = rest[1:]
		case len(rest) > 0 && rest[0] == '}':
			return resourceType, typ, links, true // no entries: an empty searchset
		default:
			return "", "", nil, false
		}
	}
}

// mapFailure turns a search failure into the transport error ownerFailure words.
func mapFailure(err error) error {
	if errors.Is(err, errOwnerTimeout) || errors.Is(err, errOwnerTooLarge) {
		return err
	}
	return errOwnerUnreachable
}

// ownerHits is what one owner gave towards one merged page.
type ownerHits struct {
	matches  []mergeEntry
	others   []fhir.BundleEntry // include and outcome entries
	total    *int
	len1     int    // matches taken from the page in progress
	next1    string // the page after it, relative; "" if none
	used2    bool   // whether that next page was read too
	len2     int
	next2    string
	err      error
	timedOut bool
	self     string // the self link of the first page read
}

// mergeEntry is a match with its sort keys.
type mergeEntry struct {
	entry fhir.BundleEntry
	keys  []sortValue
}

// searchFanout asks every owner for up to count matches from where each stands, merges
// them in the requested order and returns the first count (see fanoutPage).
func (g *fhirGateway) searchFanout(ctx context.Context, cl caller, table routing.Table, owners []string, call fhirCall, count int, cur *pageCursor) (*fhirResult, error) {
	keys, sortSpec, err := parseSort(call.query["_sort"])
	if err != nil {
		return nil, err
	}
	oq := ownerSearchQuery(call.query)
	oq.Set("_sort", sortSpec)
	oq.Set("_count", strconv.Itoa(count))
	p := ownerPager{path: "/" + call.typ, query: oq, header: call.header, keys: keys, searched: call.typ,
		keyOf: func(e fhir.BundleEntry) []sortValue { return sortValues(e.Resource, keys) }}
	fp, refused, err := g.fanoutPage(ctx, cl, table, owners, call.typ, p, count, cur)
	if err != nil || refused != nil {
		return refused, err
	}
	if lenient(call) {
		call.query = usedQuery(call.query, fp.selfLinks)
	}
	out := &fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: fhir.BundleSearchset,
		Meta: &fhir.Meta{LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)},
		Link: []fhir.BundleLink{{Relation: "self", URL: g.searchURL(call.typ, call.query, call.query.Get(cursorParam))}},
	}
	// Totals are summed; with an owner missing the sum would understate, so it is left out
	// unless the failed owner is the only gap (then the outcome entry says so).
	if fp.haveTotal || len(fp.warnings) > 0 {
		out.Total = &fp.total
	}
	if fp.hasNext && count > 0 {
		out.Link = append(out.Link, fhir.BundleLink{Relation: "next",
			URL: g.searchURL(call.typ, call.query, g.signCursor(cl.p.Tenant, call.typ, call.query, fp.next))})
	}
	out.Entry = append(fp.merged, fp.others...)
	if we, ok := withheldEntry(fp.withheld); ok {
		out.Entry = append(out.Entry, we)
	}
	header := g.partialResult(cl, out, fp.warnings, call.typ, "search")
	return bundleResult(out, header)
}

// partialResult returns a Warning header naming the owners missing from a fan-out's answer,
// if any, and adds an outcome entry saying the same to a searchset (a history Bundle's
// entries are versions only).
func (g *fhirGateway) partialResult(cl caller, out *fhir.Bundle, warnings []string, typ, what string) http.Header {
	header := http.Header{}
	if len(warnings) == 0 {
		return header
	}
	msg := strings.Join(warnings, "; ")
	if out.Type == fhir.BundleSearchset {
		oo, _ := json.Marshal(&fhir.OperationOutcome{ResourceType: "OperationOutcome", Issue: []fhir.Issue{{
			Severity: fhir.SeverityWarning, Code: fhir.IssueType("incomplete"), Diagnostics: "partial result: " + msg,
		}}})
		out.Entry = append(out.Entry, fhir.BundleEntry{FullURL: "urn:uuid:" + uuid.NewString(), Resource: oo,
			Search: &fhir.EntrySearch{Mode: "outcome"}})
	}
	header.Set("Warning", `199 interop "partial result: `+strings.ReplaceAll(msg, `"`, "'")+`"`)
	g.log.Warn("fhir fan-out "+what+" partial", "resource_type", typ, "tenant", cl.p.Tenant,
		"failed_owners", len(warnings), "request_id", cl.requestID)
	return header
}

// ownerPager says how a fan-out reads owners' pages: the first page's path (relative to an
// owner's base) and query, and each match's sort keys in the merged order.
type ownerPager struct {
	path  string
	query url.Values
	// header holds the headers each owner request carries (searchHeaders: Prefer).
	header http.Header
	keys   []sortKey
	keyOf  func(fhir.BundleEntry) []sortValue
	// keep, if set, drops the matches of an owner it returns false for; they count as used.
	keep func(owner string, e fhir.BundleEntry) bool
	// searched is the type whose search or history is read ("" for a system history): its
	// matches are what the caller's scope granted; any other resource needs read on its type
	// (entryAllowed), else it is dropped (and counted as used) and counted in withheld.
	searched string
}

// fannedPage is one merged page of a fan-out.
type fannedPage struct {
	merged []fhir.BundleEntry
	// others are the owners' include and outcome entries.
	others []fhir.BundleEntry
	// next is where each owner stands after this page; hasNext is set if one has more.
	next    pageCursor
	hasNext bool
	// total sums the owners' totals; haveTotal is set when every owner gave one.
	total     int
	haveTotal bool
	// warnings name the owners whose results are missing.
	warnings []string
	// withheld counts, by type, the resources left out for want of read scope.
	withheld map[string]int
	// selfLinks are the self links of the owners' pages read (the parameters they used).
	selfLinks []string
}

// fanoutPage asks every owner for up to count matches from where each stands, merges them in
// p's order and keeps the first count, remembering per owner how many it used. Each owner is
// read at most twice per page: the rest of its page in progress and, when that is short, the
// page after. An owner's refusal (4xx) is returned as refused: every owner would say the same.
func (g *fhirGateway) fanoutPage(ctx context.Context, cl caller, table routing.Table, owners []string, typ string, p ownerPager, count int, cur *pageCursor) (*fannedPage, *fhirResult, error) {
	states := make([]ownerPage, len(owners))
	if cur != nil {
		copy(states, cur.Pages)
	}
	hits := make([]ownerHits, len(owners))
	sem := make(chan struct{}, g.opts.FanoutConcurrency)
	var wg sync.WaitGroup
	for i, owner := range owners {
		if states[i].Done || states[i].Failed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			hits[i] = g.readOwnerPage(ctx, cl, owner, typ, p, states[i], count)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}

	asked, failed, timeouts := 0, 0, 0
	var refused *fhirResult
	for i := range owners {
		if states[i].Done || states[i].Failed {
			continue
		}
		asked++
		var rr *refusedError
		switch {
		case errors.As(hits[i].err, &rr):
			if refused == nil {
				refused = rr.res
			}
		case hits[i].err != nil:
			failed++
			if hits[i].timedOut {
				timeouts++
			}
		}
	}
	if refused != nil {
		return nil, refused, nil
	}
	if asked > 0 && failed == asked {
		if timeouts == failed {
			return nil, nil, httpkit.NewOutcome(http.StatusGatewayTimeout, fhir.IssueTimeout, "no service that owns "+typ+" answered in time")
		}
		return nil, nil, httpkit.NewOutcome(http.StatusBadGateway, fhir.IssueTransient, "no service that owns "+typ+" answered")
	}

	// Merge: a k-way merge keeps each owner's own order, so what is used of an owner is
	// always a prefix of what it gave.
	pos := make([]int, len(owners))
	fp := &fannedPage{merged: make([]fhir.BundleEntry, 0, count), haveTotal: true, withheld: map[string]int{},
		next: pageCursor{Owners: ownersDigest(owners), Pages: make([]ownerPage, len(owners))}}
	readAll := readsEverything(cl.p.Scopes)
	allowed := func(e fhir.BundleEntry) bool {
		if readAll {
			return true
		}
		typ, ok := entryAllowed(cl.p.Scopes, p.searched, e)
		if !ok {
			fp.withheld[typ]++
		}
		return ok
	}
	for len(fp.merged) < count {
		best := -1
		for i := range owners {
			if pos[i] >= len(hits[i].matches) {
				continue
			}
			if best < 0 || lessKeys(hits[i].matches[pos[i]].keys, hits[best].matches[pos[best]].keys, p.keys) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		e := hits[best].matches[pos[best]].entry
		pos[best]++
		if (p.keep == nil || p.keep(owners[best], e)) && allowed(e) {
			fp.merged = append(fp.merged, e)
		}
	}

	seen := map[string]bool{}
	for i, owner := range owners {
		st, h := states[i], hits[i]
		ns := ownerPage{Total: st.Total}
		switch {
		case st.Done:
			ns = st
		case st.Failed || h.err != nil:
			ns = ownerPage{Failed: true}
			fp.warnings = append(fp.warnings, "results from "+ownerLabel(table, typ, owner)+" are missing: it did not answer")
		default:
			if h.total != nil {
				ns.Total = h.total
			}
			used := pos[i]
			switch {
			case used < h.len1:
				ns.Page, ns.Skip = st.Page, st.Skip+used
			case h.used2 && used-h.len1 < h.len2:
				ns.Page, ns.Skip = h.next1, used-h.len1
			case h.used2 && h.next2 != "":
				ns.Page = h.next2
			case !h.used2 && h.next1 != "":
				ns.Page = h.next1
			default:
				ns.Done = true
			}
			if h.self != "" {
				fp.selfLinks = append(fp.selfLinks, h.self)
			}
			for _, e := range h.others {
				if !allowed(e) {
					continue
				}
				if e.FullURL == "" || !seen[e.FullURL] {
					seen[e.FullURL] = true
					fp.others = append(fp.others, e)
				}
			}
		}
		if ns.Failed {
			fp.haveTotal = false
		} else if ns.Total != nil {
			fp.total += *ns.Total
		} else {
			fp.haveTotal = false
		}
		if !ns.Done && !ns.Failed {
			fp.hasNext = true
		}
		fp.next.Pages[i] = ns
	}
	return fp, nil, nil
}

// refusedError carries an owner's refusal (4xx) of a fan-out search.
type refusedError struct{ res *fhirResult }

func (e *refusedError) Error() string { return "owner refused the search" }

// readOwnerPage reads what one owner has towards a merged page of count matches.
func (g *fhirGateway) readOwnerPage(ctx context.Context, cl caller, owner, typ string, p ownerPager, st ownerPage, count int) ownerHits {
	var h ownerHits
	fail := func(err error) ownerHits {
		h.err = err
		h.timedOut = errors.Is(err, errOwnerTimeout)
		return h
	}
	b1, refused, err := g.fetchBundle(ctx, cl, owner, typ, pageRequest(p.path, p.query, st.Page, p.header))
	if refused != nil && err == nil {
		return fail(&refusedError{res: refused})
	}
	if err != nil {
		return fail(err)
	}
	h.total = b1.Total
	h.self = linkOf(b1, "self")
	m1, o1 := g.splitEntries(owner, b1, p.keyOf)
	if st.Skip < len(m1) {
		m1 = m1[st.Skip:]
	} else {
		m1 = nil
	}
	h.matches, h.others, h.len1 = m1, o1, len(m1)
	if n := linkOf(b1, "next"); n != "" {
		h.next1, _ = ownerRelative(owner, p.path, n)
	}
	if len(m1) < count && h.next1 != "" {
		b2, refused, err := g.fetchBundle(ctx, cl, owner, typ, pageRequest(p.path, p.query, h.next1, p.header))
		if refused != nil && err == nil {
			return fail(&refusedError{res: refused})
		}
		if err != nil {
			return fail(err)
		}
		m2, o2 := g.splitEntries(owner, b2, p.keyOf)
		h.used2, h.len2 = true, len(m2)
		h.matches = append(h.matches, m2...)
		h.others = append(h.others, o2...)
		if n := linkOf(b2, "next"); n != "" {
			h.next2, _ = ownerRelative(owner, p.path, n)
		}
	}
	return h
}

// splitEntries separates an owner page's matches (with their sort keys) from its include
// and outcome entries, rewriting every URL to the gateway's.
func (g *fhirGateway) splitEntries(owner string, b *fhir.Bundle, keyOf func(fhir.BundleEntry) []sortValue) (matches []mergeEntry, others []fhir.BundleEntry) {
	for _, e := range b.Entry {
		pe := g.publicEntry(owner, e)
		if e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match" {
			others = append(others, pe)
			continue
		}
		matches = append(matches, mergeEntry{entry: pe, keys: keyOf(e)})
	}
	return matches, others
}

// probe asks every owner of a type split by category for one resource by id and returns the
// first owner that has it: ids are assigned by each owner, so an id lives at one owner, and
// the first to answer with the resource wins; the others are cancelled. With no owner having
// it the answer is 410 if one knows it was deleted, an owner's refusal if one refused, 502/504
// if an owner could not be asked (the resource may live there), else 404.
func (g *fhirGateway) probe(ctx context.Context, cl caller, owners []string, call fhirCall) (string, *fhirResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		i   int
		res *fhirResult
		err error
	}
	answers := make(chan answer, len(owners))
	sem := make(chan struct{}, g.opts.FanoutConcurrency)
	for i, owner := range owners {
		g.opts.Routed.Record(cl.p.Tenant, call.typ, owner, call.interaction)
		go func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				answers <- answer{i: i, err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			resp, err := g.send(ctx, cl, owner, ownerRequestOf(call))
			if err != nil {
				answers <- answer{i: i, err: err}
				return
			}
			answers <- answer{i: i, res: g.translate(cl, owner, call.typ, resp)}
		}()
	}
	got := make([]answer, len(owners))
	for range owners {
		a := <-answers
		if a.err == nil && a.res.status < 300 || a.err == nil && a.res.status == http.StatusNotModified {
			return owners[a.i], a.res, nil
		}
		got[a.i] = a
	}
	var failure error
	for i, a := range got {
		switch {
		case a.err != nil:
			if failure == nil || !errors.Is(a.err, errOwnerTimeout) {
				failure = a.err
			}
		case a.res.status >= 500:
			failure = errOwnerUnreachable
		case a.res.status == http.StatusGone:
			return owners[i], a.res, nil
		}
	}
	for _, a := range got {
		if a.err == nil && a.res.status != http.StatusNotFound && a.res.status < 500 {
			return "", a.res, nil
		}
	}
	if failure != nil {
		if err := ctx.Err(); err != nil {
			return "", nil, err
		}
		return "", nil, ownerFailure(mapFailure(failure), call.typ)
	}
	return "", got[0].res, nil
}
