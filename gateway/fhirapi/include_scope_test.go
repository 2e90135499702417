package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/store"
)

// newNaiveOwner is an owning service that checks the token's tenant but not its scopes (it
// trusts whoever calls it): what the gateway's own filtering must make up for.
func newNaiveOwner(t *testing.T) *testOwner {
	t.Helper()
	_, pool := dbtest.New(t)
	h := fhirserver.New(&store.Store{Pool: pool}, fhirserver.Options{})
	verifier := auth.HS256{Secret: apiSecret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		p, err := verifier.Verify(tok)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(fhirserver.WithTenant(r.Context(), p.Tenant)))
	}))
	t.Cleanup(srv.Close)
	return &testOwner{srv: srv, url: srv.URL}
}

// entriesOf decodes a searchset (or any Bundle) body's entries.
func entriesOf(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var b struct {
		Entry []map[string]any `json:"entry"`
	}
	require.NoError(t, json.Unmarshal(body, &b), string(body))
	return b.Entry
}

// typesAndOutcomes lists the resource types of a searchset's non-outcome entries, and the
// diagnostics of its outcome entries.
func typesAndOutcomes(t *testing.T, entries []map[string]any) (types []string, outcomes []string) {
	t.Helper()
	for _, e := range entries {
		res, _ := e["resource"].(map[string]any)
		mode := ""
		if s, ok := e["search"].(map[string]any); ok {
			mode, _ = s["mode"].(string)
		}
		if mode == "outcome" {
			require.Equal(t, "OperationOutcome", res["resourceType"])
			for _, is := range res["issue"].([]any) {
				is := is.(map[string]any)
				d, _ := is["diagnostics"].(string)
				outcomes = append(outcomes, is["code"].(string)+": "+d)
			}
			continue
		}
		types = append(types, res["resourceType"].(string))
	}
	return types, outcomes
}

// requireIncludeWithheld checks a searchset answered to a token without read on Patient: the
// Observations, no Patient, and an outcome entry saying Patient was left out.
func requireIncludeWithheld(t *testing.T, body []byte) {
	t.Helper()
	require.NotContains(t, string(body), "inc-secret", "the Patient's content leaked: %s", body)
	types, outcomes := typesAndOutcomes(t, entriesOf(t, body))
	require.NotEmpty(t, types, string(body))
	for _, typ := range types {
		require.Equal(t, "Observation", typ, string(body))
	}
	require.NotEmpty(t, outcomes, "an outcome entry says what was left out: %s", body)
	require.Contains(t, strings.Join(outcomes, "\n"), "Patient", string(body))
	require.Contains(t, strings.Join(outcomes, "\n"), "suppressed", string(body))
}

// requireIncluded checks a searchset answered to a token reading every type: the Patient is there.
func requireIncluded(t *testing.T, body []byte) {
	t.Helper()
	types, _ := typesAndOutcomes(t, entriesOf(t, body))
	require.Contains(t, types, "Patient", string(body))
}

func observationOf(category, patientID string) string {
	return strings.Replace(observation(category, "8867-4"), "Patient/p1", "Patient/"+patientID, 1)
}

// includeChecks runs every way of reaching an included Patient with a token that reads
// Observations only.
func includeChecks(t *testing.T, s *apiServer, search string) {
	t.Helper()
	obsOnly := s.token(apiTenantA, "system/Observation.rs")
	full := s.token(apiTenantA, "system/*.rs")

	rec := s.get("/fhir/"+search, obsOnly)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireIncludeWithheld(t, rec.Body.Bytes())
	rec = s.get("/fhir/"+search, full)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireIncluded(t, rec.Body.Bytes())

	// A POST _search is the same search.
	path, query, _ := strings.Cut(search, "?")
	rec = s.post("/fhir/"+path+"/_search", obsOnly, query, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireIncludeWithheld(t, rec.Body.Bytes())

	// In a batch and in a transaction, the entry's searchset is filtered the same way.
	for _, typ := range []string{"batch", "transaction"} {
		bundle := `{"resourceType":"Bundle","type":"` + typ + `","entry":[{"request":{"method":"GET","url":` + jsonString(search) + `}}]}`
		rec = s.post("/fhir", obsOnly, bundle, nil)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", typ, rec.Body.String())
		require.NotContains(t, rec.Body.String(), "inc-secret", "%s: %s", typ, rec.Body.String())
		entries := entriesOf(t, rec.Body.Bytes())
		require.Len(t, entries, 1, rec.Body.String())
		inner, err := json.Marshal(entries[0]["resource"])
		require.NoError(t, err)
		requireIncludeWithheld(t, inner)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// An included resource needs the read scope of its type (issue #14): a token reading
// Observations only gets the Observations of Observation?_include=Observation:subject, not
// the Patients it would be refused by a read, and an outcome entry says what was left out.
func TestIncludeNeedsReadScopeBuiltin(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	full := s.token(apiTenantA, "system/*.cruds")
	pid := s.createPatient(full, "urn:mrn", "inc-secret")
	rec := s.post("/fhir/Observation", full, observationOf("vital-signs", pid), nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	requireAPIOutcome(t, s.get("/fhir/Patient/"+pid, s.token(apiTenantA, "system/Observation.rs")), http.StatusForbidden, "forbidden")

	includeChecks(t, s, "Observation?_include=Observation:subject")
}

// The same holds when the types are owned by another service that does not check scopes
// itself: the gateway filters its answer, for a search relayed to one owner and for a
// fan-out across owners.
func TestIncludeNeedsReadScopeRemoteOwners(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, func(d *Deps) { d.FHIR.RoutingCacheTTL = -1 })
	vitals, lab := newNaiveOwner(t), newNaiveOwner(t)
	rule := func(typ, cat, owner string) {
		_, err := s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, category, owner_url)
			VALUES ($1, $2, $3, $4)`, apiTenantA, typ, cat, owner)
		require.NoError(t, err)
	}
	rule("Observation", "vital-signs", vitals.url)
	rule("Observation", "laboratory", lab.url)
	rule("Patient", "", vitals.url)
	full := s.token(apiTenantA, "system/*.cruds")
	pid := s.createPatient(full, "urn:mrn", "inc-secret")
	rec := s.post("/fhir/Observation", full, observationOf("vital-signs", pid), nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rec = s.post("/fhir/Observation", full, observationOf("laboratory", pid), nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	// One owner: the search names the category.
	t.Run("one owner", func(t *testing.T) {
		includeChecks(t, s, "Observation?category=vital-signs&_include=Observation:subject")
	})
	// Every owner of Observation, merged (a transaction cannot span them: only the batch).
	t.Run("fan-out", func(t *testing.T) {
		obsOnly := s.token(apiTenantA, "system/Observation.rs")
		rec := s.get("/fhir/Observation?_include=Observation:subject", obsOnly)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		requireIncludeWithheld(t, rec.Body.Bytes())
		rec = s.get("/fhir/Observation?_include=Observation:subject", s.token(apiTenantA, "system/*.rs"))
		requireIncluded(t, rec.Body.Bytes())
	})
}
