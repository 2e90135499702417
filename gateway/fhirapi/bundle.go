package fhirapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
)

// maxBundleEntries bounds the entries of one batch or transaction.
const maxBundleEntries = 1000

// bundle serves POST /fhir: a batch, whose entries are routed to their owners one by one, or
// a transaction, which is forwarded whole to its one owner (one owner's transaction is
// atomic; a transaction across owners could not be, so it is refused).
func (g *fhirGateway) bundle(c echo.Context) error {
	body, err := readResourceBody(c)
	if err != nil {
		return err
	}
	var b fhir.Bundle
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "POST /fhir takes a Bundle of type batch or transaction")
	}
	if len(b.Entry) > maxBundleEntries {
		return httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, fmt.Sprintf("a Bundle may have at most %d entries", maxBundleEntries))
	}
	if err := fhir.CheckFullURLs(b); err != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, err.Error())
	}
	cl := callerOf(c)
	prefer := c.Request().Header.Get("Prefer")
	calls := make([]fhirCall, len(b.Entry))
	errs := make([]error, len(b.Entry))
	for i, e := range b.Entry {
		calls[i], errs[i] = g.entryCall(e, prefer)
		if errs[i] == nil && !cl.p.Scopes.Allows(calls[i].typ, scopeOf(calls[i].interaction)) {
			errs[i] = httpkit.NewOutcome(http.StatusForbidden, fhir.IssueForbidden,
				"token scopes do not grant '"+string(rune(scopeOf(calls[i].interaction)))+"' on "+calls[i].typ)

		}
	}
	ctx := c.Request().Context()
	var res *fhirResult
	switch b.Type {
	case "batch":
		res, err = g.batch(ctx, cl, calls, errs)
	case fhir.BundleTransaction:
		res, err = g.transaction(ctx, cl, body, calls, errs)
	default:
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "Bundle.type must be batch or transaction")
	}
	noteBundleAudit(c, b.Type, calls, errs, res)
	if err != nil {
		return err
	}
	return writeResult(c, res)
}

