package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

const (
	apiBaseURL = "http://example.test"
	apiTenantA = "tenant-a"
	apiTenantB = "tenant-b"
	apiMRN     = "urn:oid:1.2.3.4.5"
	apiRWScope = "system/Patient.cruds system/Observation.cruds"
)

var apiSecret = []byte("0123456789abcdef0123456789abcdef")

type apiServer struct {
	t      *testing.T
	e      *echo.Echo
	pool   *db.Pool
	signer auth.HS256
	reg    *prometheus.Registry
}

// newAPIServer builds the gateway on a fresh database; mod adjusts the Deps before New.
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
		Metrics:      NewMetrics(reg),
		Gatherer:     reg,
		Logger:       slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&d)
	}
	return &apiServer{t: t, e: New(d), pool: pool, signer: signer, reg: reg}
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
	if r.method == "" {
		r.method = http.MethodGet
	}
	req := httptest.NewRequest(r.method, r.path, r.body)
	if r.token != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+r.token)
	}
	if r.body != nil && req.Header.Get(echo.HeaderContentType) == "" {
		req.Header.Set(echo.HeaderContentType, "application/fhir+json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	return rec
}

func (s *apiServer) get(path, token string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{path: path, token: token})
}

func (s *apiServer) post(path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{method: http.MethodPost, path: path, token: token, body: strings.NewReader(body), header: header})
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), "body: %s", rec.Body.String())
	return m
}

func requireFHIRContentType(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.True(t, strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), "application/fhir+json"),
		"content type %q", rec.Header().Get(echo.HeaderContentType))
}

// requireAPIOutcome checks that rec is an OperationOutcome with status and the first issue's code.
func requireAPIOutcome(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	requireFHIRContentType(t, rec)
	require.NotContains(t, strings.ToLower(rec.Body.String()), "<html", "never an HTML body")
	m := decodeBody(t, rec)
	require.Equal(t, "OperationOutcome", m["resourceType"], "body: %s", rec.Body.String())
	issues, ok := m["issue"].([]any)
	require.True(t, ok && len(issues) > 0, "body: %s", rec.Body.String())
	issue := issues[0].(map[string]any)
	require.Equal(t, code, issue["code"], "body: %s", rec.Body.String())
	require.NotEmpty(t, issue["severity"])
	return m
}

