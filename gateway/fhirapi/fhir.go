package fhirapi

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/owner"
	"github.com/nhp/interop/internal/routing"
)

// Options configure how the FHIR facade reaches the services that own resources. The zero
// value serves the built-in store (over Deps.Store) in-process and reaches external owners
// with a default HTTP client.
type Options struct {
	// Builtin serves the built-in store's FHIR REST API (internal/fhirserver). The gateway
	// calls it in-process, with the caller's tenant in the request context; nil builds one
	// over Deps.Store.
	Builtin http.Handler
	// HTTP reaches external owners; the caller's Authorization header is forwarded to them.
	// Nil means a client through OwnerPolicy without a global timeout (OwnerTimeout bounds
	// each request).
	HTTP *http.Client
	// OwnerPolicy decides which addresses the default client may dial (netguard, checked
	// after DNS resolution); nil refuses loopback, private, link-local, multicast,
	// unspecified and cloud metadata addresses.
	OwnerPolicy *netguard.Policy
	// CursorKey signs the paging cursors of searches (HMAC-SHA256). Replicas must share it;
	// nil means a random key per process, so that a cursor is only good on the replica that
	// issued it.
	CursorKey []byte
	// OwnerTimeout bounds one request to one owner; 0 means 10s.
	OwnerTimeout time.Duration
	// FanoutConcurrency bounds the owners asked at once by one fan-out; 0 means 8.
	FanoutConcurrency int
	// RoutingCacheTTL is how long a tenant's routing table is reused before it is read from
	// the database again: a rule change reaches every replica within it. 0 means 1s; a
	// negative value reads the table on every request.
	RoutingCacheTTL time.Duration
	// MaxOwnerResponseBytes caps what is read from one owner's answer; 0 means 64 MiB.
	MaxOwnerResponseBytes int64
	// Routed counts routed requests for the FhirRequestRouted event; nil counts nothing.
	Routed *RoutedEvents
	// Profiles returns a tenant's national profiles by resource type, declared in the
	// CapabilityStatement beside US Core and IPS; nil declares none.
	Profiles func(tenant string) map[string][]string
	// TokenURL, when set, is declared in the CapabilityStatement as the SMART token endpoint.
	TokenURL string
}

// FHIR restful interaction codes (http://hl7.org/fhir/restful-interaction), used in routed
// events, CapabilityStatements and scope checks.
const (
	interRead    = "read"
	interVRead   = "vread"
	interHistory = "history-instance"
	// interHistoryType and interHistorySystem are GET Type/_history and GET /_history.
	interHistoryType   = "history-type"
	interHistorySystem = "history-system"
	interSearch        = "search-type"
	interCreate        = "create"
	interUpdate        = "update"
	interDelete        = "delete"
	interBatch         = "batch"
	interTransact      = "transaction"
)

// scopeOf is the SMART v2 permission an interaction needs.
func scopeOf(interaction string) auth.Interaction {
	switch interaction {
	case interSearch:
		return auth.Search
	case interCreate:
		return auth.Create
	case interUpdate:
		return auth.Update
	case interDelete:
		return auth.Delete
	}
	return auth.Read
}

// fhirGateway is the FHIR facade: it authenticates nothing itself (the middleware does),
// checks scopes, routes each interaction by the tenant's routing table and relays owners'
// answers under its own base URL.
type fhirGateway struct {
	d       Deps
	opts    Options
	builtin http.Handler
	client  *http.Client
	// owners resolves a routing table's owner labels to owners; it holds no credentials of its
	// own: each request carries its caller's.
	owners *owner.Resolver
	key    []byte
	tables *tableCache
	log    *slog.Logger
	// base is the public base of the FHIR API, e.g. https://host/fhir.
	base string
}

