package fhirapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/internal/gatewaytest"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// The shared HTTP test kit (gateway/internal/gatewaytest) under the names this package's
// tests use.
const (
	apiBaseURL = gatewaytest.BaseURL
	apiTenantA = gatewaytest.TenantA
	apiTenantB = gatewaytest.TenantB
	apiMRN     = gatewaytest.MRN
	apiRWScope = gatewaytest.RWScope
)

var (
	apiSecret              = gatewaytest.Secret
	decodeBody             = gatewaytest.DecodeBody
	requireFHIRContentType = gatewaytest.RequireFHIRContentType
	requireAPIOutcome      = gatewaytest.RequireOutcome
	outcomeText            = gatewaytest.OutcomeText
	apiPatient             = gatewaytest.Patient
	requireSearchset       = gatewaytest.RequireSearchset
)

// loopbackOwners allows owners on loopback, where the tests' owners listen.
var loopbackOwners = func() *netguard.Policy {
	p, err := netguard.Parse(netguard.Loopback)
	if err != nil {
		panic(err)
	}
	return p
}()

type apiServer struct {
	t      *testing.T
	e      *echo.Echo
	pool   *db.Pool
	signer auth.HS256
}

// newAPIServer mounts the FHIR API alone, on the server every room runs on, over a fresh
// database; mod adjusts the Deps before New.
func newAPIServer(t *testing.T, mod func(*Deps)) *apiServer {
	t.Helper()
	_, pool := dbtest.New(t)
	reg := prometheus.NewRegistry()
	signer := auth.HS256{Secret: apiSecret}
	d := Deps{
		Pool:         pool,
		Store:        &store.Store{Pool: pool},
		Auth:         signer,
		DefaultOwner: routing.Builtin,
		BaseURL:      apiBaseURL,
		Logger:       slog.New(slog.DiscardHandler),
		// The test owners are httptest servers on 127.0.0.1: the owner guard must allow them.
		FHIR: Options{OwnerPolicy: loopbackOwners},
	}
	if mod != nil {
		mod(&d)
	}
	e := httpkit.NewServer(d.Logger, httpkit.NewMetrics(reg))
	New(d).Routes(e.Group("/fhir"))
	return &apiServer{t: t, e: e, pool: pool, signer: signer}
}

func (s *apiServer) token(tenant, scope string) string {
	s.t.Helper()
	tok, err := s.signer.Issue("test-client", tenant, scope, time.Hour)
	require.NoError(s.t, err)
	return tok
}

type apiRequest struct {
	method, path, token string
	body                io.Reader
	header              map[string]string
}

func (s *apiServer) do(r apiRequest) *httptest.ResponseRecorder {
	s.t.Helper()
	return gatewaytest.Do(s.e, gatewaytest.Request{Method: r.method, Path: r.path, Token: r.token, Body: r.body, Header: r.header})
}

func (s *apiServer) get(path, token string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{path: path, token: token})
}

func (s *apiServer) post(path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{method: http.MethodPost, path: path, token: token, body: strings.NewReader(body), header: header})
}

// createPatient POSTs a Patient and returns its id.
func (s *apiServer) createPatient(token, system, value string) string {
	s.t.Helper()
	rec := s.post("/fhir/Patient", token, apiPatient(system, value), nil)
	require.Equal(s.t, http.StatusCreated, rec.Code, rec.Body.String())
	id, _ := decodeBody(s.t, rec)["id"].(string)
	require.NotEmpty(s.t, id)
	return id
}

