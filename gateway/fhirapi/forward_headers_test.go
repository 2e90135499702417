package fhirapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFHIRConditionalUpdateForwardsPreconditions: a conditional update sent to an external
// owner carries the client's If-Match and If-None-Match, from a REST request and from a batch
// entry's ifMatch, so that the owner, not the gateway, decides on the precondition.
func TestFHIRConditionalUpdateForwardsPreconditions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []http.Header
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("ETag", `W/"4"`)
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"p1","meta":{"versionId":"4"}}`))
	}))
	t.Cleanup(owner.Close)
	s := newAPIServer(t, func(d *Deps) { d.FHIR.RoutingCacheTTL = -1 })
	_, err := s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ($1, 'Patient', $2)`, apiTenantA, owner.URL)
	require.NoError(t, err)
	tok := s.token(apiTenantA, apiRWScope)

	rec := s.do(apiRequest{method: http.MethodPut, path: "/fhir/Patient?identifier=urn:mrn|1", token: tok,
		body:   strings.NewReader(`{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"1"}]}`),
		header: map[string]string{"If-Match": `W/"3"`, "If-None-Match": `W/"2"`}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = s.post("/fhir", tok, `{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"},
		"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|1","ifMatch":"W/\"3\""}}]}`, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	require.Equal(t, `W/"3"`, seen[0].Get("If-Match"))
	require.Equal(t, `W/"2"`, seen[0].Get("If-None-Match"))
	require.Equal(t, `W/"3"`, seen[1].Get("If-Match"))
}
