package fhirapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/owner"
	"github.com/nhp/interop/internal/routing"
)

// builtinBase is the base URL the in-process built-in store is addressed by. It never leaves
// the process: every URL in its answers is rewritten to the gateway's base.
const builtinBase = owner.BuiltinBase

// ownerRequest is one request to one owner, relative to the owner's base URL.
type ownerRequest struct {
	method string
	// path starts with "/" (e.g. "/Patient/123"); query is encoded, without '?'.
	path, query string
	header      http.Header
	body        []byte
}

// ownerResponse is an owner's answer, read whole.
type ownerResponse struct {
	status int
	header http.Header
	body   []byte
	// trusted: the built-in store wrote the body, which needs no check that it is JSON.
	trusted bool
}

// errOwnerUnreachable is a transport failure talking to an owner; errOwnerTimeout one that
// ran out of time.
var (
	errOwnerUnreachable = owner.ErrUnreachable
	errOwnerTimeout     = owner.ErrTimeout
	errOwnerTooLarge    = owner.ErrTooLarge
)

// ownerBase is the base URL requests to owner are made against.
func ownerBase(label string) string { return owner.BaseOf(label) }

// send makes one request to one owner (owner.Owner, whichever kind it is) with the caller's
// Authorization header, which an external owner verifies itself, and the caller's scopes in
// the context, which the in-process built-in store checks again for each Bundle entry.
func (g *fhirGateway) send(ctx context.Context, cl caller, label string, r ownerRequest) (*ownerResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.OwnerTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, scopesKey{}, cl.p.Scopes)
	header := http.Header{}
	for k, vs := range r.header {
		header[k] = vs
	}
	if cl.requestID != "" {
		header.Set("X-Request-Id", cl.requestID)
	}
	if cl.authorization != "" {
		header.Set("Authorization", cl.authorization)
	}
	resp, err := g.owners.Resolve(cl.p.Tenant, label).Do(ctx, owner.Request{
		Method: r.method, Path: r.path, Query: r.query, Header: header, Body: r.body,
	})
	if err != nil {
		g.log.Warn("fhir owner request failed", "owner", label, "method", r.method, "path", r.path,
			"request_id", cl.requestID, "error", err)
		return nil, err
	}
	return &ownerResponse{status: resp.Status, header: resp.Header, body: resp.Body, trusted: resp.Trusted}, nil
}

// forward sends one interaction to owner and translates the answer.
func (g *fhirGateway) forward(ctx context.Context, cl caller, owner string, call fhirCall) (*fhirResult, error) {
	g.opts.Routed.Record(cl.p.Tenant, call.typ, owner, call.interaction)
	resp, err := g.send(ctx, cl, owner, ownerRequestOf(call))
	if err != nil {
		return nil, ownerFailure(err, call.typ)
	}
	return g.translate(cl, owner, call.typ, resp), nil
}

// ownerRequestOf is the owner request of an interaction.
func ownerRequestOf(call fhirCall) ownerRequest {
	r := ownerRequest{method: call.method, header: call.header, body: call.body}
	if r.header == nil {
		r.header = http.Header{}
	}
	path := "/" + call.typ
	switch call.interaction {
	case interRead, interDelete:
		if call.id != "" { // a conditional delete has criteria instead
			path += "/" + call.id
		}
	case interVRead:
		path += "/" + call.id + "/_history/" + call.vid
	case interHistory:
		path += "/" + call.id + "/_history"
	case interUpdate:
		if call.id != "" {
			path += "/" + call.id
		}
	}
	r.path = path
	if len(call.query) > 0 {
		r.query = call.query.Encode()
	}
	return r
}

// ownerFailure is the OperationOutcome for a transport failure: 504 when the owner ran out of
// time, else 502. The owner is not named: its address is internal.
func ownerFailure(err error, typ string) error {
	switch {
	case errors.Is(err, errOwnerTimeout):
		return httpkit.NewOutcome(http.StatusGatewayTimeout, fhir.IssueTimeout, "the service that owns "+typ+" did not answer in time")
	case errors.Is(err, errOwnerUnreachable):
		return httpkit.NewOutcome(http.StatusBadGateway, fhir.IssueTransient, "the service that owns "+typ+" is not reachable")
	case errors.Is(err, errOwnerTooLarge):
		return httpkit.NewOutcome(http.StatusBadGateway, fhir.IssueTooLong, "the answer of the service that owns "+typ+" is too large")
	}
	return err
}

// relayedHeaders are the owner response headers a client sees (URLs among them rewritten).
var relayedHeaders = []string{"ETag", "Last-Modified", "Location", "Content-Location", "Retry-After"}

