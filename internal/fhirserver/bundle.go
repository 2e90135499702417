package fhirserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

func jsonMarshal(v any) (json.RawMessage, error) { return json.Marshal(v) }

// bundle serves POST / with a batch or transaction Bundle.
func (h *Handler) bundle(w http.ResponseWriter, r *http.Request, tenant string, rq request) {
	var in fhir.Bundle
	if err := json.Unmarshal(rq.body, &in); err != nil || in.ResourceType != "Bundle" {
		writeOutcome(w, http.StatusBadRequest, fhir.IssueStructure, "POST to the base takes a batch or transaction Bundle")
		return
	}
	if err := fhir.CheckFullURLs(in); err != nil {
		writeOutcome(w, http.StatusBadRequest, fhir.IssueInvalid, err.Error())
		return
	}
	base := h.base(r)
	entries := make([]request, len(in.Entry))
	for i, e := range in.Entry {
		erq, err := h.entryRequest(e, base, rq.prefer)
		if err != nil {
			if in.Type == "batch" {
				entries[i] = request{kind: -1}
				continue
			}
			status, code, msg, _ := classify(err)
			writeOutcome(w, status, code, fmt.Sprintf("entry %d: %s", i, msg))
			return
		}
		entries[i] = erq
	}
	switch in.Type {
	case "batch":
		h.batch(r.Context(), w, tenant, in, entries, base, rq.prefer)
	case fhir.BundleTransaction:
		h.transaction(r.Context(), w, tenant, in, entries, base, rq.prefer)
	default:
		writeOutcome(w, http.StatusBadRequest, fhir.IssueInvalid, "Bundle.type must be batch or transaction")
	}
}

// entryRequest reads a Bundle entry's request: the URL is relative to the base (or absolute
// under it).
func (h *Handler) entryRequest(e fhir.BundleEntry, base, prefer string) (request, error) {
	if e.Request == nil || e.Request.Method == "" || e.Request.URL == "" {
		return request{}, errStatus(http.StatusBadRequest, fhir.IssueRequired, "entry.request with method and url is required")
	}
	raw := strings.TrimPrefix(e.Request.URL, base+"/")
	if strings.Contains(raw, "://") {
		return request{}, errStatus(http.StatusBadRequest, fhir.IssueNotSupported, "entry.request.url must be relative to this server")
	}
	path, rawQuery, _ := strings.Cut(raw, "?")
	query, err := queryOf(rawQuery)
	if err != nil {
		return request{}, err
	}
	rq, err := route(strings.ToUpper(e.Request.Method), strings.Split(strings.Trim(path, "/"), "/"), query)
	if err != nil {
		return request{}, err
	}
	if rq.kind == kindBundle || (rq.kind == kindSearch && strings.HasSuffix(path, "_search")) {
		return request{}, errStatus(http.StatusBadRequest, fhir.IssueNotSupported, "this interaction is not supported in a Bundle entry")
	}
	rq.body, rq.ifNoneExist, rq.ifMatch, rq.prefer = e.Resource, e.Request.IfNoneExist, e.Request.IfMatch, prefer
	switch rq.kind {
	case kindCreate, kindUpdate, kindCondUpdate:
		if len(rq.body) == 0 {
			return request{}, errStatus(http.StatusBadRequest, fhir.IssueRequired, "entry.resource is required for "+e.Request.Method)
		}
	}
	return rq, nil
}

// entryResponse renders one interaction's result as a response entry.
func entryResponse(resp response, base, prefer string) fhir.BundleEntry {
	e := fhir.BundleEntry{Response: &fhir.EntryResponse{Status: strconv.Itoa(resp.status) + " " + http.StatusText(resp.status), Location: resp.location}}
	switch {
	case resp.resource != nil:
		r := resp.resource
		e.FullURL = base + "/" + r.Type + "/" + r.ID
		e.Response.Etag = etag(r.VersionID)
		e.Response.LastModified = httpDate(r.LastUpdated)
		if prefer != "minimal" {
			e.Resource = r.Body
		}
	case resp.bundle != nil:
		raw, err := json.Marshal(resp.bundle)
		if err == nil {
			e.Resource = raw
		}
	case resp.deletedVersion > 0:
		e.Response.Etag = etag(resp.deletedVersion)
	}
	return e
}

func (h *Handler) errorEntry(ctx context.Context, err error) fhir.BundleEntry {
	status, code, msg, internal := classify(err)
	if internal {
		h.opts.Logger.ErrorContext(ctx, "fhir bundle entry failed", "error", err, "tenant", TenantFrom(ctx))
	}
	oo, _ := json.Marshal(fhir.NewOutcome(fhir.SeverityError, code, msg))
	return fhir.BundleEntry{Response: &fhir.EntryResponse{Status: strconv.Itoa(status) + " " + http.StatusText(status), Outcome: oo}}
}