// fhirRoutes registers the FHIR REST API on the /fhir group f. Everything but metadata needs
// a token.
func fhirRoutes(f *echo.Group, h *API) {
	g := newFHIRGateway(h.d)
	f.GET("/metadata", g.metadata)
	authed := f.Group("", h.authenticate, httpkit.CheckText)
	authed.POST("", g.bundle)
	authed.POST("/", g.bundle)
	authed.GET("/_history", g.systemHistory)
	authed.GET("/:type/_history", g.typeHistory)
	authed.GET("/:type", g.search)
	authed.POST("/:type/_search", g.search)
	authed.POST("/:type", g.create)
	authed.PUT("/:type", g.conditionalUpdate)
	authed.GET("/:type/:id", g.read)
	authed.PUT("/:type/:id", g.update)
	authed.DELETE("/:type", g.conditionalDelete)
	authed.DELETE("/:type/:id", g.delete)
	authed.GET("/:type/:id/_history", g.history)
	authed.GET("/:type/:id/_history/:vid", g.vread)
	// Interactions the facade does not offer answer 405 with what is allowed, not 404.
	authed.PATCH("/:type", methodNotAllowed("GET, POST, PUT, DELETE"))
	authed.PATCH("/:type/:id", methodNotAllowed("GET, PUT, DELETE"))
	authed.POST("/:type/:id", methodNotAllowed("GET, PUT, DELETE"))
	authed.GET("", methodNotAllowed("POST"))
}

func methodNotAllowed(allow string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, allow)
		return httpkit.NewOutcome(http.StatusMethodNotAllowed, fhir.IssueNotSupported,
			c.Request().Method+" is not supported here (allowed: "+allow+")")

	}
}

func newFHIRGateway(d Deps) *fhirGateway {
	o := d.FHIR
	if o.OwnerTimeout <= 0 {
		o.OwnerTimeout = 10 * time.Second
	}
	if o.FanoutConcurrency <= 0 {
		o.FanoutConcurrency = 8
	}
	if o.RoutingCacheTTL == 0 {
		o.RoutingCacheTTL = time.Second
	}
	if o.MaxOwnerResponseBytes <= 0 {
		o.MaxOwnerResponseBytes = 64 << 20
	}
	g := &fhirGateway{d: d, opts: o, builtin: o.Builtin, client: o.HTTP, key: o.CursorKey, log: d.Logger,
		base: strings.TrimRight(d.BaseURL, "/") + "/fhir"}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.builtin == nil {
		g.builtin = newBuiltinHandler(d)
	}
	if g.client == nil {
		// No proxy from the environment: a proxy would dial the owner out of the guard's reach.
		tr := o.OwnerPolicy.Transport()
		tr.ResponseHeaderTimeout = o.OwnerTimeout
		g.client = &http.Client{Transport: tr}
	}
	g.owners = &owner.Resolver{Store: d.Store, Handler: g.builtin, HTTP: g.client, MaxResponseBytes: o.MaxOwnerResponseBytes}
	if len(g.key) == 0 {
		g.key = make([]byte, 32)
		_, _ = rand.Read(g.key)
	}
	g.tables = &tableCache{pool: d.Pool, defaultOwner: d.DefaultOwner, ttl: o.RoutingCacheTTL}
	return g
}

// caller is who a request is made for: the tenant every owner confines it to, and the
// Authorization header forwarded to external owners.
type caller struct {
	p             auth.Principal
	authorization string
	requestID     string
}

func callerOf(c echo.Context) caller {
	return caller{
		p:             httpkit.Principal(c),
		authorization: c.Request().Header.Get(echo.HeaderAuthorization),
		requestID:     c.Response().Header().Get(echo.HeaderXRequestID),
	}
}

// fhirCall is one FHIR interaction, from a REST request or a batch entry.
type fhirCall struct {
	interaction string
	method      string
	typ, id     string
	vid         string
	// query holds search parameters, a conditional update's condition, or history options.
	query url.Values
	// header holds the forwarded request headers (If-Match, If-None-Exist, Prefer, …).
	header http.Header
	body   []byte
}

// fhirResult is an answer in the gateway's terms: owner URLs already rewritten.
type fhirResult struct {
	status int
	header http.Header
	body   []byte
}

// forwardedRequestHeaders are the request headers an owner sees besides Authorization.
var forwardedRequestHeaders = []string{"If-Match", "If-None-Match", "If-None-Exist", "If-Modified-Since", "Prefer"}

