package fhirserver

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/jsontext"
	"github.com/nhp/interop/internal/store"
)

// kind is a FHIR interaction.
type kind int

const (
	kindRead kind = iota
	kindVRead
	kindSearch
	kindCreate
	kindUpdate
	kindCondUpdate
	kindDelete
	kindCondDelete
	kindHistory
	kindTypeHistory
	kindSystemHistory
	kindBundle
)

// request is one interaction, from an HTTP request or a Bundle entry.
type request struct {
	kind        kind
	typ, id     string
	vid         int64
	query       url.Values
	body        []byte
	ifNoneExist string
	ifMatch     string
	prefer      string
	lenient     bool
	// assignedID is the id a transaction chose for a create, to resolve urn:uuid references.
	assignedID string
}

// interaction is the SMART interaction letter the request needs.
func (rq request) interaction() auth.Interaction {
	switch rq.kind {
	case kindSearch:
		return auth.Search
	case kindCreate:
		return auth.Create
	case kindUpdate, kindCondUpdate:
		return auth.Update
	case kindDelete, kindCondDelete:
		return auth.Delete
	}
	return auth.Read
}

func notFound(msg string) error { return errStatus(http.StatusNotFound, fhir.IssueNotFound, msg) }

// route maps a method and path segments (relative to the base) to an interaction.
func route(method string, segs []string, query url.Values) (request, error) {
	if len(segs) == 1 && segs[0] == "" {
		if method != http.MethodPost {
			return request{}, errMethod("POST")
		}
		return request{kind: kindBundle}, nil
	}
	if len(segs) == 1 && segs[0] == "_history" {
		if method != http.MethodGet {
			return request{}, errMethod("GET")
		}
		return request{kind: kindSystemHistory, query: query}, nil
	}
	typ := segs[0]
	if !fhir.ValidType(typ) {
		return request{}, notFound("unknown resource type")
	}
	rq := request{typ: typ, query: query}
	switch {
	case len(segs) == 1:
		switch method {
		case http.MethodGet, http.MethodHead:
			rq.kind = kindSearch
		case http.MethodPost:
			rq.kind = kindCreate
		case http.MethodPut:
			rq.kind = kindCondUpdate
		case http.MethodDelete:
			rq.kind = kindCondDelete
		default:
			return request{}, errMethod("GET, POST, PUT, DELETE")
		}
	case len(segs) == 2 && segs[1] == "_search":
		if method != http.MethodPost && method != http.MethodGet {
			return request{}, errMethod("GET, POST")
		}
		rq.kind = kindSearch
	case len(segs) == 2 && segs[1] == "_history":
		if method != http.MethodGet {
			return request{}, errMethod("GET")
		}
		rq.kind = kindTypeHistory
	case len(segs) == 2:
		if !fhir.ValidID(segs[1]) {
			return request{}, notFound("resource not found")
		}
		rq.id = segs[1]
		switch method {
		case http.MethodGet, http.MethodHead:
			rq.kind = kindRead
		case http.MethodPut:
			rq.kind = kindUpdate
		case http.MethodDelete:
			rq.kind = kindDelete
		default:
			return request{}, errMethod("GET, PUT, DELETE")
		}
	case (len(segs) == 3 || len(segs) == 4) && segs[2] == "_history" && fhir.ValidID(segs[1]):
		if method != http.MethodGet {
			return request{}, errMethod("GET")
		}
		rq.id, rq.kind = segs[1], kindHistory
		if len(segs) == 4 {
			vid, err := strconv.ParseInt(segs[3], 10, 64)
			if err != nil || vid <= 0 {
				return request{}, notFound("version not found")
			}
			rq.vid, rq.kind = vid, kindVRead
		}
	default:
		return request{}, notFound("unknown path")
	}
	return rq, nil
}

// methodError is a 405 with its Allow header.
type methodError struct{ allow string }

