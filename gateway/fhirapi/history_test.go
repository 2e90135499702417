package fhirapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/store"
)

// historyPages follows a history's next links from path and returns its entries as
// "METHOD url" (the request each version came from), and the totals seen.
func (o *ownersSetup) historyPages(t *testing.T, token, path string) (entries []string, totals []any) {
	t.Helper()
	var last time.Time
	for page := 0; path != ""; page++ {
		require.Less(t, page, 50, "history does not end")
		rec := o.get(path, token)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		o.requireNoOwnerURL(t, rec)
		b := decodeBody(t, rec)
		require.Equal(t, "history", b["type"])
		totals = append(totals, b["total"])
		list, _ := b["entry"].([]any)
		for _, x := range list {
			e := x.(map[string]any)
			req := e["request"].(map[string]any)
			resp := e["response"].(map[string]any)
			entries = append(entries, req["method"].(string)+" "+req["url"].(string))
			require.True(t, strings.HasPrefix(e["fullUrl"].(string), apiBaseURL+"/fhir/"), e["fullUrl"])
			at, err := time.Parse(time.RFC3339Nano, resp["lastModified"].(string))
			require.NoError(t, err)
			require.True(t, last.IsZero() || !at.After(last), "newest first, across owners and pages")
			last = at
			if req["method"] == "DELETE" {
				require.Nil(t, e["resource"])
			} else {
				require.NotNil(t, e["resource"])
			}
		}
		path = ""
		for _, l := range b["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				require.True(t, strings.HasPrefix(l["url"].(string), apiBaseURL+"/fhir/"), l["url"])
				path = strings.TrimPrefix(l["url"].(string), apiBaseURL)
			}
		}
	}
	return entries, totals
}

