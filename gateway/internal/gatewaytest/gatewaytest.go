// Package gatewaytest is what the tests of the gateway's HTTP rooms share: a token signer,
// requests against an echo server in-process, and the assertions on FHIR answers they all
// make. Each room's tests mount that room alone (or gateway.New all of them) on a server of
// their own.
package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// Names the tests share.
const (
	BaseURL = "http://example.test"
	TenantA = "tenant-a"
	TenantB = "tenant-b"
	MRN     = "urn:oid:1.2.3.4.5"
	RWScope = "system/Patient.cruds system/Observation.cruds"
)

// Secret is the HS256 key of the tests' tokens (auth.HS256 signs and verifies them).
var Secret = []byte("0123456789abcdef0123456789abcdef")

// Request is one request to Do.
type Request struct {
	Method, Path, Token string
	Body                io.Reader
	Header              map[string]string
}

// Do serves r on e: GET without a method, a bearer token with Token, and a body as
// application/fhir+json unless Header names a content type.
func Do(e *echo.Echo, r Request) *httptest.ResponseRecorder {
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	req := httptest.NewRequest(r.Method, r.Path, r.Body)
	if r.Token != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+r.Token)
	}
	if r.Body != nil && req.Header.Get(echo.HeaderContentType) == "" {
		req.Header.Set(echo.HeaderContentType, "application/fhir+json")
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// DecodeBody is rec's JSON object body.
func DecodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), "body: %s", rec.Body.String())
	return m
}

// RequireFHIRContentType checks that rec is application/fhir+json.
func RequireFHIRContentType(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.True(t, strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), "application/fhir+json"),
		"content type %q", rec.Header().Get(echo.HeaderContentType))
}

// RequireOutcome checks that rec is an OperationOutcome with status and the first issue's code.
func RequireOutcome(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	RequireFHIRContentType(t, rec)
	require.NotContains(t, strings.ToLower(rec.Body.String()), "<html", "never an HTML body")
	m := DecodeBody(t, rec)
	require.Equal(t, "OperationOutcome", m["resourceType"], "body: %s", rec.Body.String())
	issues, ok := m["issue"].([]any)
	require.True(t, ok && len(issues) > 0, "body: %s", rec.Body.String())
	issue := issues[0].(map[string]any)
	require.Equal(t, code, issue["code"], "body: %s", rec.Body.String())
	require.NotEmpty(t, issue["severity"])
	return m
}

// OutcomeText is the diagnostics of an OperationOutcome's first issue.
func OutcomeText(m map[string]any) string {
	issue := m["issue"].([]any)[0].(map[string]any)
	s, _ := issue["diagnostics"].(string)
	return s
}

// Patient is a Patient with one identifier.
func Patient(system, value string) string {
	return `{"resourceType":"Patient","identifier":[{"system":"` + system + `","value":"` + value + `"}],"name":[{"family":"Doe"}]}`
}

// RequireSearchset checks that rec is a searchset Bundle with a total, and returns the total
// and the entries.
func RequireSearchset(t *testing.T, rec *httptest.ResponseRecorder) (total int, entries []map[string]any) {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	RequireFHIRContentType(t, rec)
	b := DecodeBody(t, rec)
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
