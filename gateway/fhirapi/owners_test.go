package fhirapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/store"
)

// testOwner is a separate owning service: the built-in store's FHIR handler on its own
// database and its own HTTP listener, verifying the bearer token the gateway forwards.
type testOwner struct {
	srv *httptest.Server
	url string
	// requests counts the requests the owner received.
	requests *atomic.Int64
}

func newTestOwner(t *testing.T) *testOwner {
	t.Helper()
	_, pool := dbtest.New(t)
	verifier := auth.HS256{Secret: apiSecret}
	h := fhirserver.New(&store.Store{Pool: pool}, fhirserver.Options{
		Authorize: func(ctx context.Context, typ string, in auth.Interaction) bool {
			scopes, _ := ctx.Value(scopesKey{}).(auth.Scopes)
			return scopes.Allows(typ, in)
		},
	})
	requests := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		p, err := verifier.Verify(tok)
		if err != nil {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login"}]}`))
			return
		}
		ctx := context.WithValue(fhirserver.WithTenant(r.Context(), p.Tenant), scopesKey{}, p.Scopes)
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return &testOwner{srv: srv, url: srv.URL, requests: requests}
}

// get reads path from the owner directly, as tenant.
func (o *testOwner) get(t *testing.T, token, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, o.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

type ownersSetup struct {
	*apiServer
	vitals, lab, patients *testOwner
	tokA, tokB            string
}

// newOwnersSetup starts three owning services behind one gateway for tenant A: Observation
// split by category between vitals and lab, Patient owned by patients, every other type by
// the built-in store.
func newOwnersSetup(t *testing.T, mods ...func(*Deps)) *ownersSetup {
	t.Helper()
	s := newAPIServer(t, func(d *Deps) {
		d.FHIR.RoutingCacheTTL = -1
		d.FHIR.OwnerTimeout = 3 * time.Second
		for _, m := range mods {
			m(d)
		}
	})
	o := &ownersSetup{apiServer: s, vitals: newTestOwner(t), lab: newTestOwner(t), patients: newTestOwner(t)}
	for _, r := range []struct{ typ, cat, owner string }{
		{"Observation", "vital-signs", o.vitals.url},
		{"Observation", "laboratory", o.lab.url},
		{"Patient", "", o.patients.url},
	} {
		_, err := s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, category, owner_url)
			VALUES ($1, $2, $3, $4)`, apiTenantA, r.typ, r.cat, r.owner)
		require.NoError(t, err)
	}
	scope := "system/*.cruds"
	o.tokA, o.tokB = s.token(apiTenantA, scope), s.token(apiTenantB, scope)
	return o
}

func observation(category, code string) string {
	return `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` +
		category + `"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},"subject":{"reference":"Patient/p1"}}`
}

// requireNoOwnerURL fails if any owner's address is in rec.
func (o *ownersSetup) requireNoOwnerURL(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for _, own := range []*testOwner{o.vitals, o.lab, o.patients} {
		host := strings.TrimPrefix(own.url, "http://")
		require.NotContains(t, rec.Body.String(), host, "owner address leaked in the body")
		for k, vs := range rec.Header() {
			for _, v := range vs {
				require.NotContains(t, v, host, "owner address leaked in header %s", k)
			}
		}
	}
	require.NotContains(t, rec.Body.String(), builtinBase)
}

func (o *ownersSetup) create(t *testing.T, typ, body string) string {
	t.Helper()
	rec := o.post("/fhir/"+typ, o.tokA, body, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	o.requireNoOwnerURL(t, rec)
	id, _ := decodeBody(t, rec)["id"].(string)
	require.NotEmpty(t, id)
	require.True(t, strings.HasPrefix(rec.Header().Get("Location"), apiBaseURL+"/fhir/"+typ+"/"+id+"/_history/"), rec.Header().Get("Location"))
	return id
}

func TestFHIRGatewayRoutesToOwners(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)

	vital := o.create(t, "Observation", observation("vital-signs", "8867-4"))
	lab := o.create(t, "Observation", observation("laboratory", "2345-7"))
	pat := o.create(t, "Patient", apiPatient(apiMRN, "own-1"))
	enc := o.create(t, "Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}}`)

	// Each landed on its owner, and only there.
	for _, c := range []struct {
		owner *testOwner
		path  string
		want  int
	}{
		{o.vitals, "/Observation/" + vital, 200}, {o.lab, "/Observation/" + vital, 404},
		{o.lab, "/Observation/" + lab, 200}, {o.vitals, "/Observation/" + lab, 404},
		{o.patients, "/Patient/" + pat, 200},
		{o.patients, "/Encounter/" + enc, 404}, {o.vitals, "/Encounter/" + enc, 404},
	} {
		status, _ := c.owner.get(t, o.tokA, c.path)
		require.Equal(t, c.want, status, c.path)
	}

	// Reads by id of the split type ask every owner and find each.
	for _, id := range []string{vital, lab} {
		rec := o.get("/fhir/Observation/"+id, o.tokA)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, `W/"1"`, rec.Header().Get("ETag"))
		require.Equal(t, id, decodeBody(t, rec)["id"])
		o.requireNoOwnerURL(t, rec)
	}
	requireAPIOutcome(t, o.get("/fhir/Observation/no-such-id", o.tokA), http.StatusNotFound, "not-found")
	require.Equal(t, http.StatusOK, o.get("/fhir/Patient/"+pat, o.tokA).Code)
	require.Equal(t, http.StatusOK, o.get("/fhir/Encounter/"+enc, o.tokA).Code)

	// Update with If-Match, vread, history, delete → 410.
	rec := o.do(apiRequest{method: http.MethodPut, path: "/fhir/Observation/" + lab, token: o.tokA,
		body:   strings.NewReader(strings.Replace(observation("laboratory", "2345-7"), `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+lab+`",`, 1)),
		header: map[string]string{"If-Match": `W/"7"`}})
	requireAPIOutcome(t, rec, http.StatusPreconditionFailed, "conflict")
	rec = o.do(apiRequest{method: http.MethodPut, path: "/fhir/Observation/" + lab, token: o.tokA,
		body:   strings.NewReader(strings.Replace(observation("laboratory", "2345-8"), `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+lab+`",`, 1)),
		header: map[string]string{"If-Match": `W/"1"`}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, `W/"2"`, rec.Header().Get("ETag"))
	o.requireNoOwnerURL(t, rec)
	rec = o.get("/fhir/Observation/"+lab+"/_history/1", o.tokA)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = o.get("/fhir/Observation/"+lab+"/_history", o.tokA)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "history", decodeBody(t, rec)["type"])
	o.requireNoOwnerURL(t, rec)
	rec = o.do(apiRequest{method: http.MethodDelete, path: "/fhir/Observation/" + lab, token: o.tokA})
	require.Less(t, rec.Code, 300, rec.Body.String())
	requireAPIOutcome(t, o.get("/fhir/Observation/"+lab, o.tokA), http.StatusGone, "deleted")
	status, _ := o.lab.get(t, o.tokA, "/Observation/"+lab)
	require.Equal(t, http.StatusGone, status, "deleted at its owner")

	// Writes of the split type without an owned category are refused, never guessed.
	requireAPIOutcome(t, o.post("/fhir/Observation", o.tokA, `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, nil),
		http.StatusUnprocessableEntity, "business-rule")
	requireAPIOutcome(t, o.post("/fhir/Observation", o.tokA, observation("social-history", "x"), nil),
		http.StatusUnprocessableEntity, "business-rule")

	// Prefer is honoured whatever the owner.
	rec = o.post("/fhir/Observation", o.tokA, observation("vital-signs", "1"), map[string]string{"Prefer": "return=minimal"})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Empty(t, rec.Body.String())
	rec = o.post("/fhir/Observation", o.tokA, observation("vital-signs", "2"), map[string]string{"Prefer": "return=OperationOutcome"})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "OperationOutcome", decodeBody(t, rec)["resourceType"])

	// Conditional create on an external owner.
	cond := map[string]string{"If-None-Exist": "identifier=" + apiMRN + "|own-1"}
	rec = o.post("/fhir/Patient", o.tokA, apiPatient(apiMRN, "own-1"), cond)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, pat, decodeBody(t, rec)["id"])

	// Tenant B sees nothing of A's, at any owner.
	for _, p := range []string{"/fhir/Observation/" + vital, "/fhir/Observation/" + lab, "/fhir/Patient/" + pat} {
		rec := o.get(p, o.tokB)
		require.Contains(t, []int{http.StatusNotFound}, rec.Code, "%s: %s", p, rec.Body.String())
	}
}

// pageIDs follows next links from path and returns the ids in order, the totals seen and the
// page sizes.
func (o *ownersSetup) pageIDs(t *testing.T, token, path string) (ids []string, totals []int, sizes []int) {
	t.Helper()
	for page := 0; path != "" && page < 50; page++ {
		rec := o.get(path, token)
		total, entries := requireSearchset(t, rec)
		o.requireNoOwnerURL(t, rec)
		totals = append(totals, total)
		n := 0
		for _, e := range entries {
			if e["search"].(map[string]any)["mode"] != "match" {
				continue
			}
			n++
			ids = append(ids, e["resource"].(map[string]any)["id"].(string))
			require.True(t, strings.HasPrefix(e["fullUrl"].(string), apiBaseURL+"/fhir/Observation/"))
		}
		sizes = append(sizes, n)
		path = ""
		for _, l := range decodeBody(t, rec)["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next := l["url"].(string)
				require.True(t, strings.HasPrefix(next, apiBaseURL+"/fhir/Observation?"), next)
				path = strings.TrimPrefix(next, apiBaseURL)
			}
		}
	}
	return ids, totals, sizes
}

func TestFHIRGatewayFanOutSearch(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	var created []string // in creation order = _lastUpdated order
	labIDs := map[string]bool{}
	for i := range 9 {
		cat := "vital-signs"
		if i%3 == 1 {
			cat = "laboratory"
		}
		id := o.create(t, "Observation", observation(cat, fmt.Sprint("c", i)))
		created = append(created, id)
		if cat == "laboratory" {
			labIDs[id] = true
		}
	}

	// No category: both owners, merged by _lastUpdated, totals summed, paged across owners.
	ids, totals, sizes := o.pageIDs(t, o.tokA, "/fhir/Observation?_count=2")
	require.Equal(t, created, ids, "every match once, in _lastUpdated order")
	require.Equal(t, []int{2, 2, 2, 2, 1}, sizes)
	for _, tot := range totals {
		require.Equal(t, 9, tot)
	}
	// Descending, and a page size that straddles owner pages.
	ids, _, _ = o.pageIDs(t, o.tokA, "/fhir/Observation?_count=4&_sort=-_lastUpdated")
	want := make([]string, len(created))
	for i, id := range created {
		want[len(created)-1-i] = id
	}
	require.Equal(t, want, ids)
	// POST _search merges as well.
	rec := o.post("/fhir/Observation/_search", o.tokA, "_count=50", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	total, entries := requireSearchset(t, rec)
	require.Equal(t, 9, total)
	require.Len(t, entries, 9)
	// _count=0: the total only.
	total, entries = requireSearchset(t, o.get("/fhir/Observation?_count=0", o.tokA))
	require.Equal(t, 9, total)
	require.Empty(t, entries)
	// _summary=count: the owners' totals summed, no entries, no next link, whatever _count
	// says; with a category, the one owner's count.
	for path, want := range map[string]int{
		"/fhir/Observation?_summary=count":                       9,
		"/fhir/Observation?_summary=count&_count=2":              9,
		"/fhir/Observation?_summary=count&_sort=-_lastUpdated":   9,
		"/fhir/Observation?_summary=count&category=laboratory":   3,
		"/fhir/Observation?_summary=count&category=vital-signs":  6,
		"/fhir/Observation?_summary=count&code=nothing-has-this": 0,
	} {
		rec := o.get(path, o.tokA)
		total, entries := requireSearchset(t, rec)
		require.Equal(t, want, total, path)
		require.Empty(t, entries, path)
		for _, l := range decodeBody(t, rec)["link"].([]any) {
			require.NotEqual(t, "next", l.(map[string]any)["relation"], path)
		}
	}
	requireAPIOutcome(t, o.get("/fhir/Observation?_summary=count&_summary=count", o.tokA), http.StatusBadRequest, "value")

	// category=laboratory goes to that owner only.
	ids, totals, _ = o.pageIDs(t, o.tokA, "/fhir/Observation?category=laboratory&_count=2")
	require.Len(t, ids, 3)
	for _, id := range ids {
		require.True(t, labIDs[id])
	}
	require.Equal(t, 3, totals[0])

	// Paging cursors are bound to the tenant and the search, and cannot be altered.
	rec = o.get("/fhir/Observation?_count=2", o.tokA)
	var next string
	for _, l := range decodeBody(t, rec)["link"].([]any) {
		if l := l.(map[string]any); l["relation"] == "next" {
			next = strings.TrimPrefix(l["url"].(string), apiBaseURL)
		}
	}
	require.NotEmpty(t, next)
	u, err := url.Parse(next)
	require.NoError(t, err)
	cursor := u.Query().Get(cursorParam)
	require.NotEmpty(t, cursor)
	requireAPIOutcome(t, o.get(next, o.tokB), http.StatusBadRequest, "invalid") // another tenant
	flipped := []byte(cursor)
	flipped[3] ^= 1
	for _, bad := range []string{string(flipped), cursor + "x", "garbage", strings.Repeat("A", 20000)} {
		requireAPIOutcome(t, o.get("/fhir/Observation?_count=2&_cursor="+url.QueryEscape(bad), o.tokA), http.StatusBadRequest, "invalid")
	}
	// The same cursor with another query (here another page size or filter) is refused.
	requireAPIOutcome(t, o.get("/fhir/Observation?_count=3&_cursor="+url.QueryEscape(cursor), o.tokA), http.StatusBadRequest, "invalid")
	requireAPIOutcome(t, o.get("/fhir/Observation?_count=2&code=x&_cursor="+url.QueryEscape(cursor), o.tokA), http.StatusBadRequest, "invalid")
	require.Equal(t, http.StatusOK, o.get(next, o.tokA).Code)

	// Tenant B's fan-out sees none of A's.
	total, entries = requireSearchset(t, o.get("/fhir/Observation", o.tokB))
	require.Zero(t, total)
	require.Empty(t, entries)

	// One owner down: a partial result with an outcome entry and a warning.
	o.lab.srv.Close()
	rec = o.get("/fhir/Observation?_count=50", o.tokA)
	total, entries = requireSearchset(t, rec)
	o.requireNoOwnerURL(t, rec)
	require.Equal(t, 6, total, "the total of the owners that answered")
	var outcomes int
	for _, e := range entries {
		if e["search"].(map[string]any)["mode"] == "outcome" {
			outcomes++
			oo := e["resource"].(map[string]any)
			require.Equal(t, "OperationOutcome", oo["resourceType"])
			require.Equal(t, "warning", oo["issue"].([]any)[0].(map[string]any)["severity"])
		}
	}
	require.Equal(t, 1, outcomes)
	require.Len(t, entries, 7)
	require.NotEmpty(t, rec.Header().Get("Warning"))
	// Reads by id still find what the live owner has; what only the dead one could have is 502.
	require.Equal(t, http.StatusOK, o.get("/fhir/Observation/"+created[0], o.tokA).Code)
	requireAPIOutcome(t, o.get("/fhir/Observation/"+created[1], o.tokA), http.StatusBadGateway, "transient")

	// All owners down: 502.
	o.vitals.srv.Close()
	rec = o.get("/fhir/Observation", o.tokA)
	requireAPIOutcome(t, rec, http.StatusBadGateway, "transient")
	o.requireNoOwnerURL(t, rec)
}

// TestFHIRGatewayFanOutCountWithOwnerIgnoringSummary: an owner that does not implement
// _summary=count (here the lab owner behind a proxy that drops the parameter) still gives
// the gateway a count, not a page of entries: the fan-out asks every owner for _count=0.
func TestFHIRGatewayFanOutCountWithOwnerIgnoringSummary(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	for i := range 6 {
		cat := "vital-signs"
		if i%2 == 1 {
			cat = "laboratory"
		}
		o.create(t, "Observation", observation(cat, fmt.Sprint("c", i)))
	}
	target, err := url.Parse(o.lab.url)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	ignoring := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("_summary")
		r.URL.RawQuery = q.Encode()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ignoring.Close)
	_, err = o.pool.Exec(context.Background(), `UPDATE fhir_routing_rules SET owner_url = $1 WHERE tenant_id = $2 AND category = 'laboratory'`,
		ignoring.URL, apiTenantA)
	require.NoError(t, err)

	rec := o.get("/fhir/Observation?_summary=count", o.tokA)
	total, entries := requireSearchset(t, rec)
	require.Equal(t, 6, total)
	require.Empty(t, entries, "a count has no entries, whatever an owner sends")
}

// TestFHIRGatewaySearchesMappedTypesByPatient: what the mapping writes for a patient besides
// Observations (RelatedPerson, Specimen, Coverage; here owned by the built-in store) is found
// through the gateway by patient, and counted.
func TestFHIRGatewaySearchesMappedTypesByPatient(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	o.create(t, "RelatedPerson", `{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p1"}}`)
	o.create(t, "Specimen", `{"resourceType":"Specimen","subject":{"reference":"Patient/p1"}}`)
	o.create(t, "Coverage", `{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p1"},"payor":[{"reference":"Organization/o1"}]}`)
	o.create(t, "Coverage", `{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p1"},"payor":[{"reference":"Organization/o2"}]}`)
	o.create(t, "Coverage", `{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p2"},"payor":[{"reference":"Organization/o1"}]}`)
	for path, want := range map[string]int{
		"/fhir/RelatedPerson?patient=Patient/p1": 1,
		"/fhir/Specimen?patient=p1":              1,
		"/fhir/Coverage?patient=p1":              2,
		"/fhir/Coverage?beneficiary=Patient/p2":  1,
	} {
		total, entries := requireSearchset(t, o.get(path, o.tokA))
		require.Equal(t, want, total, path)
		require.Len(t, entries, want, path)
		total, entries = requireSearchset(t, o.get(path+"&_summary=count", o.tokA))
		require.Equal(t, want, total, path+"&_summary=count")
		require.Empty(t, entries, path+"&_summary=count")
	}
}

func TestFHIRGatewayBatchAndTransaction(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	entry := func(method, url, resource string) string {
		e := `{"request":{"method":"` + method + `","url":"` + url + `"}`
		if resource != "" {
			e += `,"resource":` + resource
		}
		return e + "}"
	}
	bundle := func(typ string, entries ...string) string {
		return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
	}

	// A batch: each entry to its owner.
	rec := o.post("/fhir", o.tokA, bundle("batch",
		entry("POST", "Observation", observation("vital-signs", "b1")),
		entry("POST", "Observation", observation("laboratory", "b2")),
		entry("POST", "Patient", apiPatient(apiMRN, "b3")),
		entry("POST", "Observation", observation("social-history", "b4")),
		entry("GET", "Observation/nope", ""),
		entry("GET", "Observation?_count=10", ""),
	), nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	o.requireNoOwnerURL(t, rec)
	b := decodeBody(t, rec)
	require.Equal(t, "batch-response", b["type"])
	var statuses []string
	for _, e := range b["entry"].([]any) {
		statuses = append(statuses, e.(map[string]any)["response"].(map[string]any)["status"].(string))
	}
	require.Equal(t, []string{"201 Created", "201 Created", "201 Created", "422 Unprocessable Entity", "404 Not Found", "200 OK"}, statuses)
	loc := b["entry"].([]any)[1].(map[string]any)["response"].(map[string]any)["location"].(string)
	require.True(t, strings.HasPrefix(loc, apiBaseURL+"/fhir/Observation/"), loc)
	search := b["entry"].([]any)[5].(map[string]any)["resource"].(map[string]any)
	require.Equal(t, float64(2), search["total"], "the batch's search fanned out too")

	// A transaction spanning owners is refused, saying which types go where.
	rec = o.post("/fhir", o.tokA, bundle("transaction",
		entry("POST", "Patient", apiPatient(apiMRN, "t1")),
		entry("POST", "Observation", observation("laboratory", "t2")),
	), nil)
	m := requireAPIOutcome(t, rec, http.StatusUnprocessableEntity, "business-rule")
	diag := m["issue"].([]any)[0].(map[string]any)["diagnostics"].(string)
	require.Contains(t, diag, "Patient")
	require.Contains(t, diag, "Observation (category laboratory)")
	o.requireNoOwnerURL(t, rec)

	// A transaction to one owner is forwarded whole.
	rec = o.post("/fhir", o.tokA, bundle("transaction",
		`{"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":`+observation("laboratory", "t3")+`,"request":{"method":"POST","url":"Observation"}}`,
		entry("POST", "Observation", observation("laboratory", "t4")),
	), nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	o.requireNoOwnerURL(t, rec)
	b = decodeBody(t, rec)
	require.Equal(t, "transaction-response", b["type"])
	total, _ := requireSearchset(t, o.get("/fhir/Observation?category=laboratory", o.tokA))
	require.Equal(t, 3, total)

	// Scopes apply per entry.
	readOnly := o.token(apiTenantA, "system/*.rs")
	rec = o.post("/fhir", readOnly, bundle("batch", entry("POST", "Patient", apiPatient(apiMRN, "x"))), nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "403 Forbidden", decodeBody(t, rec)["entry"].([]any)[0].(map[string]any)["response"].(map[string]any)["status"])
	requireAPIOutcome(t, o.post("/fhir", readOnly, bundle("transaction", entry("POST", "Patient", apiPatient(apiMRN, "x"))), nil),
		http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, o.post("/fhir", o.tokA, `{"resourceType":"Bundle","type":"collection"}`, nil), http.StatusBadRequest, "value")
}
