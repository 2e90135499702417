package owner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// BuiltinBase is the base URL the in-process built-in store is addressed by. It never leaves
// the process: whoever shows its answers rewrites URLs under it to its own base.
const BuiltinBase = "http://builtin.interop.invalid"

// Builtin is the built-in store as one tenant's owner: writes are typed calls of the store in
// the worker's process; searches and forwarded interactions are served by the store's FHIR
// handler (internal/fhirserver) in-process, with the tenant in the context. It also reads
// snapshots for the bulk export (SnapshotReader).
type Builtin struct {
	Store  *store.Store
	Tenant string
	// Handler serves the store's FHIR REST under BuiltinBase, reading the tenant with
	// fhirserver.TenantFrom (see Resolver).
	Handler http.Handler
}

var _ SnapshotReader = (*Builtin)(nil)

// Label is routing.Builtin.
func (b *Builtin) Label() string { return routing.Builtin }

// BaseURL is BuiltinBase.
func (b *Builtin) BaseURL() string { return BuiltinBase }

// Update writes typ/id in the store.
func (b *Builtin) Update(ctx context.Context, typ, id string, body []byte) (WriteResult, error) {
	r, err := b.Store.Update(ctx, b.Tenant, typ, id, body)
	return b.result(r, err, typ)
}

// ConditionalCreate creates body in the store unless a typ carries ident.
func (b *Builtin) ConditionalCreate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	if err := sameType(typ, body); err != nil {
		return WriteResult{}, refused(b.Label(), typ, err)
	}
	r, err := b.Store.ConditionalCreate(ctx, b.Tenant, body, ident)
	return b.result(r, err, typ)
}

// ConditionalUpdate updates, newest event winning, or creates the typ carrying ident; the
// store compares and writes under the resource's lock.
func (b *Builtin) ConditionalUpdate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	if err := sameType(typ, body); err != nil {
		return WriteResult{}, refused(b.Label(), typ, err)
	}
	r, err := b.Store.ConditionalUpdate(ctx, b.Tenant, body, ident)
	return b.result(r, err, typ)
}

// ConditionalUpdateMerge merges under the stored resource's lock.
func (b *Builtin) ConditionalUpdateMerge(ctx context.Context, typ string, body []byte, ident fhir.Identifier, merge MergeFunc) (WriteResult, error) {
	if err := sameType(typ, body); err != nil {
		return WriteResult{}, refused(b.Label(), typ, err)
	}
	r, err := b.Store.ConditionalUpdateMerge(ctx, b.Tenant, body, ident, merge)
	return b.result(r, err, typ)
}

// ConditionalPatch patches under the stored resource's lock.
func (b *Builtin) ConditionalPatch(ctx context.Context, typ string, patch []byte, ident fhir.Identifier) (WriteResult, error) {
	r, err := b.Store.ConditionalPatch(ctx, b.Tenant, typ, ident, patch)
	if errors.Is(err, store.ErrNotFound) {
		return WriteResult{}, fmt.Errorf("%s %s: %w", typ, ident.Token(), ErrTargetMissing)
	}
	return b.result(r, err, typ+" patch")
}

// result classifies the store's answer: what no retry can mend is a refusal.
func (b *Builtin) result(r store.WriteResult, err error, what string) (WriteResult, error) {
	switch {
	case errors.Is(err, fhir.ErrInvalidResource), errors.Is(err, store.ErrMultipleMatches),
		errors.Is(err, db.ErrInvalidData): // data the database cannot hold fails the same way again
		return WriteResult{}, refused(b.Label(), what, err)
	case err != nil:
		return WriteResult{}, fmt.Errorf("builtin store: %w", err)
	}
	return WriteResult{ID: r.ID, Action: Action(r.Action), Stale: r.Stale}, nil
}

// SearchURL is typ's search under BuiltinBase.
func (b *Builtin) SearchURL(typ string, query url.Values) string {
	return BuiltinBase + "/" + typ + "?" + query.Encode()
}