func requestHeaders(r *http.Request) http.Header {
	h := http.Header{}
	for _, k := range forwardedRequestHeaders {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	normalizeIfNoneExist(h)
	return h
}

// searchHeaders are the request headers a search or history sends each of its owners:
// Prefer, whose handling=lenient (or strict) each owner applies to the parameters it does not
// support (FHIR search: strict is the default).
func searchHeaders(r *http.Request) http.Header {
	h := http.Header{}
	for _, v := range r.Header.Values("Prefer") {
		h.Add("Prefer", v)
	}
	return h
}

// lenient reports whether call asked its owners to ignore parameters they do not support.
func lenient(call fhirCall) bool { return fhir.ParsePrefer(call.header.Values("Prefer")).Lenient }

// normalizeIfNoneExist drops the '?' some clients put before If-None-Exist's query.
func normalizeIfNoneExist(h http.Header) {
	if v := h.Get("If-None-Exist"); strings.HasPrefix(v, "?") {
		h.Set("If-None-Exist", v[1:])
	}
}

func (g *fhirGateway) pathType(c echo.Context) (string, error) {
	typ := c.Param("type")
	if !routing.IsResourceType(typ) {
		return "", httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotSupported, "unknown resource type "+strconv.Quote(typ))
	}
	return typ, nil
}

func (g *fhirGateway) pathID(c echo.Context, typ string) (string, error) {
	id := c.Param("id")
	if !fhir.ValidID(id) {
		return "", httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, typ+"/"+id+" is not a valid id")
	}
	return id, nil
}

// run checks the scope, routes and answers one REST interaction.
func (g *fhirGateway) run(c echo.Context, call fhirCall) error {
	cl := callerOf(c)
	if err := httpkit.RequireInteraction(c, call.typ, scopeOf(call.interaction)); err != nil {
		return err
	}
	res, err := g.dispatch(c.Request().Context(), cl, call)
	if err != nil {
		return err
	}
	noteAudit(c, call, res)
	return writeResult(c, res)
}

// noteAudit tells the audit record of c the Patient whose record a single-resource
// interaction touched: read from the resource written and the one answered (the route alone
// names only the resource, and a Patient only when it is one).
func noteAudit(c echo.Context, call fhirCall, res *fhirResult) {
	if !auditlog.Active(c) {
		return
	}
	d := auditlog.Note(c)
	switch call.interaction {
	case interCreate, interUpdate:
		d.Patients = append(d.Patients, audit.PatientsOfResource(call.body)...)
	case interRead, interVRead:
	default:
		return
	}
	if res.status < 300 {
		d.Patients = append(d.Patients, audit.PatientsOfResource(res.body)...)
	}
}

func writeResult(c echo.Context, res *fhirResult) error {
	h := c.Response().Header()
	for k, vs := range res.header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if len(res.body) == 0 {
		return c.NoContent(res.status)
	}
	return c.Blob(res.status, fhir.MediaType+"; charset=utf-8", res.body)
}

func (g *fhirGateway) read(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	id, err := g.pathID(c, typ)
	if err != nil {
		return err
	}
	return g.run(c, fhirCall{interaction: interRead, method: http.MethodGet, typ: typ, id: id, header: requestHeaders(c.Request())})
}

func (g *fhirGateway) vread(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	id, err := g.pathID(c, typ)
	if err != nil {
		return err
	}
	vid := c.Param("vid")
	if !fhir.ValidID(vid) {
		return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, typ+"/"+id+" has no version "+strconv.Quote(vid))
	}
	return g.run(c, fhirCall{interaction: interVRead, method: http.MethodGet, typ: typ, id: id, vid: vid, header: requestHeaders(c.Request())})
}

func (g *fhirGateway) history(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	id, err := g.pathID(c, typ)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	q.Del("_format")
	return g.run(c, fhirCall{interaction: interHistory, method: http.MethodGet, typ: typ, id: id, query: q, header: searchHeaders(c.Request())})
}

func (g *fhirGateway) delete(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	id, err := g.pathID(c, typ)
	if err != nil {
		return err
	}
	return g.run(c, fhirCall{interaction: interDelete, method: http.MethodDelete, typ: typ, id: id, header: requestHeaders(c.Request())})
}