func apiPatient(system, value string) string {
	return `{"resourceType":"Patient","identifier":[{"system":"` + system + `","value":"` + value + `"}],"name":[{"family":"Doe"}]}`
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

func requireSearchset(t *testing.T, rec *httptest.ResponseRecorder) (total int, entries []map[string]any) {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireFHIRContentType(t, rec)
	b := decodeBody(t, rec)
	require.Equal(t, "Bundle", b["resourceType"])
	require.Equal(t, "searchset", b["type"])
	tot, ok := b["total"].(float64)
	require.True(t, ok, "a searchset carries total: %s", rec.Body.String())
	if raw, ok := b["entry"].([]any); ok {
		for _, e := range raw {
			entries = append(entries, e.(map[string]any))
		}
	}
	return int(tot), entries
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

func TestHTTPAuthenticationFailures(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	scope := apiRWScope + " " + auth.AdminScope

	expired, err := auth.HS256{Secret: apiSecret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}.
		Issue("c", apiTenantA, scope, time.Hour)
	require.NoError(t, err)
	notYet, err := auth.HS256{Secret: apiSecret, Now: func() time.Time { return time.Now().Add(time.Hour) }}.
		Issue("c", apiTenantA, scope, time.Hour)
	require.NoError(t, err)
	otherSecret, err := auth.HS256{Secret: []byte("another-secret-another-secret-00")}.Issue("c", apiTenantA, scope, time.Hour)
	require.NoError(t, err)
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	exp := time.Now().Add(time.Hour).Unix()
	algNone := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
		jwt.MapClaims{"iss": auth.Issuer, "tenant": apiTenantA, "scope": scope, "exp": exp})
	otherIssuer := sign(jwt.SigningMethodHS256, apiSecret,
		jwt.MapClaims{"iss": "someone-else", "tenant": apiTenantA, "scope": scope, "exp": exp})
	noTenant := sign(jwt.SigningMethodHS256, apiSecret, jwt.MapClaims{"iss": auth.Issuer, "scope": scope, "exp": exp})
	noExpiry := sign(jwt.SigningMethodHS256, apiSecret, jwt.MapClaims{"iss": auth.Issuer, "tenant": apiTenantA, "scope": scope})
	valid := s.token(apiTenantA, scope)
	tampered := valid[:len(valid)-4] + "AAAA"

	cases := map[string]string{
		"no header":          "",
		"empty bearer":       "Bearer ",
		"basic scheme":       "Basic dXNlcjpwYXNz",
		"bare token":         valid,
		"malformed":          "Bearer not.a.jwt",
		"garbage":            "Bearer %%%",
		"expired":            "Bearer " + expired,
		"not yet valid":      "Bearer " + notYet,
		"other secret":       "Bearer " + otherSecret,
		"tampered signature": "Bearer " + tampered,
		"alg none":           "Bearer " + algNone,
		"other issuer":       "Bearer " + otherIssuer,
		"no tenant":          "Bearer " + noTenant,
		"no expiry":          "Bearer " + noExpiry,
	}
	targets := []struct{ method, path, body string }{
		{http.MethodGet, "/fhir/Patient", ""},
		{http.MethodGet, "/fhir/Patient/some-id", ""},
		{http.MethodPost, "/fhir/Patient", apiPatient(apiMRN, "1")},
		{http.MethodPost, "/fhir/Patient/_search", "identifier=x"},
		{http.MethodGet, "/admin/events", ""},
		{http.MethodGet, "/admin/messages/" + uuid.NewString(), ""},
	}
	for name, header := range cases {
		for _, tg := range targets {
			r := apiRequest{method: tg.method, path: tg.path, header: map[string]string{}}
			if header != "" {
				r.header["Authorization"] = header
			}
			if tg.body != "" {
				r.body = strings.NewReader(tg.body)
				if strings.HasSuffix(tg.path, "_search") {
					r.header["Content-Type"] = echo.MIMEApplicationForm
				}
			}
			rec := s.do(r)
			t.Logf("%s %s %s → %d", name, tg.method, tg.path, rec.Code)
			requireAPIOutcome(t, rec, http.StatusUnauthorized, "login")
			require.True(t, strings.HasPrefix(rec.Header().Get(echo.HeaderWWWAuthenticate), "Bearer "),
				"%s %s %s: WWW-Authenticate %q", name, tg.method, tg.path, rec.Header().Get(echo.HeaderWWWAuthenticate))
		}
	}

	// The POSTs above stored nothing.
	total, _ := requireSearchset(t, s.get("/fhir/Patient", valid))
	require.Zero(t, total)

	// The valid token itself is accepted, whatever the case of the scheme (RFC 7235 §2.1).
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		rec := s.do(apiRequest{path: "/fhir/Patient", header: map[string]string{"Authorization": scheme + " " + valid}})
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", scheme, rec.Body.String())
	}
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
	// The admin scope grants no FHIR data, and FHIR scopes grant no admin API.
	requireAPIOutcome(t, s.get("/fhir/Patient", s.token(apiTenantA, auth.AdminScope)), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, s.get("/admin/events", s.token(apiTenantA, "system/*.cruds")), http.StatusForbidden, "forbidden")
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
	// Admin requests have the limit too.
	requireAPIOutcome(t, s.do(apiRequest{path: "/admin/events", token: s.token(apiTenantA, auth.AdminScope), body: strings.NewReader(big)}),
		http.StatusRequestEntityTooLarge, "too-long")

	total, _ := requireSearchset(t, s.get("/fhir/Patient", tok))
	require.Zero(t, total, "no refused body was stored")

	// A body under the limit is fine.
	s.createPatient(tok, apiMRN, "small")
}