func (e *methodError) Error() string { return "method not allowed; allowed: " + e.allow }

func errMethod(allow string) error { return &methodError{allow: allow} }

// parse reads an HTTP request into an interaction.
func (h *Handler) parse(r *http.Request, segs []string) (request, error) {
	query := r.URL.Query()
	rq, err := route(r.Method, segs, query)
	if err != nil {
		return request{}, err
	}
	pref := fhir.ParsePrefer(r.Header.Values("Prefer"))
	rq.prefer, rq.lenient = pref.Return, pref.Lenient
	rq.ifNoneExist = r.Header.Get("If-None-Exist")
	rq.ifMatch = r.Header.Get("If-Match")
	switch {
	case rq.kind == kindSearch && r.Method == http.MethodPost:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "" && ct != "application/x-www-form-urlencoded" {
			return request{}, errStatus(http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "POST _search takes application/x-www-form-urlencoded")
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return request{}, err
		}
		form, err := queryOf(string(raw))
		if err != nil {
			return request{}, err
		}
		for k, vs := range form {
			rq.query[k] = append(rq.query[k], vs...)
		}
	case rq.kind == kindCreate || rq.kind == kindUpdate || rq.kind == kindCondUpdate || rq.kind == kindBundle:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "" && !isJSONType(ct) {
			return request{}, errStatus(http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "send application/fhir+json")
		}
		if rq.body, err = io.ReadAll(r.Body); err != nil {
			return request{}, err
		}
		if err := jsontext.Check(rq.body); err != nil {
			return request{}, errStatus(http.StatusBadRequest, fhir.IssueInvalid, "request body: "+err.Error())
		}
		if err := fhir.CheckDepth(rq.body); err != nil {
			return request{}, errStatus(http.StatusBadRequest, fhir.IssueStructure, err.Error())
		}
	}
	return rq, nil
}

// backend is what both *store.Store and *store.Tx offer: the interactions run on either.
type backend interface {
	Read(ctx context.Context, tenant, typ, id string) (store.Resource, error)
	Search(ctx context.Context, tenant, typ string, q store.Query) (store.SearchResult, error)
	Create(ctx context.Context, tenant string, body []byte) (store.WriteResult, error)
	ConditionalCreateWhere(ctx context.Context, tenant string, body []byte, q store.Query) (store.WriteResult, error)
	ConditionalUpdateWhere(ctx context.Context, tenant string, body []byte, q store.Query) (store.WriteResult, error)
	ConditionalUpdateWhereIfMatch(ctx context.Context, tenant string, body []byte, q store.Query, ifMatch int64) (store.WriteResult, error)
	Update(ctx context.Context, tenant, typ, id string, body []byte) (store.WriteResult, error)
	UpdateIfMatch(ctx context.Context, tenant, typ, id string, body []byte, ifMatch int64) (store.WriteResult, error)
	Delete(ctx context.Context, tenant, typ, id string) (store.DeleteResult, error)
	DeleteWhere(ctx context.Context, tenant, typ string, q store.Query) (store.DeleteResult, error)
}

// conditionQuery parses a conditional operation's criteria: strict, no paging parameters.
func conditionQuery(typ string, vals url.Values) (store.Query, error) {
	for _, p := range []string{"_format", "_pretty"} {
		vals.Del(p)
	}
	q, _, err := store.ParseQuery(typ, vals, false)
	if err != nil {
		return store.Query{}, err
	}
	if len(q.Params) == 0 {
		return store.Query{}, store.ErrNoCriteria
	}
	return q, nil
}

