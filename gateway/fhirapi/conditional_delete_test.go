package fhirapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFHIRConditionalDelete: DELETE Type?criteria deletes the one match at the type's owner,
// is a no-op without a match and 412 with several, and is refused, not guessed, for a type
// split by category when the criteria do not name one owner's category.
func TestFHIRConditionalDelete(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	del := func(token, query string) *httptest.ResponseRecorder {
		t.Helper()
		return o.do(apiRequest{method: http.MethodDelete, path: "/fhir/" + query, token: token})
	}

	// The built-in store (Encounter) and an external owner (Patient) alike.
	enc := o.create(t, "Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"identifier":[{"system":"urn:enc","value":"e1"}]}`)
	pat := o.create(t, "Patient", apiPatient(apiMRN, "cd-1"))
	o.create(t, "Patient", apiPatient(apiMRN, "cd-2"))
	o.create(t, "Patient", apiPatient(apiMRN, "cd-2"))
	for _, c := range []struct{ query, id string }{
		{"Encounter?identifier=urn:enc|e1", "Encounter/" + enc},
		{"Patient?identifier=" + url.QueryEscape(apiMRN+"|cd-1"), "Patient/" + pat},
	} {
		rec := del(o.tokA, c.query)
		require.Equal(t, http.StatusNoContent, rec.Code, "%s: %s", c.query, rec.Body.String())
		require.Equal(t, `W/"2"`, rec.Header().Get("ETag"), "the deletion's version")
		requireAPIOutcome(t, o.get("/fhir/"+c.id, o.tokA), http.StatusGone, "deleted")
		// Again: nothing matches any more, which is no error.
		rec = del(o.tokA, c.query)
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.Empty(t, rec.Header().Get("ETag"))
	}
	status, _ := o.patients.get(t, o.tokA, "/Patient/"+pat)
	require.Equal(t, http.StatusGone, status, "deleted at its owner")

	// Several matches: 412, nothing deleted.
	rec := del(o.tokA, "Patient?identifier="+url.QueryEscape(apiMRN+"|cd-2"))
	requireAPIOutcome(t, rec, http.StatusPreconditionFailed, "multiple-matches")
	total, _ := requireSearchset(t, o.get("/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|cd-2"), o.tokA))
	require.Equal(t, 2, total)

	// No criteria, unknown criteria, no delete scope.
	requireAPIOutcome(t, del(o.tokA, "Encounter"), http.StatusBadRequest, "required")
	requireAPIOutcome(t, del(o.tokA, "Encounter?_format=json"), http.StatusBadRequest, "required")
	requireAPIOutcome(t, del(o.tokA, "Encounter?no-such-param=1"), http.StatusBadRequest, "not-supported")
	readOnly := o.token(apiTenantA, "system/*.rs")
	requireAPIOutcome(t, del(readOnly, "Encounter?identifier=urn:enc|e1"), http.StatusForbidden, "forbidden")

	// Observation is split by category: criteria naming one owner's category go there ...
	lab := o.create(t, "Observation", observation("laboratory", "2345-7"))
	vital := o.create(t, "Observation", observation("vital-signs", "2345-7"))
	rec = del(o.tokA, "Observation?category=laboratory&code=2345-7")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	status, _ = o.lab.get(t, o.tokA, "/Observation/"+lab)
	require.Equal(t, http.StatusGone, status)
	status, _ = o.vitals.get(t, o.tokA, "/Observation/"+vital)
	require.Equal(t, http.StatusOK, status, "the other owner's match is untouched")
	// ... and criteria that do not are refused, saying why.
	for _, q := range []string{"Observation?code=2345-7", "Observation?category=laboratory,vital-signs&code=2345-7"} {
		out := requireAPIOutcome(t, del(o.tokA, q), http.StatusPreconditionFailed, "business-rule")
		require.Contains(t, outcomeText(out), "ambiguous", q)
		require.Contains(t, outcomeText(out), "category", q)
	}
	requireAPIOutcome(t, del(o.tokA, "Observation?category=social-history&code=x"), http.StatusNotFound, "not-supported")
	status, _ = o.vitals.get(t, o.tokA, "/Observation/"+vital)
	require.Equal(t, http.StatusOK, status)

	// In a batch, routed the same way.
	batch := `{"resourceType":"Bundle","type":"batch","entry":[
		{"request":{"method":"DELETE","url":"Observation?category=vital-signs&code=2345-7"}},
		{"request":{"method":"DELETE","url":"Observation?code=2345-7"}},
		{"request":{"method":"DELETE","url":"Patient?identifier=` + url.QueryEscape(apiMRN+"|cd-2") + `"}}]}`
	rec = o.post("/fhir", o.tokA, batch, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var statuses []string
	for _, e := range decodeBody(t, rec)["entry"].([]any) {
		statuses = append(statuses, e.(map[string]any)["response"].(map[string]any)["status"].(string))
	}
	require.Equal(t, []string{"204 No Content", "412 Precondition Failed", "412 Precondition Failed"}, statuses)
	status, _ = o.vitals.get(t, o.tokA, "/Observation/"+vital)
	require.Equal(t, http.StatusGone, status)
	o.requireNoOwnerURL(t, rec)

	// Tenant B deletes nothing of A's.
	o.create(t, "Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"identifier":[{"system":"urn:enc","value":"e2"}]}`)
	require.Equal(t, http.StatusNoContent, del(o.tokB, "Encounter?identifier=urn:enc|e2").Code)
	total, _ = requireSearchset(t, o.get("/fhir/Encounter?identifier=urn:enc|e2", o.tokA))
	require.Equal(t, 1, total)
}