// OpenPage serves one page of a search in-process.
func (b *Builtin) OpenPage(ctx context.Context, link string, maxBytes int64) (*Page, error) {
	if !underBuiltin(link) {
		return nil, ErrNotUnderBase
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("build search request: %w", err)
	}
	req.Header.Set("Accept", fhir.MediaType)
	req.Header.Set("Prefer", "handling=strict")
	resp := b.serve(ctx, req)
	if resp.Status < 200 || resp.Status >= 300 {
		return nil, statusError(resp.Status, resp.Body)
	}
	if int64(len(resp.Body)) > maxBytes {
		return nil, ErrPageTooLarge
	}
	return &Page{link: link, body: bytes.NewReader(resp.Body), close: func() error { return nil },
		maxBytes: maxBytes, underBase: underBuiltin}, nil
}

// Do serves one interaction in-process: no socket, no serialisation of the request beyond
// what the handler reads, and the tenant in the context, never in a header. The caller's
// Authorization is not passed on: the handler authorises from the context (Resolver).
func (b *Builtin) Do(ctx context.Context, r Request) (*Response, error) {
	req, err := newRequest(ctx, BuiltinBase, r)
	if err != nil {
		return nil, err
	}
	req.Header.Del("Authorization")
	resp := b.serve(ctx, req)
	if resp.Status == http.StatusServiceUnavailable && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, ErrTimeout
	}
	return resp, nil
}

// serve calls the handler in-process for the tenant.
func (b *Builtin) serve(ctx context.Context, req *http.Request) *Response {
	w := &bufferedResponse{header: http.Header{}}
	b.Handler.ServeHTTP(w, req.WithContext(withTenant(ctx, b.Tenant)))
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &Response{Status: w.status, Header: w.header, Body: w.body.Bytes(), Trusted: true}
}

// ExportPage reads the tenant's resources as they were at q.TransactionTime (q.Tenant is the
// owner's).
func (b *Builtin) ExportPage(ctx context.Context, q store.ExportQuery, fn func(id string, line []byte) error) (int, string, error) {
	q.Tenant = b.Tenant
	return b.Store.ExportPage(ctx, q, fn)
}

// ExportDeletedPage reads the ids deleted within q's bounds.
func (b *Builtin) ExportDeletedPage(ctx context.Context, q store.ExportQuery) ([]string, error) {
	q.Tenant = b.Tenant
	return b.Store.ExportDeletedPage(ctx, q)
}

func underBuiltin(link string) bool {
	rest, ok := strings.CutPrefix(link, BuiltinBase)
	return ok && strings.HasPrefix(rest, "/")
}

// sameType refuses a body that is not a typ: the store writes the body's own type, an owner
// over HTTP the URL's.
func sameType(typ string, body []byte) error {
	head, err := fhir.ReadHead(body)
	if err != nil {
		return err
	}
	if head.ResourceType != typ {
		return fmt.Errorf("%w: the body is a %s, not a %s", fhir.ErrInvalidResource, head.ResourceType, typ)
	}
	return nil
}

// newRequest builds r against base, asking for FHIR JSON.
func newRequest(ctx context.Context, base string, r Request) (*http.Request, error) {
	target := base + r.Path
	if r.Query != "" {
		target += "?" + r.Query
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build owner request: %w", err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", fhir.MediaType)
	if r.Body != nil {
		req.Header.Set("Content-Type", fhir.MediaType)
	}
	return req, nil
}

// bufferedResponse is the http.ResponseWriter of an in-process call.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// statusError is the StatusError of the built-in store's non-success answer, permanent ones marked ErrRefused.
func statusError(status int, body []byte) error {
	se := &StatusError{Status: status}
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" && len(oo.Issue) > 0 {
		se.Diagnostics = oo.Issue[0].Diagnostics
	}
	if se.Permanent() {
		return refused(routing.Builtin, "the search", se)
	}
	return se
}