// exec runs one interaction on b for tenant; base is the absolute base URL for links.
func (h *Handler) exec(ctx context.Context, b backend, tenant string, rq request, base string) (response, error) {
	switch rq.kind {
	case kindRead:
		r, err := b.Read(ctx, tenant, rq.typ, rq.id)
		return response{status: http.StatusOK, resource: &r}, err
	case kindVRead:
		r, err := h.st.ReadVersion(ctx, tenant, rq.typ, rq.id, rq.vid)
		return response{status: http.StatusOK, resource: &r}, err
	case kindSearch:
		return h.search(ctx, b, tenant, rq, base)
	case kindHistory, kindTypeHistory, kindSystemHistory:
		return h.history(ctx, tenant, rq, base)
	case kindCreate:
		head, err := fhir.ReadHead(rq.body)
		if err != nil {
			return response{}, err
		}
		if head.ResourceType != rq.typ {
			return response{}, errStatus(http.StatusBadRequest, fhir.IssueInvalid, "the body is a "+head.ResourceType+", not a "+rq.typ)
		}
		var res store.WriteResult
		switch {
		case rq.ifNoneExist != "":
			vals, err := queryOf(strings.TrimPrefix(rq.ifNoneExist, rq.typ+"?"))
			if err != nil {
				return response{}, err
			}
			q, err := conditionQuery(rq.typ, vals)
			if err != nil {
				return response{}, err
			}
			q.CursorKey = h.opts.CursorKey
			res, err = b.ConditionalCreateWhere(ctx, tenant, rq.body, q)
			if err != nil {
				return response{}, err
			}
		case rq.assignedID != "":
			creator, ok := b.(interface {
				CreateWithID(ctx context.Context, tenant, id string, body []byte) (store.WriteResult, error)
			})
			if !ok {
				return response{}, errStatus(http.StatusInternalServerError, fhir.IssueException, "internal error")
			}
			if res, err = creator.CreateWithID(ctx, tenant, rq.assignedID, rq.body); err != nil {
				return response{}, err
			}
		default:
			if res, err = b.Create(ctx, tenant, rq.body); err != nil {
				return response{}, err
			}
		}
		return written(res, base), nil
	case kindUpdate:
		// FHIR update: "If no id element is provided, or the id disagrees with the id in the
		// URL, the server SHALL respond with an HTTP 400" (the store refuses a disagreement).
		head, err := fhir.ReadHead(rq.body)
		if err != nil {
			return response{}, err
		}
		if head.ID == "" {
			return response{}, errStatus(http.StatusBadRequest, fhir.IssueRequired, "the body of an update must carry the id of its URL ("+rq.typ+"/"+rq.id+")")
		}
		var res store.WriteResult
		if rq.ifMatch != "" {
			v, perr := parseETag(rq.ifMatch)
			if perr != nil {
				return response{}, perr
			}
			res, err = b.UpdateIfMatch(ctx, tenant, rq.typ, rq.id, rq.body, v)
		} else {
			res, err = b.Update(ctx, tenant, rq.typ, rq.id, rq.body)
		}
		if err != nil {
			return response{}, err
		}
		return written(res, base), nil
	case kindCondUpdate:
		q, err := conditionQuery(rq.typ, rq.query)
		if err != nil {
			return response{}, err
		}
		head, err := fhir.ReadHead(rq.body)
		if err != nil {
			return response{}, err
		}
		if head.ResourceType != rq.typ {
			return response{}, errStatus(http.StatusBadRequest, fhir.IssueInvalid, "the body is a "+head.ResourceType+", not a "+rq.typ)
		}
		var res store.WriteResult
		if rq.ifMatch != "" {
			v, perr := parseETag(rq.ifMatch)
			if perr != nil {
				return response{}, perr
			}
			res, err = b.ConditionalUpdateWhereIfMatch(ctx, tenant, rq.body, q, v)
		} else {
			res, err = b.ConditionalUpdateWhere(ctx, tenant, rq.body, q)
		}
		if err != nil {
			return response{}, err
		}
		return written(res, base), nil
	case kindDelete, kindCondDelete:
		var res store.DeleteResult
		var err error
		if rq.kind == kindDelete {
			res, err = b.Delete(ctx, tenant, rq.typ, rq.id)
		} else {
			q, qerr := conditionQuery(rq.typ, rq.query)
			if qerr != nil {
				return response{}, qerr
			}
			res, err = b.DeleteWhere(ctx, tenant, rq.typ, q)
		}
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusNoContent, deletedVersion: res.VersionID}, nil
	}
	return response{}, notFound("unknown interaction")
}