// noteBundleAudit tells the audit record of a batch or transaction what its entries touched:
// the resources their URLs name, the Patients of their queries and bodies, and the resources
// the answer says were created or updated.
func noteBundleAudit(c echo.Context, typ string, calls []fhirCall, errs []error, res *fhirResult) {
	if !auditlog.Active(c) {
		return
	}
	d := auditlog.Note(c)
	d.Interaction = audit.InteractionBatch
	if typ == fhir.BundleTransaction {
		d.Interaction = audit.InteractionTransaction
	}
	for i, call := range calls {
		if errs[i] != nil || call.typ == "" {
			continue
		}
		if call.id != "" {
			d.Entities = append(d.Entities, call.typ+"/"+call.id)
			if call.typ == "Patient" {
				d.Patients = append(d.Patients, "Patient/"+call.id)
			}
		}
		d.Patients = append(d.Patients, audit.PatientsOfSearch(call.typ, call.query)...)
		d.Patients = append(d.Patients, audit.PatientsOfResource(call.body)...)
	}
	if res == nil || res.status >= 300 {
		return
	}
	var answer struct {
		Entry []struct {
			Response *struct {
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	if json.Unmarshal(res.body, &answer) != nil {
		return
	}
	for _, e := range answer.Entry {
		if e.Response != nil && e.Response.Location != "" {
			d.Entities = append(d.Entities, e.Response.Location)
			if ref, ok := audit.PatientRef(e.Response.Location); ok {
				d.Patients = append(d.Patients, ref)
			}
		}
	}
}

// entryCall reads a batch or transaction entry's request as an interaction.
func (g *fhirGateway) entryCall(e fhir.BundleEntry, prefer string) (fhirCall, error) {
	bad := func(msg string) (fhirCall, error) {
		return fhirCall{}, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, msg)
	}
	if e.Request == nil || e.Request.URL == "" {
		return bad("entry has no request.method and request.url")
	}
	raw := strings.TrimPrefix(e.Request.URL, g.base)
	p, rawQuery, _ := strings.Cut(strings.TrimPrefix(raw, "/"), "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad("request.url has a malformed query")
	}
	query.Del("_format")
	if p == "_history" && e.Request.Method == http.MethodGet {
		return fhirCall{interaction: interHistorySystem, method: http.MethodGet, query: query, header: http.Header{}}, nil
	}
	segs := strings.Split(p, "/")
	if !routing.IsResourceType(segs[0]) {
		return bad("request.url " + strconv.Quote(e.Request.URL) + " does not name a resource type")
	}
	call := fhirCall{method: e.Request.Method, typ: segs[0], query: query, header: http.Header{}}
	typeHistory := call.method == http.MethodGet && len(segs) == 2 && segs[1] == "_history"
	if len(segs) > 1 && segs[1] != "_search" && !typeHistory {
		if !fhir.ValidID(segs[1]) {
			return bad("request.url " + strconv.Quote(e.Request.URL) + " has an invalid id")
		}
		call.id = segs[1]
	}
	if e.Request.IfMatch != "" {
		call.header.Set("If-Match", e.Request.IfMatch)
	}
	if e.Request.IfNoneExist != "" {
		call.header.Set("If-None-Exist", e.Request.IfNoneExist)
	}
	if prefer != "" {
		call.header.Set("Prefer", prefer)
	}
	normalizeIfNoneExist(call.header)
	switch {
	case call.method == http.MethodGet && len(segs) == 1, call.method == http.MethodGet && len(segs) == 2 && segs[1] == "_search":
		call.interaction = interSearch
	case typeHistory:
		call.interaction = interHistoryType
	case call.method == http.MethodGet && len(segs) == 2:
		call.interaction = interRead
	case call.method == http.MethodGet && len(segs) == 3 && segs[2] == "_history":
		call.interaction = interHistory
	case call.method == http.MethodGet && len(segs) == 4 && segs[2] == "_history" && fhir.ValidID(segs[3]):
		call.interaction, call.vid = interVRead, segs[3]
	case call.method == http.MethodPost && len(segs) == 1:
		call.interaction = interCreate
	case call.method == http.MethodPut && (len(segs) == 2 || len(segs) == 1 && len(query) > 0):
		call.interaction = interUpdate
	case call.method == http.MethodDelete && (len(segs) == 2 || len(segs) == 1 && len(query) > 0):
		call.interaction = interDelete
	default:
		return bad(e.Request.Method + " " + strconv.Quote(e.Request.URL) + " is not an interaction this server supports in a Bundle")
	}
	if call.interaction == interCreate || call.interaction == interUpdate {
		if len(e.Resource) == 0 {
			return bad(e.Request.Method + " entry has no resource")
		}
		call.body = e.Resource
	}
	return call, nil
}

// batch runs each entry as its own request, routed on its own, and answers a batch-response
// with one entry per request in order. A failed entry fails alone.
func (g *fhirGateway) batch(ctx context.Context, cl caller, calls []fhirCall, errs []error) (*fhirResult, error) {
	out := &fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: "batch-response",
		Meta:  &fhir.Meta{LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)},
		Entry: make([]fhir.BundleEntry, len(calls))}
	for i, call := range calls {
		err := errs[i]
		var res *fhirResult
		if err == nil {
			res, err = g.dispatch(ctx, cl, call)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res = g.errorResult(cl, err)
		}
		out.Entry[i] = responseEntry(res)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &fhirResult{status: http.StatusOK, header: http.Header{}, body: body}, nil
}

// errorResult renders err as errorHandler would, for a Bundle entry.
func (g *fhirGateway) errorResult(cl caller, err error) *fhirResult {
	var oe *httpkit.OutcomeError
	if errors.As(err, &oe) {
		sev := fhir.SeverityError
		if oe.Status >= 500 {
			sev = fhir.SeverityFatal
		}
		return &fhirResult{status: oe.Status, header: http.Header{}, body: outcomeBody(sev, oe.Code, oe.Message)}
	}
	g.log.Error("fhir bundle entry failed", "request_id", cl.requestID, "error", err)
	return &fhirResult{status: http.StatusInternalServerError, header: http.Header{},
		body: outcomeBody(fhir.SeverityFatal, fhir.IssueException, "internal error; the request id in X-Request-Id identifies it in the logs")}
}

// responseEntry is a batch-response entry for one result.
func responseEntry(res *fhirResult) fhir.BundleEntry {
	e := fhir.BundleEntry{Response: &fhir.EntryResponse{
		Status:       strconv.Itoa(res.status) + " " + http.StatusText(res.status),
		Location:     res.header.Get("Location"),
		Etag:         res.header.Get("ETag"),
		LastModified: lastModifiedInstant(res.header.Get("Last-Modified")),
	}}
	if len(res.body) > 0 {
		if res.status >= 400 {
			e.Response.Outcome = res.body
		} else {
			e.Resource = res.body
		}
	}
	return e
}

// lastModifiedInstant turns an HTTP date into the FHIR instant Bundle.entry.response wants.
func lastModifiedInstant(s string) string {
	if s == "" {
		return ""
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// transaction forwards a transaction whole to the one owner all its entries go to, or refuses
// it, saying which types go where, when they go to several.
func (g *fhirGateway) transaction(ctx context.Context, cl caller, body []byte, calls []fhirCall, errs []error) (*fhirResult, error) {
	for i, err := range errs {
		if err != nil {
			var oe *httpkit.OutcomeError
			if errors.As(err, &oe) {
				return nil, httpkit.NewOutcome(oe.Status, oe.Code, fmt.Sprintf("entry %d: %s", i, oe.Message))
			}
			return nil, err
		}
	}
	if len(calls) == 0 {
		return jsonResult(http.StatusOK, fhir.Bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: fhir.BundleTransactionResponse})
	}
	table, err := g.tables.get(ctx, cl.p.Tenant)
	if err != nil {
		return nil, err
	}
	type group struct {
		owner string
		what  []string
	}
	var groups []*group
	ownerOf := func(owner, what string) {
		for _, gr := range groups {
			if gr.owner == owner {
				if !slices.Contains(gr.what, what) {
					gr.what = append(gr.what, what)
				}
				return
			}
		}
		groups = append(groups, &group{owner: owner, what: []string{what}})
	}
	for i, call := range calls {
		owner, what, err := g.entryOwner(ctx, cl, table, call)
		if err != nil {
			var oe *httpkit.OutcomeError
			if errors.As(err, &oe) {
				return nil, httpkit.NewOutcome(oe.Status, oe.Code, fmt.Sprintf("entry %d: %s", i, oe.Message))
			}
			return nil, err
		}
		ownerOf(owner, what)
	}
	if len(groups) > 1 {
		parts := make([]string, len(groups))
		for i, gr := range groups {
			parts[i] = fmt.Sprintf("%s → owner %d (%s)", strings.Join(gr.what, ", "), i+1, ownerLabel(table, strings.SplitN(gr.what[0], " ", 2)[0], gr.owner))
		}
		return nil, httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueType("business-rule"),
			"this transaction spans "+strconv.Itoa(len(groups))+" owning services and cannot be atomic: "+strings.Join(parts, "; ")+
				". Send one transaction per owner, or a batch")

	}
	owner := groups[0].owner
	for _, call := range calls {
		g.opts.Routed.Record(cl.p.Tenant, call.typ, owner, interTransact)
	}
	h := http.Header{}
	for _, k := range []string{"Prefer"} {
		if v := calls[0].header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	resp, err := g.send(ctx, cl, owner, ownerRequest{method: http.MethodPost, path: "/", header: h, body: body})
	if err != nil {
		return nil, ownerFailure(err, "this transaction's resources")
	}
	if resp.status == http.StatusOK && !resp.trusted && !readsEverything(cl.p.Scopes) {
		// The built-in store filtered its answer itself (see scopefilter.go); an external
		// owner's searches and reads in the transaction are filtered here.
		filtered, ok := filterNestedBundles(cl.p.Scopes, calls, resp.body)
		if !ok {
			g.log.Warn("fhir owner answered a transaction with something other than a Bundle", "owner", owner, "request_id", cl.requestID)
			return nil, ownerFailure(errOwnerUnreachable, "this transaction's resources")
		}
		resp.body = filtered
	}
	return g.translate(cl, owner, "this transaction's resources", resp), nil
}

// entryOwner is the owner a transaction entry goes to, and how to name what it routes there.
func (g *fhirGateway) entryOwner(ctx context.Context, cl caller, table routing.Table, call fhirCall) (owner, what string, err error) {
	what = call.typ
	switch call.interaction {
	case interCreate, interUpdate:
		var cats []string
		if table.IsSplit(call.typ) {
			cats = resourceCategories(call.body)
			what += " (category " + strings.Join(cats, ", ") + ")"
		}
		owner, err = table.OwnerByCategories(call.typ, cats)
		return owner, what, routeError(err, true)
	case interSearch:
		owners, err := table.SearchOwners(call.typ, searchCategories(call.query))
		if err != nil {
			return "", what, routeError(err, false)
		}
		if len(owners) > 1 {
			return "", what, httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueType("business-rule"),
				"a search of "+call.typ+" without a category spans several owners; a transaction goes to one owner")

		}
		return owners[0], what, nil
	case interDelete:
		if call.id == "" {
			owner, err := conditionalDeleteOwner(table, call)
			return owner, what, err
		}
	case interHistoryType, interHistorySystem:
		owners := tenantOwners(table)
		if call.typ != "" {
			if owners, err = table.Owners(call.typ); err != nil {
				return "", what, routeError(err, false)
			}
		} else {
			what = "the history of every type"
		}
		if len(owners) != 1 {
			return "", what, httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueType("business-rule"),
				what+" spans several owners; a transaction goes to one owner")

		}
		return owners[0], what, nil
	}
	owners, err := table.Owners(call.typ)
	if err != nil {
		return "", what, routeError(err, false)
	}
	if len(owners) == 1 {
		return owners[0], what, nil
	}
	// A resource of a split type by id: find which owner has it.
	found, res, err := g.probe(ctx, cl, owners, fhirCall{interaction: interRead, method: http.MethodGet, typ: call.typ, id: call.id, header: http.Header{}})
	if err != nil {
		return "", what, err
	}
	if found == "" {
		return "", what, httpkit.NewOutcome(res.status, httpkit.IssueForStatus(res.status), call.typ+"/"+call.id+" not found")
	}
	return found, what, nil
}