// TestFHIRTypeAndSystemHistory: a type's history comes from its owner(s), merged newest first
// for a type split by category; the system history from every owner of the tenant's routing
// table, each owner's versions of the types the table routes to it; both paged with gateway
// cursors, and both need read scopes (the system history on every type).
func TestFHIRTypeAndSystemHistory(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	var made []string // "METHOD url" of every version, oldest first
	create := func(typ, body string) string {
		id := o.create(t, typ, body)
		made = append(made, "POST "+typ)
		return id
	}
	vital := create("Observation", observation("vital-signs", "8867-4"))
	create("Patient", apiPatient(apiMRN, "hist-1"))
	lab := create("Observation", observation("laboratory", "2345-7"))
	create("Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}}`)
	create("Observation", observation("vital-signs", "8310-5"))
	rec := o.do(apiRequest{method: http.MethodDelete, path: "/fhir/Observation/" + lab, token: o.tokA})
	require.Less(t, rec.Code, 300, rec.Body.String())
	made = append(made, "DELETE Observation/"+lab)
	rec = o.do(apiRequest{method: http.MethodPut, path: "/fhir/Observation/" + vital, token: o.tokA,
		body: strings.NewReader(strings.Replace(observation("vital-signs", "8867-5"), `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+vital+`",`, 1))})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	made = append(made, "PUT Observation/"+vital)
	// A Patient the built-in store holds for tenant A although the table routes Patient
	// elsewhere (written before the rule, say): not part of the tenant's history.
	_, err := (&store.Store{Pool: o.pool}).Create(context.Background(), apiTenantA, []byte(apiPatient(apiMRN, "stale")))
	require.NoError(t, err)
	slices.Reverse(made) // newest first

	only := func(typ string) []string {
		var out []string
		for _, m := range made {
			if strings.HasPrefix(strings.Fields(m)[1], typ) {
				out = append(out, m)
			}
		}
		return out
	}
	// Observation: merged from the vital-signs and laboratory owners.
	obs, totals := o.historyPages(t, o.tokA, "/fhir/Observation/_history")
	require.Equal(t, only("Observation"), obs)
	require.Equal(t, []any{float64(5)}, totals, "one page: the owners' totals summed")
	paged, _ := o.historyPages(t, o.tokA, "/fhir/Observation/_history?_count=2")
	require.Equal(t, obs, paged)
	// Patient: one external owner; Encounter: the built-in store.
	pats, _ := o.historyPages(t, o.tokA, "/fhir/Patient/_history?_count=1")
	require.Equal(t, only("Patient"), pats)
	encs, _ := o.historyPages(t, o.tokA, "/fhir/Encounter/_history")
	require.Equal(t, only("Encounter"), encs)

	// The system history: every owner, the routed types only.
	all, totals := o.historyPages(t, o.tokA, "/fhir/_history")
	require.Equal(t, made, all)
	require.Equal(t, []any{float64(len(made))}, totals)
	for _, n := range []string{"1", "3"} {
		paged, _ := o.historyPages(t, o.tokA, "/fhir/_history?_count="+n)
		require.Equal(t, made, paged, "pages of %s", n)
	}

	// _since is each owner's to apply.
	first := decodeBody(t, o.get("/fhir/_history", o.tokA))["entry"].([]any)
	since := first[2].(map[string]any)["response"].(map[string]any)["lastModified"].(string)
	recent, _ := o.historyPages(t, o.tokA, "/fhir/_history?_count=2&_since="+url.QueryEscape(since))
	require.Equal(t, made[:3], recent)

	// Refusals: a bad _count or cursor, an owner's refusal of a parameter, another tenant's cursor.
	requireAPIOutcome(t, o.get("/fhir/_history?_count=x", o.tokA), http.StatusBadRequest, "value")
	requireAPIOutcome(t, o.get("/fhir/Observation/_history?_cursor=junk", o.tokA), http.StatusBadRequest, "invalid")
	requireAPIOutcome(t, o.get("/fhir/Observation/_history?_at=2024", o.tokA), http.StatusBadRequest, "not-supported")
	page := decodeBody(t, o.get("/fhir/Observation/_history?_count=1", o.tokA))
	var next string
	for _, l := range page["link"].([]any) {
		if l := l.(map[string]any); l["relation"] == "next" {
			next = strings.TrimPrefix(l["url"].(string), apiBaseURL)
		}
	}
	require.NotEmpty(t, next)
	requireAPIOutcome(t, o.get(next, o.tokB), http.StatusBadRequest, "invalid")
	requireAPIOutcome(t, o.get(strings.Replace(next, "/Observation/_history", "/Observation", 1), o.tokA), http.StatusBadRequest, "invalid")
	b, _ := o.historyPages(t, o.tokB, "/fhir/_history")
	require.Empty(t, b, "tenant B has no history")

	// Scopes: read on the type for its history, read on every type for the system history.
	patientsOnly := o.token(apiTenantA, "system/Patient.rs")
	require.Equal(t, http.StatusOK, o.get("/fhir/Patient/_history", patientsOnly).Code)
	requireAPIOutcome(t, o.get("/fhir/Observation/_history", patientsOnly), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, o.get("/fhir/_history", patientsOnly), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, o.get("/fhir/_history", o.token(apiTenantA, "system/*.s")), http.StatusForbidden, "forbidden")
	require.Equal(t, http.StatusOK, o.get("/fhir/_history", o.token(apiTenantA, "system/*.r")).Code)

	// In a batch.
	batch := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/_history?_count=2"}},{"request":{"method":"GET","url":"_history"}}]}`
	rec = o.post("/fhir", o.tokA, batch, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	o.requireNoOwnerURL(t, rec)
	for i, x := range decodeBody(t, rec)["entry"].([]any) {
		e := x.(map[string]any)
		require.Equal(t, "200 OK", e["response"].(map[string]any)["status"], i)
		require.Equal(t, "history", e["resource"].(map[string]any)["type"], i)
	}

	// The CapabilityStatement declares both histories and conditional delete.
	cs := decodeBody(t, o.get("/fhir/metadata", o.tokA))
	rest := cs["rest"].([]any)[0].(map[string]any)
	require.Contains(t, rest["interaction"], map[string]any{"code": "history-system"})
	for _, r := range rest["resource"].([]any) {
		r := r.(map[string]any)
		require.Contains(t, r["interaction"], map[string]any{"code": "history-type"}, r["type"])
		require.Equal(t, "single", r["conditionalDelete"], r["type"])
	}
}