// written is the response to a create or update: 201 with Location when it created.
func written(res store.WriteResult, base string) response {
	r := res.Resource
	resp := response{status: http.StatusOK, resource: &r}
	if res.Action == store.ActionCreated {
		resp.status = http.StatusCreated
		resp.location = base + "/" + r.Type + "/" + r.ID + "/_history/" + strconv.FormatInt(r.VersionID, 10)
	}
	return resp
}

func (h *Handler) search(ctx context.Context, b backend, tenant string, rq request, base string) (response, error) {
	q, ignored, err := store.ParseQuery(rq.typ, rq.query, rq.lenient)
	if err != nil {
		return response{}, err
	}
	q.CursorKey = h.opts.CursorKey
	res, err := b.Search(ctx, tenant, rq.typ, q)
	if err != nil {
		return response{}, err
	}
	bundle := &fhir.Bundle{ResourceType: "Bundle", Type: fhir.BundleSearchset, Timestamp: httpDate(time.Now())}
	if res.Total >= 0 {
		total := res.Total
		bundle.Total = &total
	}
	self := usedParams(rq.typ, rq.query, q, ignored)
	bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "self", URL: base + "/" + rq.typ + "?" + self.Encode()})
	if res.Next != "" {
		next := cloneValues(self)
		next.Set(store.CursorParam, res.Next)
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "next", URL: base + "/" + rq.typ + "?" + next.Encode()})
	}
	for _, r := range res.Resources {
		bundle.Entry = append(bundle.Entry, fhir.BundleEntry{FullURL: base + "/" + r.Type + "/" + r.ID, Resource: r.Body, Search: &fhir.EntrySearch{Mode: "match"}})
	}
	// An included resource needs read on its type: the search scope of the searched type does
	// not reach the resources its matches refer to.
	withheld := map[string]int{}
	for _, r := range res.Included {
		if !h.mayRead(ctx, r.Type) {
			withheld[r.Type]++
			continue
		}
		bundle.Entry = append(bundle.Entry, fhir.BundleEntry{FullURL: base + "/" + r.Type + "/" + r.ID, Resource: r.Body, Search: &fhir.EntrySearch{Mode: "include"}})
	}
	if oo := fhir.WithheldOutcome(withheld); oo != nil {
		raw, _ := jsonMarshal(oo)
		bundle.Entry = append(bundle.Entry, fhir.BundleEntry{Resource: raw, Search: &fhir.EntrySearch{Mode: "outcome"}})
	}
	if len(ignored) > 0 {
		oo := fhir.NewOutcome(fhir.SeverityWarning, fhir.IssueNotSupported, "ignored unsupported search parameters (Prefer: handling=lenient): "+strings.Join(slices.Compact(ignored), ", "))
		raw, _ := jsonMarshal(oo)
		bundle.Entry = append(bundle.Entry, fhir.BundleEntry{Resource: raw, Search: &fhir.EntrySearch{Mode: "outcome"}})
	}
	return response{status: http.StatusOK, bundle: bundle}, nil
}

// usedParams are the parameters of a search the store used: those of query without the
// ignored ones (Prefer: handling=lenient) and _format, and of _include only the values it
// follows. The self link shows them, and the next link carries them, so that a page after
// the first is also good without Prefer: handling=lenient.
func usedParams(typ string, query url.Values, q store.Query, ignored []string) url.Values {
	used := cloneValues(query)
	used.Del("_format")
	for _, k := range ignored {
		used.Del(k)
	}
	if slices.Contains(ignored, "_include") { // some of its values, maybe not all
		for _, v := range query["_include"] {
			src, p, _ := strings.Cut(v, ":")
			p, _, _ = strings.Cut(p, ":")
			if src == typ && slices.Contains(q.Include, p) {
				used["_include"] = append(used["_include"], v)
			}
		}
	}
	return used
}

