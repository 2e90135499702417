package fhirapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// badTexts are JSON strings PostgreSQL cannot store (issue #14: they were 502s, SQLSTATE
// 22021/22P02/22P05 surfacing), each with what the 400 must name.
var badTexts = []struct{ name, value, want string }{
	{"invalid UTF-8", "\"Do\xffe\"", "UTF-8"},
	{"a surrogate encoded as UTF-8", "\"Do\xed\xa0\x80e\"", "UTF-8"},
	{"lone high surrogate", `"Do\ud800e"`, "lone surrogate"},
	{"lone low surrogate", `"\udfff"`, "lone surrogate"},
	{"NUL escape", `"Do\u0000e"`, "NUL"},
}

// Request bodies whose text PostgreSQL cannot store are the client's error: 400 invalid,
// naming the problem, before anything reaches an owner — for every interaction with a body
// and every kind of owner.
func TestFHIRRefusesTextPostgresCannotStore(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, func(d *Deps) { d.FHIR.RoutingCacheTTL = -1 })
	remote := newTestOwner(t)
	_, err := s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ($1, 'Practitioner', $2)`,
		apiTenantA, remote.url)
	require.NoError(t, err)
	tok := s.token(apiTenantA, "system/*.cruds")
	pid := s.createPatient(tok, apiMRN, "text-1")

	for _, bt := range badTexts {
		patient := `{"resourceType":"Patient","name":[{"family":` + bt.value + `}]}`
		practitioner := `{"resourceType":"Practitioner","name":[{"family":` + bt.value + `}]}`
		withID := `{"resourceType":"Patient","id":"` + pid + `","name":[{"family":` + bt.value + `}]}`
		for _, r := range []apiRequest{
			{method: http.MethodPost, path: "/fhir/Patient", body: strings.NewReader(patient)},
			{method: http.MethodPost, path: "/fhir/Practitioner", body: strings.NewReader(practitioner)},
			{method: http.MethodPut, path: "/fhir/Patient/" + pid, body: strings.NewReader(withID)},
			{method: http.MethodPut, path: "/fhir/Patient?identifier=" + apiMRN + "|text-1", body: strings.NewReader(patient)},
			{method: http.MethodPost, path: "/fhir", body: strings.NewReader(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + patient + `,"request":{"method":"POST","url":"Patient"}}]}`)},
			{method: http.MethodPost, path: "/fhir", body: strings.NewReader(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + patient + `,"request":{"method":"POST","url":"Patient"}}]}`)},
			{method: http.MethodPost, path: "/fhir", body: strings.NewReader(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + practitioner + `,"request":{"method":"POST","url":"Practitioner"}}]}`)},
		} {
			r.token = tok
			rec := s.do(r)
			m := requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
			require.Contains(t, outcomeText(m), bt.want, "%s %s (%s)", r.method, r.path, bt.name)
			requireNoInternals(t, rec.Body.String())
		}
	}
	// Search values PostgreSQL cannot compare, in the query or a _search form.
	for _, v := range []string{"%00", "%FF", "a%ED%A0%80"} {
		rec := s.get("/fhir/Patient?identifier="+v, tok)
		requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
		rec = s.post("/fhir/Practitioner/_search", tok, "identifier="+v, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
	}
	rec := s.get("/fhir/Patient/"+pid, tok)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "1", decodeBody(t, rec)["meta"].(map[string]any)["versionId"], "nothing was written")
}