func TestFHIRMetadataIsOpen(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)

	rec := s.get("/fhir/metadata", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireFHIRContentType(t, rec)
	cs := decodeBody(t, rec)
	require.Equal(t, "CapabilityStatement", cs["resourceType"])
	require.Equal(t, "4.0.1", cs["fhirVersion"])
	require.Equal(t, "instance", cs["kind"])
	require.Equal(t, apiBaseURL+"/fhir", cs["implementation"].(map[string]any)["url"])
	rest := cs["rest"].([]any)[0].(map[string]any)
	require.Equal(t, "server", rest["mode"])
	var types []string
	for _, r := range rest["resource"].([]any) {
		types = append(types, r.(map[string]any)["type"].(string))
	}
	require.Contains(t, types, "Patient")
	// The parameters the mapping's own output needs are declared (issue #12).
	params := map[string][]string{}
	for _, r := range rest["resource"].([]any) {
		r := r.(map[string]any)
		for _, sp := range r["searchParam"].([]any) {
			params[r["type"].(string)] = append(params[r["type"].(string)], sp.(map[string]any)["name"].(string))
		}
	}
	require.Subset(t, params["RelatedPerson"], []string{"patient", "_summary"})
	require.Subset(t, params["Specimen"], []string{"patient", "subject", "_summary"})
	require.Subset(t, params["Coverage"], []string{"patient", "beneficiary", "_summary"})

	// A token, even a bad one, does not matter here.
	require.Equal(t, http.StatusOK, s.do(apiRequest{path: "/fhir/metadata", header: map[string]string{"Authorization": "Bearer junk"}}).Code)
	requireAPIOutcome(t, s.get("/fhir/metadata?_format=xml", ""), http.StatusNotAcceptable, "not-supported")
	require.Equal(t, http.StatusOK, s.get("/fhir/metadata?_format=json", "").Code)
}

func TestFHIRScopesLimitInteractions(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	readOnly := s.token(apiTenantA, "system/Patient.rs")

	rec := s.post("/fhir/Patient", readOnly, apiPatient(apiMRN, "1"), nil)
	requireAPIOutcome(t, rec, http.StatusForbidden, "forbidden")
	rec = s.post("/fhir/Patient", readOnly, apiPatient(apiMRN, "1"), map[string]string{"If-None-Exist": "identifier=" + apiMRN + "|1"})
	requireAPIOutcome(t, rec, http.StatusForbidden, "forbidden")

	total, _ := requireSearchset(t, s.get("/fhir/Patient", readOnly))
	require.Zero(t, total, "the refused create stored nothing")
	requireAPIOutcome(t, s.get("/fhir/Patient/missing", readOnly), http.StatusNotFound, "not-found")

	// The scope names Patient only.
	requireAPIOutcome(t, s.get("/fhir/Observation", readOnly), http.StatusForbidden, "forbidden")
	// Search without read is not read.
	searchOnly := s.token(apiTenantA, "system/Patient.s")
	id := s.createPatient(s.token(apiTenantA, "system/Patient.c"), apiMRN, "2")
	requireSearchset(t, s.get("/fhir/Patient", searchOnly))
	requireAPIOutcome(t, s.get("/fhir/Patient/"+id, searchOnly), http.StatusForbidden, "forbidden")
	// The admin scope grants no FHIR data, and FHIR scopes grant no admin API (adminapi's
	// TestAdminScopeIsNotFHIRScope).
	requireAPIOutcome(t, s.get("/fhir/Patient", s.token(apiTenantA, auth.AdminScope)), http.StatusForbidden, "forbidden")
	// user/ and patient/ scopes are not accepted.
	requireAPIOutcome(t, s.get("/fhir/Patient", s.token(apiTenantA, "user/Patient.rs patient/*.rs")), http.StatusForbidden, "forbidden")
	// A wildcard v2 scope and a v1 scope both work.
	requireSearchset(t, s.get("/fhir/Patient", s.token(apiTenantA, "system/*.rs")))
	requireSearchset(t, s.get("/fhir/Patient", s.token(apiTenantA, "system/Patient.read")))
}