// historyParams are the parameters a history takes besides _format and _pretty; _cursor
// pages type and system histories.
var historyParams = []string{"_count", "_since", store.CursorParam}

// history serves instance, type and system _history as a Bundle of type history, newest
// version first. Type and system histories are paged with a next link; their total is given
// when the page holds every version (counting a long history on each page is not worth it).
func (h *Handler) history(ctx context.Context, tenant string, rq request, base string) (response, error) {
	opts := store.HistoryOptions{CursorKey: h.opts.CursorKey}
	for k, vs := range rq.query {
		switch {
		case k == "_format" || k == "_pretty":
			continue
		case !slices.Contains(historyParams, k) || rq.kind == kindHistory && k == store.CursorParam:
			if rq.lenient {
				continue
			}
			return response{}, &store.ParamError{Param: k, Unknown: true, Reason: "not supported in a history (supported: _count, _since)"}
		case len(vs) != 1:
			return response{}, &store.ParamError{Param: k, Reason: "give it once"}
		}
	}
	if c := rq.query.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return response{}, &store.ParamError{Param: "_count", Reason: "not a non-negative integer"}
		}
		opts.Count = n
	}
	if s := rq.query.Get("_since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return response{}, &store.ParamError{Param: "_since", Reason: "want an instant, e.g. 2024-01-02T03:04:05Z"}
		}
		opts.Since = t
	}
	opts.Cursor = rq.query.Get(store.CursorParam)
	var page store.HistoryPage
	var err error
	path := "/_history"
	switch rq.kind {
	case kindHistory:
		page.Entries, err = h.st.History(ctx, tenant, rq.typ, rq.id, opts)
		path = "/" + rq.typ + "/" + rq.id + "/_history"
	case kindTypeHistory:
		page, err = h.st.TypeHistory(ctx, tenant, rq.typ, opts)
		path = "/" + rq.typ + "/_history"
	default:
		page, err = h.st.SystemHistory(ctx, tenant, opts)
	}
	if err != nil {
		return response{}, err
	}
	bundle := &fhir.Bundle{ResourceType: "Bundle", Type: "history", Timestamp: httpDate(time.Now())}
	if rq.kind == kindHistory || opts.Cursor == "" && page.Next == "" {
		total := len(page.Entries)
		bundle.Total = &total
	}
	self := cloneValues(rq.query)
	self.Del("_format")
	bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "self", URL: withQuery(base+path, self)})
	if page.Next != "" {
		next := cloneValues(self)
		next.Set(store.CursorParam, page.Next)
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "next", URL: withQuery(base+path, next)})
	}
	for _, e := range page.Entries {
		entry := fhir.BundleEntry{
			FullURL: base + "/" + e.Type + "/" + e.ID,
			Request: &fhir.EntryRequest{Method: e.Method, URL: e.Type + "/" + e.ID},
			Response: &fhir.EntryResponse{
				Status: "200 OK", Etag: etag(e.VersionID), LastModified: httpDate(e.LastUpdated),
			},
		}
		switch {
		case e.Deleted:
			entry.Response.Status = "204 No Content"
		case e.Method == "POST":
			entry.Request.URL = e.Type
			entry.Response.Status = "201 Created"
			entry.Resource = e.Body
		default:
			entry.Resource = e.Body
		}
		bundle.Entry = append(bundle.Entry, entry)
	}
	return response{status: http.StatusOK, bundle: bundle}, nil
}

// withQuery appends q to u, if it has any values.
func withQuery(u string, q url.Values) string {
	if len(q) == 0 {
		return u
	}
	return u + "?" + q.Encode()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		if k == store.CursorParam {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}
