// Package fhirserver serves FHIR R4 REST (JSON) over one built-in store: read, vread, search,
// create, update, conditional create/update/delete, delete, history, batch and transaction
// Bundles. It is a plain net/http.Handler, so the gateway mounts it in-process as the
// "builtin" owner and `interop store` serves it alone. It serves one tenant per request,
// taken from the request context (WithTenant), never from a header.
package fhirserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

// DefaultMaxBodyBytes caps request bodies unless Options.MaxBodyBytes says otherwise.
const DefaultMaxBodyBytes = 8 << 20

// Options configure a Handler.
type Options struct {
	// BaseURL is the absolute URL the handler is served at (e.g. https://fhir.example/fhir),
	// used for fullUrl, Location and paging links. Empty means the request's own scheme and
	// host, at the root.
	BaseURL string
	// CursorKey signs paging cursors (see store.Query.CursorKey); give every replica the
	// same key. Nil means a per-process key.
	CursorKey []byte
	// MaxBodyBytes caps request bodies (413 beyond); 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Authorize, when set, decides whether the request's caller may perform interaction on
	// resourceType (403 otherwise), for each interaction and each Bundle entry. Nil allows
	// all: the caller has checked already.
	Authorize func(ctx context.Context, resourceType string, interaction auth.Interaction) bool
	// Logger logs failures (never resource bodies); nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves FHIR REST over a store.
type Handler struct {
	st   *store.Store
	opts Options
}

// New returns a Handler serving st.
func New(st *store.Store, opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	return &Handler{st: st, opts: opts}
}

type tenantKey struct{}

// WithTenant returns ctx carrying the tenant the Handler serves requests made with it.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant of ctx, "" when there is none.
func TenantFrom(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// ServeHTTP dispatches on method and path: /metadata, / (Bundles), /_history, /{type},
// /{type}/_search, /{type}/_history, /{type}/{id}, /{type}/{id}/_history[/{vid}].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !acceptsJSON(r) {
		writeOutcome(w, http.StatusNotAcceptable, fhir.IssueNotSupported, "only JSON is supported: use _format=json or Accept: application/fhir+json")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) == 1 && segs[0] == "metadata" {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSON(w, http.StatusOK, Capabilities())
		return
	}
	tenant := TenantFrom(r.Context())
	if tenant == "" {
		h.opts.Logger.Error("fhirserver: request without a tenant in its context")
		writeOutcome(w, http.StatusUnauthorized, fhir.IssueLogin, "no tenant: authenticate first")
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		writeOutcome(w, http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	rq, err := h.parse(r, segs)
	if err != nil {
		h.writeError(r.Context(), w, err)
		return
	}
	if rq.kind == kindBundle {
		h.bundle(w, r, tenant, rq)
		return
	}
	if !h.allowed(r.Context(), rq) {
		what := rq.typ
		if rq.kind == kindSystemHistory {
			what = "every type (a system history needs e.g. system/*.r)"
		}
		writeOutcome(w, http.StatusForbidden, fhir.IssueForbidden, "token scopes do not grant '"+string(rune(rq.interaction()))+"' on "+what)
		return
	}
	resp, err := h.exec(r.Context(), h.st, tenant, rq, h.base(r))
	if err != nil {
		h.writeError(r.Context(), w, err)
		return
	}
	h.write(w, resp, rq.prefer)
}

// allowed asks Authorize for the request's type; a system history needs its interaction on
// every type ("*").
func (h *Handler) allowed(ctx context.Context, rq request) bool {
	typ := rq.typ
	if rq.kind == kindSystemHistory {
		typ = "*"
	}
	return h.opts.Authorize == nil || h.opts.Authorize(ctx, typ, rq.interaction())
}

// mayRead reports whether the caller may read resources of typ: what an included resource
// needs, whatever the interaction that returns it.
func (h *Handler) mayRead(ctx context.Context, typ string) bool {
	return h.opts.Authorize == nil || h.opts.Authorize(ctx, typ, auth.Read)
}

// base is the absolute base URL of links.
func (h *Handler) base(r *http.Request) string {
	if h.opts.BaseURL != "" {
		return h.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// acceptsJSON honours _format and Accept: JSON only.
func acceptsJSON(r *http.Request) bool {
	if f := r.URL.Query().Get("_format"); f != "" {
		return isJSONType(f)
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if mt == "*/*" || mt == "application/*" || isJSONType(mt) {
			return true
		}
	}
	return false
}

func isJSONType(s string) bool {
	switch strings.TrimSpace(strings.ToLower(s)) {
	case "json", "application/json", "application/fhir+json", "application/json+fhir":
		return true
	}
	return false
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeOutcome(w, http.StatusMethodNotAllowed, fhir.IssueNotSupported, "method not allowed here; allowed: "+allow)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"internal error"}]}`)
	}
	w.Header().Set("Content-Type", fhir.MediaType+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeOutcome(w http.ResponseWriter, status int, code fhir.IssueType, diagnostics string) {
	severity := fhir.SeverityError
	if status < 400 {
		severity = fhir.SeverityInformation
	}
	writeJSON(w, status, fhir.NewOutcome(severity, code, diagnostics))
}

// statusError is an error with its HTTP status and issue code, safe to show.
type statusError struct {
	status int
	code   fhir.IssueType
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errStatus(status int, code fhir.IssueType, msg string) error {
	return &statusError{status: status, code: code, msg: msg}
}

// classify maps an error to a status, issue code and a diagnostic safe to return: store and
// parse errors describe the request; anything else is internal and reads "internal error".
func classify(err error) (int, fhir.IssueType, string, bool) {
	var se *statusError
	var pe *store.ParamError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se.status, se.code, se.msg, false
	case errors.As(err, new(*methodError)):
		return http.StatusMethodNotAllowed, fhir.IssueNotSupported, err.Error(), false
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large", false
	case errors.As(err, &pe):
		return http.StatusBadRequest, fhir.IssueNotSupported, pe.Error(), false
	case errors.Is(err, store.ErrBadCursor):
		return http.StatusBadRequest, fhir.IssueInvalid, "invalid or expired paging cursor: start the search again", false
	case errors.Is(err, store.ErrInvalidSearch):
		return http.StatusBadRequest, fhir.IssueInvalid, err.Error(), false
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, fhir.IssueNotFound, "resource not found", false
	case errors.Is(err, store.ErrGone):
		return http.StatusGone, fhir.IssueDeleted, "resource deleted", false
	case errors.Is(err, store.ErrVersionConflict):
		return http.StatusPreconditionFailed, fhir.IssueConflict, "version conflict: the resource's current version is not the one given in If-Match", false
	case errors.Is(err, store.ErrMultipleMatches):
		return http.StatusPreconditionFailed, fhir.IssueMultipleMatches, "the condition matches more than one resource: make the criteria more selective", false
	case errors.Is(err, fhir.ErrInvalidResource):
		return http.StatusBadRequest, fhir.IssueInvalid, err.Error(), false
	case errors.Is(err, db.ErrInvalidData):
		// The database refused the data itself (text that is not UTF-8, NUL, a lone
		// surrogate): the same request fails the same way, so it is the client's error.
		return http.StatusBadRequest, fhir.IssueInvalid, "the request holds text that cannot be stored (not UTF-8, NUL, or a lone surrogate)", false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, fhir.IssueTimeout, "request cancelled or timed out", true
	}
	return http.StatusInternalServerError, fhir.IssueException, "internal error", true
}

func (h *Handler) writeError(ctx context.Context, w http.ResponseWriter, err error) {
	var me *methodError
	if errors.As(err, &me) {
		methodNotAllowed(w, me.allow)
		return
	}
	status, code, msg, internal := classify(err)
	if internal {
		h.opts.Logger.ErrorContext(ctx, "fhir request failed", "error", err, "tenant", TenantFrom(ctx))
	}
	writeOutcome(w, status, code, msg)
}

// response is what an interaction produced: a resource, a Bundle, or neither.
type response struct {
	status   int
	resource *store.Resource
	bundle   *fhir.Bundle
	location string
	// deletedVersion is the deletion's version of a delete, for its ETag.
	deletedVersion int64
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

func (h *Handler) write(w http.ResponseWriter, resp response, prefer string) {
	switch {
	case resp.bundle != nil:
		body, err := resp.bundle.AppendJSON(nil)
		if err != nil {
			h.opts.Logger.Error("encode bundle", "error", err)
			writeOutcome(w, http.StatusInternalServerError, fhir.IssueException, "internal error")
			return
		}
		w.Header().Set("Content-Type", fhir.MediaType+"; charset=utf-8")
		w.WriteHeader(resp.status)
		_, _ = w.Write(body)
		return
	case resp.resource == nil:
		if resp.deletedVersion > 0 {
			w.Header().Set("ETag", etag(resp.deletedVersion))
		}
		w.WriteHeader(resp.status)
		return
	}
	r := resp.resource
	w.Header().Set("ETag", etag(r.VersionID))
	w.Header().Set("Last-Modified", r.LastUpdated.UTC().Format(http.TimeFormat))
	if resp.location != "" {
		w.Header().Set("Location", resp.location)
	}
	switch prefer {
	case "minimal":
		w.WriteHeader(resp.status)
	case "OperationOutcome":
		writeOutcome(w, resp.status, fhir.IssueInformational, "ok: "+r.Type+"/"+r.ID+" version "+strconv.FormatInt(r.VersionID, 10))
	default:
		w.Header().Set("Content-Type", fhir.MediaType+"; charset=utf-8")
		w.WriteHeader(resp.status)
		_, _ = w.Write(r.Body)
	}
}

// parseETag reads W/"3" (or "3", 3) as 3.
func parseETag(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	n, err := strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
	if err != nil || n <= 0 {
		return 0, errStatus(http.StatusBadRequest, fhir.IssueInvalid, `If-Match: want W/"<version>"`)
	}
	return n, nil
}

func httpDate(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// queryOf parses a query string, refusing malformed ones.
func queryOf(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errStatus(http.StatusBadRequest, fhir.IssueInvalid, "malformed query string")
	}
	return v, nil
}