func TestFHIRCreateAndReadRoundTrip(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tok := s.token(apiTenantA, apiRWScope)
	body := `{"resourceType":"Patient","id":"ignored","identifier":[{"system":"` + apiMRN + `","value":"rt-1"}],` +
		`"name":[{"family":"Müller","given":["Anna"]}],"birthDate":"1970-01-01","active":true}`

	rec := s.post("/fhir/Patient", tok, body, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	requireFHIRContentType(t, rec)
	created := decodeBody(t, rec)
	id := created["id"].(string)
	require.NotEqual(t, "ignored", id)
	require.Equal(t, apiBaseURL+"/fhir/Patient/"+id+"/_history/1", rec.Header().Get(echo.HeaderLocation))
	require.Equal(t, `W/"1"`, rec.Header().Get("ETag"))
	lastModified, err := http.ParseTime(rec.Header().Get("Last-Modified"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), lastModified, time.Minute)
	meta := created["meta"].(map[string]any)
	require.Equal(t, "1", meta["versionId"])
	require.Equal(t, "Müller", created["name"].([]any)[0].(map[string]any)["family"])
	require.Equal(t, true, created["active"])

	rec = s.get("/fhir/Patient/"+id, tok)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireFHIRContentType(t, rec)
	require.Equal(t, `W/"1"`, rec.Header().Get("ETag"))
	readLastModified, err := http.ParseTime(rec.Header().Get("Last-Modified"))
	require.NoError(t, err)
	require.True(t, readLastModified.Equal(lastModified))
	require.JSONEq(t, mustJSONString(t, created), rec.Body.String())

	// Prefer: return=minimal answers headers only.
	rec = s.post("/fhir/Patient", tok, apiPatient(apiMRN, "rt-2"), map[string]string{"Prefer": "return=minimal"})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Empty(t, rec.Body.String())
	require.True(t, strings.HasPrefix(rec.Header().Get(echo.HeaderLocation), apiBaseURL+"/fhir/Patient/"))
	require.Equal(t, `W/"1"`, rec.Header().Get("ETag"))

	// Another resource type goes through the same path.
	rec = s.post("/fhir/Observation", tok, `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	obsID := decodeBody(t, rec)["id"].(string)
	require.Equal(t, http.StatusOK, s.get("/fhir/Observation/"+obsID, tok).Code)
	requireAPIOutcome(t, s.get("/fhir/Patient/"+obsID, tok), http.StatusNotFound, "not-found")
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestFHIRConditionalCreate(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tok := s.token(apiTenantA, apiRWScope)
	cond := map[string]string{"If-None-Exist": "identifier=" + apiMRN + "|cc-1"}

	first := s.post("/fhir/Patient", tok, apiPatient(apiMRN, "cc-1"), cond)
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	id := decodeBody(t, first)["id"].(string)
	require.Equal(t, apiBaseURL+"/fhir/Patient/"+id+"/_history/1", first.Header().Get(echo.HeaderLocation))

	second := s.post("/fhir/Patient", tok, apiPatient(apiMRN, "cc-1"), cond)
	require.Equal(t, http.StatusOK, second.Code, second.Body.String())
	requireFHIRContentType(t, second)
	require.Equal(t, id, decodeBody(t, second)["id"])
	require.Equal(t, first.Header().Get(echo.HeaderLocation), second.Header().Get(echo.HeaderLocation))
	require.Equal(t, `W/"1"`, second.Header().Get("ETag"))

	// A leading '?' is accepted too, and finds the same resource.
	third := s.post("/fhir/Patient", tok, apiPatient(apiMRN, "cc-1"),
		map[string]string{"If-None-Exist": "?identifier=" + url.QueryEscape(apiMRN+"|cc-1")})
	require.Equal(t, http.StatusOK, third.Code, third.Body.String())
	require.Equal(t, id, decodeBody(t, third)["id"])

	total, _ := requireSearchset(t, s.get("/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|cc-1"), tok))
	require.Equal(t, 1, total)

	// Conditions the owner does not support are refused, not ignored. (Which parameters a
	// condition may use is the owning store's business; the gateway relays its refusal.)
	for _, bad := range []string{"name=Doe", "identifier=a&name=b", "%zz"} {
		rec := s.post("/fhir/Patient", tok, apiPatient(apiMRN, "cc-2"), map[string]string{"If-None-Exist": bad})
		t.Logf("If-None-Exist %q → %d", bad, rec.Code)
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
		requireFHIRContentType(t, rec)
		require.Equal(t, "OperationOutcome", decodeBody(t, rec)["resourceType"])
	}
	total, _ = requireSearchset(t, s.get("/fhir/Patient?identifier=cc-2", tok))
	require.Zero(t, total, "a refused condition creates nothing")

	// Two resources with the identifier: the condition is ambiguous (412) and nothing is created.
	s.createPatient(tok, apiMRN, "dup")
	s.createPatient(tok, apiMRN, "dup")
	rec := s.post("/fhir/Patient", tok, apiPatient(apiMRN, "dup"), map[string]string{"If-None-Exist": "identifier=" + apiMRN + "|dup"})
	requireAPIOutcome(t, rec, http.StatusPreconditionFailed, "multiple-matches")
	total, _ = requireSearchset(t, s.get("/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|dup"), tok))
	require.Equal(t, 2, total)
}

func TestFHIRSearch(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tok := s.token(apiTenantA, apiRWScope)
	id1 := s.createPatient(tok, apiMRN, "s-1")
	id2 := s.createPatient(tok, "urn:other", "s-1")
	id3 := s.createPatient(tok, apiMRN, "s-3")

	t.Run("identifier with system", func(t *testing.T) {
		rec := s.get("/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|s-1"), tok)
		total, entries := requireSearchset(t, rec)
		require.Equal(t, 1, total)
		require.Len(t, entries, 1)
		require.Equal(t, apiBaseURL+"/fhir/Patient/"+id1, entries[0]["fullUrl"])
		require.Equal(t, id1, entries[0]["resource"].(map[string]any)["id"])
		require.Equal(t, "match", entries[0]["search"].(map[string]any)["mode"])
		link := decodeBody(t, rec)["link"].([]any)[0].(map[string]any)
		require.Equal(t, "self", link["relation"])
		require.True(t, strings.HasPrefix(link["url"].(string), apiBaseURL+"/fhir/Patient?"), link["url"])
	})
	t.Run("identifier under any system", func(t *testing.T) {
		total, entries := requireSearchset(t, s.get("/fhir/Patient?identifier=s-1", tok))
		require.Equal(t, 2, total)
		var got []string
		for _, e := range entries {
			got = append(got, e["resource"].(map[string]any)["id"].(string))
		}
		require.ElementsMatch(t, []string{id1, id2}, got)
		// "|value" is an identifier without a system, and both of these have one.
		total, _ = requireSearchset(t, s.get("/fhir/Patient?identifier="+url.QueryEscape("|s-1"), tok))
		require.Zero(t, total)
	})
	t.Run("_id", func(t *testing.T) {
		total, entries := requireSearchset(t, s.get("/fhir/Patient?_id="+id3, tok))
		require.Equal(t, 1, total)
		require.Equal(t, apiBaseURL+"/fhir/Patient/"+id3, entries[0]["fullUrl"])
		total, entries = requireSearchset(t, s.get("/fhir/Patient?_id=nope", tok))
		require.Zero(t, total)
		require.Empty(t, entries)
	})
	t.Run("_count", func(t *testing.T) {
		total, entries := requireSearchset(t, s.get("/fhir/Patient?_count=2", tok))
		require.Equal(t, 3, total)
		require.Len(t, entries, 2)
		total, entries = requireSearchset(t, s.get("/fhir/Patient?_count=0", tok))
		require.Equal(t, 3, total, "_count=0 still reports the total")
		require.Empty(t, entries)
		total, entries = requireSearchset(t, s.get("/fhir/Patient", tok))
		require.Equal(t, 3, total)
		require.Len(t, entries, 3)
	})
	t.Run("POST _search", func(t *testing.T) {
		rec := s.post("/fhir/Patient/_search", tok, "identifier="+url.QueryEscape(apiMRN+"|s-3"),
			map[string]string{"Content-Type": echo.MIMEApplicationForm})
		total, entries := requireSearchset(t, rec)
		require.Equal(t, 1, total)
		require.Equal(t, apiBaseURL+"/fhir/Patient/"+id3, entries[0]["fullUrl"])
		rec = s.post("/fhir/Patient/_search", tok, `{"identifier":"x"}`, nil)
		requireAPIOutcome(t, rec, http.StatusUnsupportedMediaType, "not-supported")
	})
	t.Run("refused parameters", func(t *testing.T) {
		for _, q := range []string{
			"name=Doe", "identifier:exact=x", "_sort=nosuch", "_count=abc", "_count=-1", "_count=1.5",
		} {
			rec := s.get("/fhir/Patient?"+q, tok)
			require.Equal(t, http.StatusBadRequest, rec.Code, "%s: %s", q, rec.Body.String())
			requireFHIRContentType(t, rec)
			require.Equal(t, "OperationOutcome", decodeBody(t, rec)["resourceType"], q)
		}
		requireAPIOutcome(t, s.get("/fhir/Patient?name=Doe", tok), http.StatusBadRequest, "not-supported")
		requireAPIOutcome(t, s.get("/fhir/Patient?_count=abc", tok), http.StatusBadRequest, "value")
	})
	t.Run("_format", func(t *testing.T) {
		requireAPIOutcome(t, s.get("/fhir/Patient?_format=xml", tok), http.StatusNotAcceptable, "not-supported")
		requireAPIOutcome(t, s.get("/fhir/Patient?_format=application/fhir%2Bxml", tok), http.StatusNotAcceptable, "not-supported")
		requireAPIOutcome(t, s.get("/fhir/Patient/"+id1+"?_format=xml", tok), http.StatusNotAcceptable, "not-supported")
		total, _ := requireSearchset(t, s.get("/fhir/Patient?_format=json", tok))
		require.Equal(t, 3, total)
		total, _ = requireSearchset(t, s.get("/fhir/Patient?_format="+url.QueryEscape("application/fhir+json"), tok))
		require.Equal(t, 3, total)
	})
	t.Run("unknown type", func(t *testing.T) {
		requireAPIOutcome(t, s.get("/fhir/patient", tok), http.StatusNotFound, "not-supported")
		requireAPIOutcome(t, s.get("/fhir/patient/"+id1, tok), http.StatusNotFound, "not-supported")
	})
}

func TestFHIRTenantIsolation(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tokA := s.token(apiTenantA, apiRWScope)
	tokB := s.token(apiTenantB, apiRWScope)
	idA := s.createPatient(tokA, apiMRN, "iso-1")
	require.Equal(t, http.StatusOK, s.get("/fhir/Patient/"+idA, tokA).Code)

	foreign := s.get("/fhir/Patient/"+idA, tokB)
	requireAPIOutcome(t, foreign, http.StatusNotFound, "not-found")
	const missingID = "00000000-0000-0000-0000-000000000000"
	missing := s.get("/fhir/Patient/"+missingID, tokB)
	requireAPIOutcome(t, missing, http.StatusNotFound, "not-found")
	// Another tenant's id and no id at all are answered alike: nothing tells B that idA exists.
	require.Equal(t, strings.ReplaceAll(missing.Body.String(), missingID, "ID"), strings.ReplaceAll(foreign.Body.String(), idA, "ID"))
	require.Equal(t, missing.Header().Get(echo.HeaderContentType), foreign.Header().Get(echo.HeaderContentType))
	require.Empty(t, foreign.Header().Get("ETag"))

	for _, q := range []string{"", "?identifier=" + url.QueryEscape(apiMRN+"|iso-1"), "?identifier=iso-1", "?_id=" + idA} {
		total, entries := requireSearchset(t, s.get("/fhir/Patient"+q, tokB))
		require.Zero(t, total, q)
		require.Empty(t, entries, q)
	}

	// B's conditional create with A's identifier makes B's own resource.
	rec := s.post("/fhir/Patient", tokB, apiPatient(apiMRN, "iso-1"), map[string]string{"If-None-Exist": "identifier=" + apiMRN + "|iso-1"})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	idB := decodeBody(t, rec)["id"].(string)
	require.NotEqual(t, idA, idB)
	requireAPIOutcome(t, s.get("/fhir/Patient/"+idB, tokA), http.StatusNotFound, "not-found")
	total, entries := requireSearchset(t, s.get("/fhir/Patient?identifier=iso-1", tokA))
	require.Equal(t, 1, total)
	require.Equal(t, apiBaseURL+"/fhir/Patient/"+idA, entries[0]["fullUrl"])
}

func TestFHIRRequestBodies(t *testing.T) {
	t.Parallel()
	const limit = 512
	s := newAPIServer(t, func(d *Deps) { d.MaxBodyBytes = limit })
	tok := s.token(apiTenantA, apiRWScope)

	rec := s.post("/fhir/Patient", tok, `{"resourceType":"Observation","status":"final"}`, nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
	for _, body := range []string{`{"resourceType":"Patient"`, `not json`, ``, `[]`, `{"resourceType":"Patient","id":"bad id!"}`} {
		rec = s.post("/fhir/Patient", tok, body, nil)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%q: %s", body, rec.Body.String())
		requireFHIRContentType(t, rec)
		require.Equal(t, "OperationOutcome", decodeBody(t, rec)["resourceType"])
	}

	big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("x", 2*limit) + `"}}`
	// With a Content-Length the body is refused before it is read ...
	requireAPIOutcome(t, s.post("/fhir/Patient", tok, big, nil), http.StatusRequestEntityTooLarge, "too-long")
	// ... and without one (chunked), when reading passes the limit.
	chunked := httptest.NewRequest(http.MethodPost, "/fhir/Patient", io.MultiReader(strings.NewReader(big)))
	chunked.ContentLength = -1
	chunked.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	chunked.Header.Set(echo.HeaderContentType, "application/fhir+json")
	rec = httptest.NewRecorder()
	s.e.ServeHTTP(rec, chunked)
	requireAPIOutcome(t, rec, http.StatusRequestEntityTooLarge, "too-long")
	// The same holds for a POST _search form body.
	form := "identifier=" + strings.Repeat("x", 2*limit)
	requireAPIOutcome(t, s.post("/fhir/Patient/_search", tok, form, map[string]string{"Content-Type": echo.MIMEApplicationForm}),
		http.StatusRequestEntityTooLarge, "too-long")
	chunked = httptest.NewRequest(http.MethodPost, "/fhir/Patient/_search", io.MultiReader(strings.NewReader(form)))
	chunked.ContentLength = -1
	chunked.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	chunked.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	rec = httptest.NewRecorder()
	s.e.ServeHTTP(rec, chunked)
	requireAPIOutcome(t, rec, http.StatusRequestEntityTooLarge, "too-long")
	// Admin requests have the limit too: adminapi's TestAdminRequestBodies.

	total, _ := requireSearchset(t, s.get("/fhir/Patient", tok))
	require.Zero(t, total, "no refused body was stored")

	// A body under the limit is fine.
	s.createPatient(tok, apiMRN, "small")
}

func TestFHIRUnreachableOwner(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, func(d *Deps) { d.FHIR.RoutingCacheTTL = -1 })
	const owner = "http://127.0.0.1:1/fhir"
	_, err := s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url)
		VALUES ($1, 'Observation', $2)`, apiTenantA, owner)
	require.NoError(t, err)
	tokA := s.token(apiTenantA, apiRWScope)

	for _, rec := range []*httptest.ResponseRecorder{
		s.get("/fhir/Observation", tokA),
		s.get("/fhir/Observation/some-id", tokA),
		s.post("/fhir/Observation", tokA, `{"resourceType":"Observation","status":"final"}`, nil),
	} {
		requireAPIOutcome(t, rec, http.StatusBadGateway, "transient")
		require.NotContains(t, rec.Body.String(), "127.0.0.1", "the owner's address never reaches a client")
	}
	// Other types and other tenants still go to the built-in store.
	requireSearchset(t, s.get("/fhir/Patient", tokA))
	requireSearchset(t, s.get("/fhir/Observation", s.token(apiTenantB, apiRWScope)))
}

func TestFHIRMetadataDeclaresTenantProfiles(t *testing.T) {
	t.Parallel()
	const afg = "http://moph.gov.af/fhir/StructureDefinition/afg-patient"
	s := newAPIServer(t, func(d *Deps) {
		d.FHIR.Profiles = func(tenant string) map[string][]string {
			if tenant == apiTenantA {
				return map[string][]string{"Patient": {afg}}
			}
			return nil
		}
	})
	profiles := func(token string) []any {
		rec := s.get("/fhir/metadata", token)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		for _, r := range decodeBody(t, rec)["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
			if r.(map[string]any)["type"] == "Patient" {
				return r.(map[string]any)["supportedProfile"].([]any)
			}
		}
		t.Fatal("no Patient in the CapabilityStatement")
		return nil
	}
	require.Contains(t, profiles(s.token(apiTenantA, "system/Patient.rs")), afg)
	require.Contains(t, profiles(s.token(apiTenantA, "system/Patient.rs")), "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")
	require.NotContains(t, profiles(s.token(apiTenantB, "system/Patient.rs")), afg)
	require.NotContains(t, profiles(""), afg)
}