// translate turns an owner's answer into the gateway's: URLs under the owner's base become
// URLs under the gateway's, a server failure becomes a 502 (or 504) without the owner's text,
// and a refusal keeps its status with an OperationOutcome body.
func (g *fhirGateway) translate(cl caller, owner, typ string, resp *ownerResponse) *fhirResult {
	res := &fhirResult{status: resp.status, header: http.Header{}}
	if resp.status >= 500 {
		g.log.Warn("fhir owner failed", "owner", owner, "status", resp.status, "resource_type", typ, "request_id", cl.requestID)
		if resp.status == http.StatusGatewayTimeout {
			res.body = outcomeBody(fhir.SeverityFatal, fhir.IssueTimeout, "the service that owns "+typ+" timed out")
		} else {
			res.status = http.StatusBadGateway
			res.body = outcomeBody(fhir.SeverityFatal, fhir.IssueTransient, "the service that owns "+typ+" failed (status "+strconv.Itoa(resp.status)+")")
		}
		return res
	}
	for _, k := range relayedHeaders {
		if v := resp.header.Get(k); v != "" {
			if k == "Location" || k == "Content-Location" {
				if v = g.publicURL(owner, v); v == "" {
					continue
				}
			}
			res.header.Set(k, v)
		}
	}
	switch {
	case resp.status >= 400:
		if isOutcome(resp.body) {
			res.body = g.rewriteBody(owner, resp.body)
		} else {
			res.body = outcomeBody(fhir.SeverityError, httpkit.IssueForStatus(resp.status), http.StatusText(resp.status))
		}
	case len(bytes.TrimSpace(resp.body)) > 0:
		// The in-process store writes JSON with encoding/json; an external owner's body is
		// checked before a client sees it as FHIR JSON.
		if !resp.trusted && !json.Valid(resp.body) {
			g.log.Warn("fhir owner answered invalid JSON", "owner", owner, "status", resp.status, "request_id", cl.requestID)
			return &fhirResult{status: http.StatusBadGateway, header: http.Header{},
				body: outcomeBody(fhir.SeverityFatal, fhir.IssueProcessing, "the service that owns "+typ+" answered something that is not FHIR JSON")}
		}
		res.body = g.rewriteBody(owner, resp.body)
	}
	return res
}

// rewriteBody replaces the owner's base URL in a body with the gateway's, so that no owner
// address reaches a client (fullUrls, links, absolute references).
func (g *fhirGateway) rewriteBody(owner string, body []byte) []byte {
	base := []byte(ownerBase(owner))
	if !bytes.Contains(body, base) {
		return body
	}
	// JSON may escape '/' as "\/": such spellings are left as they are; owners do not use them.
	return bytes.ReplaceAll(body, base, []byte(g.base))
}

// publicURL maps a URL an owner gave (absolute under its base, or relative to it) to the
// gateway's, or "" when it cannot be mapped without showing the owner's address.
func (g *fhirGateway) publicURL(owner, raw string) string {
	base := ownerBase(owner)
	if rest, ok := strings.CutPrefix(raw, base); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		return g.base + rest
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if !u.IsAbs() && u.Host == "" {
		return g.base + "/" + strings.TrimLeft(raw, "/")
	}
	// An absolute URL elsewhere (an owner behind another public name): keep the part from the
	// resource type on.
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i, s := range segs {
		if routing.IsResourceType(s) {
			out := g.base + "/" + strings.Join(segs[i:], "/")
			if u.RawQuery != "" {
				out += "?" + u.RawQuery
			}
			return out
		}
	}
	return ""
}

// ownerRelative returns link (an owner's paging link) relative to the owner's base, for a
// paging cursor: the owner's address never goes into a cursor. path is the first page's path
// (e.g. /Observation), which a link to elsewhere is read against. ok is false when the link
// cannot be followed.
func ownerRelative(owner, path, link string) (string, bool) {
	base := ownerBase(owner)
	if rest, ok := strings.CutPrefix(link, base); ok && strings.HasPrefix(rest, "/") {
		return rest, true
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", false
	}
	if !u.IsAbs() && u.Host == "" && !strings.HasPrefix(link, "//") {
		p := "/" + strings.TrimLeft(u.Path, "/")
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		return p, true
	}
	// Elsewhere: the page's query against the first page's path.
	if u.RawQuery == "" {
		return "", false
	}
	return path + "?" + u.RawQuery, true
}

// scopesKey carries the caller's scopes into the in-process built-in store, which checks them
// again for each Bundle entry.
type scopesKey struct{}

// newBuiltinHandler serves the built-in store in-process under builtinBase.
func newBuiltinHandler(d Deps) http.Handler {
	var key []byte
	if len(d.FHIR.CursorKey) > 0 {
		// The store's cursors get a key of their own, derived from the gateway's.
		m := hmac.New(sha256.New, d.FHIR.CursorKey)
		m.Write([]byte("interop builtin store paging cursor"))
		key = m.Sum(nil)
	}
	return fhirserver.New(d.Store, fhirserver.Options{
		BaseURL:      builtinBase,
		CursorKey:    key,
		MaxBodyBytes: d.MaxBodyBytes,
		Logger:       d.Logger,
		Authorize: func(ctx context.Context, typ string, in auth.Interaction) bool {
			scopes, ok := ctx.Value(scopesKey{}).(auth.Scopes)
			return ok && scopes.Allows(typ, in)
		},
	})
}