func TestHTTPUnknownRoutes(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	tok := s.token(apiTenantA, apiRWScope)

	for _, path := range []string{"/nope", "/", "/fhir/Patient/x/y/z", "/admin/nope"} {
		token := tok
		if strings.HasPrefix(path, "/admin") {
			token = s.token(apiTenantA, auth.AdminScope)
		}
		rec := s.get(path, token)
		requireAPIOutcome(t, rec, http.StatusNotFound, "not-found")
	}
	requireAPIOutcome(t, s.get("/nope", ""), http.StatusNotFound, "not-found")

	// A known path with a method it does not serve: 405 with what is allowed, as an
	// OperationOutcome.
	rec := s.do(apiRequest{method: http.MethodPatch, path: "/fhir/Patient/x", token: tok})
	requireAPIOutcome(t, rec, http.StatusMethodNotAllowed, "not-supported")
	require.NotEmpty(t, rec.Header().Get(echo.HeaderAllow))
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

type apiEventsPage struct {
	Events []struct {
		Cursor        string          `json:"cursor"`
		EventID       string          `json:"eventId"`
		Type          string          `json:"type"`
		AggregateType string          `json:"aggregateType"`
		AggregateID   string          `json:"aggregateId"`
		OccurredAt    time.Time       `json:"occurredAt"`
		Payload       json.RawMessage `json:"payload"`
	} `json:"events"`
	Next string `json:"next"`
}

func (s *apiServer) events(token, query string) apiEventsPage {
	s.t.Helper()
	rec := s.get("/admin/events"+query, token)
	require.Equal(s.t, http.StatusOK, rec.Code, rec.Body.String())
	var p apiEventsPage
	require.NoError(s.t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	require.NotNil(s.t, p.Events, "events is a list, never null: %s", rec.Body.String())
	return p
}

func eventAggregateIDs(p apiEventsPage) []string {
	out := make([]string, len(p.Events))
	for i, e := range p.Events {
		out[i] = e.AggregateID
	}
	return out
}

func TestAdminEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newAPIServer(t, nil)
	adminA := s.token(apiTenantA, auth.AdminScope)
	adminB := s.token(apiTenantB, auth.AdminScope)

	requireAPIOutcome(t, s.get("/admin/events", s.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")

	emit := func(tenant, aggregateID string) {
		t.Helper()
		require.NoError(t, db.InTx(ctx, s.pool, func(q *db.Queries) error {
			return outbox.Emit(ctx, q, tenant, outbox.Hl7MessageReceived, aggregateID, map[string]any{"n": aggregateID})
		}))
	}
	emit(apiTenantA, "a1")
	emit(apiTenantB, "b1")
	emit(apiTenantA, "a2")
	emit(apiTenantA, "a3")
	// A rolled-back change raises no event.
	require.Error(t, db.InTx(ctx, s.pool, func(q *db.Queries) error {
		require.NoError(t, outbox.Emit(ctx, q, apiTenantA, outbox.Hl7MessageFailed, "rolled-back", nil))
		return errors.New("abort")
	}))

	// Events become visible once no older transaction is running anywhere in the cluster
	// (other tests' databases share it), so wait for them rather than assume.
	var all apiEventsPage
	require.Eventually(t, func() bool {
		all = s.events(adminA, "")
		return len(all.Events) >= 3
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{"a1", "a2", "a3"}, eventAggregateIDs(all), "only the caller tenant's events, in commit order")
	require.Equal(t, all.Events[2].Cursor, all.Next)
	for _, e := range all.Events {
		require.Equal(t, string(outbox.Hl7MessageReceived), e.Type)
		require.Equal(t, "Hl7Message", e.AggregateType)
		require.NotEmpty(t, e.EventID)
		require.NotEmpty(t, e.Cursor)
		require.False(t, e.OccurredAt.IsZero())
		require.JSONEq(t, `{"n":"`+e.AggregateID+`","tenantId":"`+apiTenantA+`"}`, string(e.Payload))
	}
	require.Eventually(t, func() bool { return len(s.events(adminB, "").Events) == 1 }, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{"b1"}, eventAggregateIDs(s.events(adminB, "")))

	// Paging: next, passed back as after, continues where the page ended.
	page1 := s.events(adminA, "?limit=2")
	require.Equal(t, []string{"a1", "a2"}, eventAggregateIDs(page1))
	require.Equal(t, page1.Events[1].Cursor, page1.Next)
	page2 := s.events(adminA, "?limit=2&after="+url.QueryEscape(page1.Next))
	require.Equal(t, []string{"a3"}, eventAggregateIDs(page2))
	require.Equal(t, all.Next, page2.Next)
	page3 := s.events(adminA, "?after="+url.QueryEscape(page2.Next))
	require.Empty(t, page3.Events)
	require.Equal(t, page2.Next, page3.Next, "an empty page keeps the cursor")

	// Another tenant's cursor reveals nothing of this tenant's events beyond it.
	require.Empty(t, s.events(adminB, "?after="+url.QueryEscape(page2.Next)).Events)

	for _, q := range []string{"?after=garbage", "?after=1", "?after=a-1", "?after=1-b", "?after=-1-2", "?limit=0", "?limit=1001", "?limit=abc"} {
		requireAPIOutcome(t, s.get("/admin/events"+q, adminA), http.StatusBadRequest, "value")
	}
}

func TestAdminMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newAPIServer(t, func(d *Deps) {
		d.TemporalUIURL = "http://temporal.test"
		d.TemporalNamespace = "default"
	})
	q := db.New(s.pool)
	port := int32(32001)
	conn, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
		TenantID: apiTenantA, FacilityID: "f1", Name: "lab", Protocol: db.ConnectorProtocolMLLP,
		Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, ListenPort: &port, Settings: []byte(`{}`),
	})
	require.NoError(t, err)
	raw := []byte("MSH|^~\\&|LAB|FAC|||20240101||ORU^R01|C1|P|2.5\r")
	sum := sha256.Sum256(raw)
	msg, err := q.Hl7MessageInsert(ctx, db.Hl7MessageInsertParams{
		TenantID: apiTenantA, ConnectorID: conn.ID, MessageControlID: "C1", SendingApp: "LAB", SendingFacility: "FAC",
		MessageCode: "ORU", TriggerEvent: "R01", HL7Version: "2.5", Raw: raw, RawSHA256: sum[:],
		AckCode: "AA", Ack: []byte("MSH|ack"), WorkflowID: "hl7-C1",
	})
	require.NoError(t, err)
	attempt, err := q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{WorkflowID: "hl7-C1", RunID: "run-1", MessageID: msg.ID})
	require.NoError(t, err)
	require.NoError(t, q.Hl7ResourceLinkInsertMany(ctx, db.Hl7ResourceLinkInsertManyParams{
		TenantID: apiTenantA, MessageID: msg.ID, AttemptID: &attempt.ID, ResourceTypes: []string{"Patient"}, ResourceIDs: []string{"p1"},
		Actions: []string{"created"}, Owners: []string{routing.Builtin},
	}))

	adminA := s.token(apiTenantA, auth.AdminScope)
	rec := s.get("/admin/messages/"+msg.ID.String(), adminA)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m := decodeBody(t, rec)
	require.Equal(t, msg.ID.String(), m["id"])
	require.Equal(t, conn.ID.String(), m["connectorId"])
	require.Equal(t, "pending", m["status"])
	require.Equal(t, "C1", m["messageControlId"])
	require.Equal(t, "ORU^R01", m["messageType"])
	require.Equal(t, float64(len(raw)), m["sizeBytes"])
	require.Equal(t, "http://temporal.test/namespaces/default/workflows/hl7-C1", m["temporalUrl"])
	require.NotContains(t, m, "raw", "the message body (PHI) is not part of the summary")
	attempts := m["attempts"].([]any)
	require.Len(t, attempts, 1)
	require.Equal(t, "run-1", attempts[0].(map[string]any)["runId"])
	links := m["resourceLinks"].([]any)
	require.Len(t, links, 1)
	require.Equal(t, "p1", links[0].(map[string]any)["resourceId"])

	// Another tenant's admin sees no such message: the same answer as for an unknown id.
	foreign := s.get("/admin/messages/"+msg.ID.String(), s.token(apiTenantB, auth.AdminScope))
	requireAPIOutcome(t, foreign, http.StatusNotFound, "not-found")
	unknown := s.get("/admin/messages/"+uuid.NewString(), s.token(apiTenantB, auth.AdminScope))
	requireAPIOutcome(t, unknown, http.StatusNotFound, "not-found")
	require.Equal(t, unknown.Body.String(), foreign.Body.String())
	requireAPIOutcome(t, s.get("/admin/messages/not-a-uuid", adminA), http.StatusNotFound, "not-found")
	// Without the admin scope even the owner tenant is refused.
	requireAPIOutcome(t, s.get("/admin/messages/"+msg.ID.String(), s.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")
}

func TestHTTPHealthAndReadiness(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, func(d *Deps) {
		d.Ready = func(context.Context) error { return errors.New("temporal unreachable") }
	})
	rec := s.get("/healthz", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

	rec = s.get("/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	require.Equal(t, "unavailable", decodeBody(t, rec)["status"])

	ready := newAPIServer(t, func(d *Deps) { d.Ready = func(context.Context) error { return nil } })
	rec = ready.get("/readyz", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "ready", decodeBody(t, rec)["status"])
}

func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	require.Equal(t, http.StatusOK, s.get("/healthz", "").Code)
	require.Equal(t, http.StatusOK, s.get("/fhir/metadata", "").Code)
	require.Equal(t, http.StatusUnauthorized, s.get("/fhir/Patient", "").Code)
	require.Equal(t, http.StatusNotFound, s.get("/nope", "").Code)

	rec := s.get("/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `interop_http_requests_total{method="GET",route="/healthz",status="200"} 1`)
	require.Contains(t, body, `interop_http_requests_total{method="GET",route="/fhir/metadata",status="200"} 1`)
	require.Contains(t, body, `interop_http_requests_total{method="GET",route="/fhir/:type",status="401"} 1`)
	require.Contains(t, body, `status="404"`)
	require.Contains(t, body, `interop_http_request_duration_seconds_bucket{method="GET",route="/healthz"`)

	// The registry passed in is the one served.
	families, err := s.reg.Gather()
	require.NoError(t, err)
	var found bool
	for _, f := range families {
		if f.GetName() == "interop_http_requests_total" {
			found = true
		}
	}
	require.True(t, found)
}

// With a token, the CapabilityStatement lists the caller tenant's national profiles beside
// US Core and IPS; without one (or for another tenant) only the base profiles.
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