// batch runs every entry on its own: one failing does not stop the others.
func (h *Handler) batch(ctx context.Context, w http.ResponseWriter, tenant string, in fhir.Bundle, entries []request, base, prefer string) {
	out := &fhir.Bundle{ResourceType: "Bundle", Type: "batch-response"}
	for i, rq := range entries {
		if rq.kind < 0 {
			_, err := h.entryRequest(in.Entry[i], base, prefer)
			out.Entry = append(out.Entry, h.errorEntry(ctx, err))
			continue
		}
		if !h.allowed(ctx, rq) {
			out.Entry = append(out.Entry, h.errorEntry(ctx, errStatus(http.StatusForbidden, fhir.IssueForbidden, "token scopes do not grant this interaction on "+rq.typ)))
			continue
		}
		resp, err := h.exec(ctx, h.st, tenant, rq, base)
		if err != nil {
			out.Entry = append(out.Entry, h.errorEntry(ctx, err))
			continue
		}
		out.Entry = append(out.Entry, entryResponse(resp, base, prefer))
	}
	h.write(w, response{status: http.StatusOK, bundle: out}, "")
}

// entryError is a transaction entry's failure: the whole transaction is rolled back.
type entryError struct {
	index int
	err   error
}

func (e *entryError) Error() string { return fmt.Sprintf("entry %d: %v", e.index, e.err) }
func (e *entryError) Unwrap() error { return e.err }

// transaction runs every entry in one database transaction: all apply or none. Creates get
// their ids first, so that urn:uuid references between entries are rewritten to them; then
// conditional creates, then conditional updates, run (their results resolve their fullUrls
// too; a conditional entry cannot refer to a later conditional entry of its kind), then the
// rest in FHIR's order: DELETE, POST, PUT, GET.
func (h *Handler) transaction(ctx context.Context, w http.ResponseWriter, tenant string, in fhir.Bundle, entries []request, base, prefer string) {
	for _, rq := range entries {
		if !h.allowed(ctx, rq) {
			writeOutcome(w, http.StatusForbidden, fhir.IssueForbidden, "token scopes do not grant every interaction of this transaction ("+rq.typ+")")
			return
		}
	}
	results := make([]response, len(entries))
	err := h.st.InTx(ctx, func(tx *store.Tx) error {
		refs := map[string]string{}
		for i, rq := range entries {
			full := in.Entry[i].FullURL
			switch {
			case rq.kind == kindCreate && rq.ifNoneExist == "":
				entries[i].assignedID = uuid.NewString()
				if full != "" {
					refs[full] = rq.typ + "/" + entries[i].assignedID
				}
			case rq.kind == kindUpdate && full != "":
				refs[full] = rq.typ + "/" + rq.id
			}
		}
		run := func(i int) error {
			rq := entries[i]
			if len(rq.body) > 0 {
				body, err := fhir.RewriteReferences(rq.body, refs)
				if err != nil {
					return &entryError{i, err}
				}
				rq.body = body
			}
			resp, err := h.exec(ctx, tx, tenant, rq, base)
			if err != nil {
				return &entryError{i, err}
			}
			results[i] = resp
			if full := in.Entry[i].FullURL; full != "" && resp.resource != nil {
				refs[full] = resp.resource.Type + "/" + resp.resource.ID
			}
			return nil
		}
		done := make([]bool, len(entries))
		for _, conditional := range []func(request) bool{
			func(rq request) bool { return rq.kind == kindCreate && rq.ifNoneExist != "" },
			func(rq request) bool { return rq.kind == kindCondUpdate },
		} {
			for i, rq := range entries {
				if conditional(rq) {
					if err := run(i); err != nil {
						return err
					}
					done[i] = true
				}
			}
		}
		for _, phase := range [][]kind{{kindDelete, kindCondDelete}, {kindCreate}, {kindUpdate, kindCondUpdate}, {kindRead, kindVRead, kindSearch, kindHistory, kindTypeHistory, kindSystemHistory}} {
			for i, rq := range entries {
				if done[i] || !containsKind(phase, rq.kind) {
					continue
				}
				if err := run(i); err != nil {
					return err
				}
				done[i] = true
			}
		}
		return nil
	})
	if err != nil {
		status, code, msg, internal := classify(err)
		if internal {
			h.opts.Logger.ErrorContext(ctx, "fhir transaction failed", "error", err, "tenant", tenant)
		}
		var ee *entryError
		if errors.As(err, &ee) {
			msg = fmt.Sprintf("transaction rolled back: entry %d failed: %s", ee.index, msg)
		}
		writeOutcome(w, status, code, msg)
		return
	}
	out := &fhir.Bundle{ResourceType: "Bundle", Type: fhir.BundleTransactionResponse}
	for _, resp := range results {
		out.Entry = append(out.Entry, entryResponse(resp, base, prefer))
	}
	h.write(w, response{status: http.StatusOK, bundle: out}, "")
}

func containsKind(ks []kind, k kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