func (g *fhirGateway) search(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	// The scope is checked before a form body is read.
	if err := httpkit.RequireInteraction(c, typ, auth.Search); err != nil {
		return err
	}
	params, err := searchValues(c)
	if err != nil {
		return err
	}
	params.Del("_format")
	if c.Request().Method == http.MethodPost {
		auditlog.Note(c).Query = typ + "?" + params.Encode() // the form's parameters too
	}
	return g.run(c, fhirCall{interaction: interSearch, method: http.MethodGet, typ: typ, query: params, header: searchHeaders(c.Request())})
}

func (g *fhirGateway) create(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	if err := httpkit.RequireInteraction(c, typ, auth.Create); err != nil {
		return err
	}
	body, err := readResourceBody(c)
	if err != nil {
		return err
	}
	return g.run(c, fhirCall{interaction: interCreate, method: http.MethodPost, typ: typ, body: body, header: requestHeaders(c.Request())})
}

func (g *fhirGateway) update(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	id, err := g.pathID(c, typ)
	if err != nil {
		return err
	}
	if err := httpkit.RequireInteraction(c, typ, auth.Update); err != nil {
		return err
	}
	body, err := readResourceBody(c)
	if err != nil {
		return err
	}
	return g.run(c, fhirCall{interaction: interUpdate, method: http.MethodPut, typ: typ, id: id, body: body, header: requestHeaders(c.Request())})
}

// conditionalUpdate is PUT Type?criteria: the owner resolves the criteria.
func (g *fhirGateway) conditionalUpdate(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	q.Del("_format")
	if len(q) == 0 {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueRequired, "PUT "+typ+" needs search criteria (conditional update) or an id: PUT "+typ+"/[id]")
	}
	if err := httpkit.RequireInteraction(c, typ, auth.Update); err != nil {
		return err
	}
	body, err := readResourceBody(c)
	if err != nil {
		return err
	}
	return g.run(c, fhirCall{interaction: interUpdate, method: http.MethodPut, typ: typ, query: q, body: body, header: requestHeaders(c.Request())})
}

// conditionalDelete is DELETE Type?criteria: the owner deletes the one match (none is a
// no-op; several are its 412).
func (g *fhirGateway) conditionalDelete(c echo.Context) error {
	typ, err := g.pathType(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	q.Del("_format")
	if len(q) == 0 {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueRequired, "DELETE "+typ+" needs search criteria (conditional delete) or an id: DELETE "+typ+"/[id]")
	}
	return g.run(c, fhirCall{interaction: interDelete, method: http.MethodDelete, typ: typ, query: q, header: requestHeaders(c.Request())})
}

// readResourceBody reads a JSON request body within the body limit.
func readResourceBody(c echo.Context) ([]byte, error) {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		switch strings.TrimSpace(strings.ToLower(mt)) {
		case "application/fhir+json", "application/json", "application/json+fhir":
		default:
			return nil, httpkit.NewOutcome(http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "send application/fhir+json")
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if httpkit.IsBodyTooLarge(err) {
			return nil, httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "unreadable request body")
	}
	if err := fhir.CheckDepth(body); err != nil {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, err.Error())
	}
	return body, nil
}

// searchValues merges the query string with a POST _search form body.
func searchValues(c echo.Context) (url.Values, error) {
	values := url.Values{}
	for k, v := range c.QueryParams() {
		values[k] = append(values[k], v...)
	}
	if c.Request().Method == http.MethodPost {
		ct := c.Request().Header.Get(echo.HeaderContentType)
		if !strings.HasPrefix(ct, echo.MIMEApplicationForm) {
			return nil, httpkit.NewOutcome(http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "POST _search needs application/x-www-form-urlencoded")
		}
		form, err := c.FormParams()
		if httpkit.IsBodyTooLarge(err) {
			return nil, httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		if err != nil {
			return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "unreadable form body")
		}
		for k, v := range form {
			values[k] = append(values[k], v...)
		}
	}
	return values, nil
}

// outcomeBody renders an OperationOutcome.
func outcomeBody(severity fhir.IssueSeverity, code fhir.IssueType, msg string) []byte {
	b, _ := json.Marshal(fhir.NewOutcome(severity, code, msg))
	return b
}

// jsonResult is a fhirResult with v marshalled as its body.
func jsonResult(status int, v any) (*fhirResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &fhirResult{status: status, header: http.Header{}, body: b}, nil
}
