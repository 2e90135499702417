package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/internal/gatewaytest"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// The shared HTTP test kit (gateway/internal/gatewaytest) under the names this package's
// tests use.
const (
	apiBaseURL = gatewaytest.BaseURL
	apiTenantA = gatewaytest.TenantA
	apiMRN     = gatewaytest.MRN
	apiRWScope = gatewaytest.RWScope
)

var (
	apiSecret         = gatewaytest.Secret
	decodeBody        = gatewaytest.DecodeBody
	requireAPIOutcome = gatewaytest.RequireOutcome
	apiPatient        = gatewaytest.Patient
	requireSearchset  = gatewaytest.RequireSearchset
)

type apiServer struct {
	t      *testing.T
	e      *echo.Echo
	pool   *db.Pool
	signer auth.HS256
	reg    *prometheus.Registry
}

// newAPIServer builds the gateway, every room composed by New, on a fresh database; mod
// adjusts the Deps before New.
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
		Metrics:      httpkit.NewMetrics(reg),
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
	return gatewaytest.Do(s.e, gatewaytest.Request{Method: r.method, Path: r.path, Token: r.token, Body: r.body, Header: r.header})
}

func (s *apiServer) get(path, token string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{path: path, token: token})
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
