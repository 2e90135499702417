package fhirapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
)

// requireNoInternals fails if a body shows database or Go internals.
func requireNoInternals(t *testing.T, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	for _, leak := range []string{"sqlstate", "pgx", "syntax error", "error:", "panic", "goroutine", ".go:", "fhir_resources", builtinBase} {
		require.NotContains(t, lower, strings.ToLower(leak), "internal detail leaked: %s", body)
	}
}

func TestFHIRSecurity(t *testing.T) {
	t.Parallel()
	const limit = 2048
	s := newAPIServer(t, func(d *Deps) { d.MaxBodyBytes = limit })
	tokA := s.token(apiTenantA, "system/*.cruds")
	tokB := s.token(apiTenantB, "system/*.cruds")
	idA := s.createPatient(tokA, apiMRN, "sec-1")

	t.Run("tokens", func(t *testing.T) {
		expired, err := auth.HS256{Secret: apiSecret, Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}.Issue("c", apiTenantA, "system/*.cruds", time.Hour)
		require.NoError(t, err)
		forged, err := auth.HS256{Secret: []byte("not-the-secret-not-the-secret-00")}.Issue("c", apiTenantA, "system/*.cruds", time.Hour)
		require.NoError(t, err)
		for _, tok := range []string{"", expired, forged, tokA[:len(tokA)-3] + "abc"} {
			for _, r := range []apiRequest{
				{method: http.MethodGet, path: "/fhir/Patient/" + idA},
				{method: http.MethodGet, path: "/fhir/Patient/" + idA + "/_history"},
				{method: http.MethodGet, path: "/fhir/Patient/" + idA + "/_history/1"},
				{method: http.MethodPut, path: "/fhir/Patient/" + idA, body: strings.NewReader(apiPatient(apiMRN, "x"))},
				{method: http.MethodDelete, path: "/fhir/Patient/" + idA},
				{method: http.MethodPost, path: "/fhir", body: strings.NewReader(`{"resourceType":"Bundle","type":"batch"}`)},
			} {
				r.token = tok
				rec := s.do(r)
				requireAPIOutcome(t, rec, http.StatusUnauthorized, "login")
				require.NotContains(t, rec.Body.String(), "Doe")
			}
		}
		require.Equal(t, http.StatusOK, s.get("/fhir/Patient/"+idA, tokA).Code, "nothing was changed or deleted")
	})

	t.Run("scopes", func(t *testing.T) {
		noDelete := s.token(apiTenantA, "system/Patient.crus")
		requireAPIOutcome(t, s.do(apiRequest{method: http.MethodDelete, path: "/fhir/Patient/" + idA, token: noDelete}), http.StatusForbidden, "forbidden")
		readOnly := s.token(apiTenantA, "system/Patient.rs")
		requireAPIOutcome(t, s.do(apiRequest{method: http.MethodPut, path: "/fhir/Patient/" + idA, token: readOnly,
			body: strings.NewReader(apiPatient(apiMRN, "sec-1"))}), http.StatusForbidden, "forbidden")
		requireAPIOutcome(t, s.get("/fhir/Observation?_id="+idA, readOnly), http.StatusForbidden, "forbidden")
		require.Equal(t, http.StatusOK, s.get("/fhir/Patient/"+idA+"/_history", readOnly).Code)
	})

	t.Run("other tenant", func(t *testing.T) {
		missing := s.get("/fhir/Patient/00000000-0000-0000-0000-000000000000/_history", tokB)
		for _, p := range []string{"/fhir/Patient/" + idA, "/fhir/Patient/" + idA + "/_history/1"} {
			requireAPIOutcome(t, s.get(p, tokB), http.StatusNotFound, "not-found")
		}
		hist := s.get("/fhir/Patient/"+idA+"/_history", tokB)
		require.Equal(t, missing.Code, hist.Code, "history of A's id answers B as for no id: %s", hist.Body.String())
		// B's delete and update of A's id never touch A's resource.
		s.do(apiRequest{method: http.MethodDelete, path: "/fhir/Patient/" + idA, token: tokB})
		s.do(apiRequest{method: http.MethodPut, path: "/fhir/Patient/" + idA, token: tokB,
			body: strings.NewReader(`{"resourceType":"Patient","id":"` + idA + `","name":[{"family":"Mallory"}]}`)})
		rec := s.get("/fhir/Patient/"+idA, tokA)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "1", decodeBody(t, rec)["meta"].(map[string]any)["versionId"])
		require.NotContains(t, rec.Body.String(), "Mallory")
		// B's batch cannot reach A's id either.
		rec = s.post("/fhir", tokB, `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/`+idA+`"}}]}`, nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), "sec-1")
	})

	t.Run("injection-shaped search values", func(t *testing.T) {
		for _, q := range []string{
			"identifier=" + url.QueryEscape("x' OR '1'='1"),
			"identifier=" + url.QueryEscape(apiMRN+"|sec-1' OR 1=1--"),
			"_id=" + url.QueryEscape("1;DROP TABLE users"),
			"_lastUpdated=" + url.QueryEscape("gt2020-01-01'--"),
			"name=" + url.QueryEscape("'); DELETE FROM users;--"),
			"_sort=" + url.QueryEscape("_id;DROP TABLE x"),
			"_count=" + url.QueryEscape("1 OR 1=1"),
			"identifier=" + url.QueryEscape(`\x00"}]}`),
			"_cursor=" + url.QueryEscape("' OR 1=1--"),
		} {
			rec := s.get("/fhir/Patient?"+q, tokB)
			t.Logf("%s → %d", q, rec.Code)
			require.Less(t, rec.Code, 500, "%s: %s", q, rec.Body.String())
			requireNoInternals(t, rec.Body.String())
			if rec.Code == http.StatusOK {
				total, _ := requireSearchset(t, rec)
				require.Zero(t, total, q)
			} else {
				require.Equal(t, "OperationOutcome", decodeBody(t, rec)["resourceType"], q)
			}
		}
		total, _ := requireSearchset(t, s.get("/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|sec-1"), tokA))
		require.Equal(t, 1, total, "the data is intact")
	})

	t.Run("oversized bodies", func(t *testing.T) {
		big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("x", 2*limit) + `"}}`
		requireAPIOutcome(t, s.do(apiRequest{method: http.MethodPut, path: "/fhir/Patient/" + idA, token: tokA, body: strings.NewReader(big)}),
			http.StatusRequestEntityTooLarge, "too-long")
		requireAPIOutcome(t, s.post("/fhir", tokA, `{"resourceType":"Bundle","type":"batch","entry":[{"resource":`+big+`,"request":{"method":"POST","url":"Patient"}}]}`, nil),
			http.StatusRequestEntityTooLarge, "too-long")
	})

	t.Run("paging cursor of a single owner", func(t *testing.T) {
		s.createPatient(tokA, apiMRN, "sec-2")
		rec := s.get("/fhir/Patient?_count=1", tokA)
		_, _ = requireSearchset(t, rec)
		var next string
		for _, l := range decodeBody(t, rec)["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next = strings.TrimPrefix(l["url"].(string), apiBaseURL)
			}
		}
		require.NotEmpty(t, next)
		require.Equal(t, http.StatusOK, s.get(next, tokA).Code)
		requireAPIOutcome(t, s.get(next, tokB), http.StatusBadRequest, "invalid")
		requireAPIOutcome(t, s.get(strings.Replace(next, "_cursor=", "_cursor=x", 1), tokA), http.StatusBadRequest, "invalid")
	})
}
