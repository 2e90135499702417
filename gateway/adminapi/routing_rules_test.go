package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/routing"
)

// ruleAPI is the gateway with admin tokens of two tenants.
type ruleAPI struct {
	*apiServer
	tokA, tokB string
}

func newRuleAPI(t *testing.T, mods ...func(*Deps)) *ruleAPI {
	t.Helper()
	s := newAPIServer(t, func(d *Deps) {
		for _, mod := range mods {
			mod(d)
		}
	})
	return &ruleAPI{apiServer: s, tokA: s.token(apiTenantA, auth.AdminScope), tokB: s.token(apiTenantB, auth.AdminScope)}
}

func (a *ruleAPI) call(method, path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	a.t.Helper()
	r := apiRequest{method: method, path: path, token: token, header: header}
	if body != "" {
		r.body = strings.NewReader(body)
	}
	if header == nil {
		r.header = map[string]string{"Content-Type": "application/json"}
	}
	rec := a.do(r)
	require.Less(a.t, rec.Code, 500, "never a 5xx: %s", rec.Body.String())
	return rec
}

func rulePath(id uuid.UUID, action string) string {
	p := "/admin/routing-rules/" + id.String()
	if action != "" {
		p += "/" + action
	}
	return p
}

func decodeRule(t *testing.T, rec *httptest.ResponseRecorder) routingRuleView {
	t.Helper()
	var v routingRuleView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), "body: %s", rec.Body.String())
	require.Equal(t, ruleETag(v.Version), rec.Header().Get("ETag"))
	return v
}

// create POSTs body as token and requires 201.
func (a *ruleAPI) create(token, body string) routingRuleView {
	a.t.Helper()
	rec := a.call(http.MethodPost, "/admin/routing-rules", token, body, nil)
	require.Equal(a.t, http.StatusCreated, rec.Code, rec.Body.String())
	v := decodeRule(a.t, rec)
	require.Equal(a.t, apiBaseURL+rulePath(v.ID, ""), rec.Header().Get("Location"))
	return v
}

func (a *ruleAPI) list(token, query string) []routingRuleView {
	a.t.Helper()
	rec := a.call(http.MethodGet, "/admin/routing-rules"+query, token, "", nil)
	require.Equal(a.t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct {
		RoutingRules []routingRuleView `json:"routingRules"`
	}
	require.NoError(a.t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.NotNil(a.t, out.RoutingRules, "an empty list is [], not null")
	return out.RoutingRules
}

func ruleOutcomeText(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	return outcomeText(decodeBody(t, rec))
}

func TestRoutingRulesCRUD(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)

	created := a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"HTTPS://MPI.Example:443/fhir/","description":" the MPI "}`)
	require.Equal(t, "Patient", created.ResourceType)
	require.Equal(t, "", created.Category)
	require.Equal(t, "https://mpi.example/fhir", created.OwnerURL, "the owner URL is stored normalised")
	require.True(t, created.Enabled, "a new rule is enabled unless told otherwise")
	require.Equal(t, "the MPI", created.Description)
	require.EqualValues(t, 1, created.Version)

	got := a.call(http.MethodGet, rulePath(created.ID, ""), a.tokA, "", nil)
	require.Equal(t, http.StatusOK, got.Code)
	require.Equal(t, created, decodeRule(t, got))

	lab := a.create(a.tokA, `{"resourceType":"Observation","category":"laboratory","ownerUrl":"http://lab.example"}`)
	vitals := a.create(a.tokA, `{"resourceType":"Observation","category":"vital-signs","ownerUrl":"http://vitals.example","enabled":true}`)
	all := a.list(a.tokA, "")
	require.Len(t, all, 3)
	require.Equal(t, []uuid.UUID{lab.ID, vitals.ID, created.ID}, []uuid.UUID{all[0].ID, all[1].ID, all[2].ID}, "ordered by type, category")
	obs := a.list(a.tokA, "?resourceType=Observation")
	require.Len(t, obs, 2)
	require.Len(t, a.list(a.tokA, "?resourceType=Observation&category=laboratory"), 1)
	require.Empty(t, a.list(a.tokA, "?resourceType=Encounter"))

	// PUT with the version read; a stale If-Match is refused with 412.
	body := `{"resourceType":"Patient","ownerUrl":"http://mpi2.example","description":"moved"}`
	upd := a.call(http.MethodPut, rulePath(created.ID, ""), a.tokA, body, map[string]string{"If-Match": ruleETag(1)})
	require.Equal(t, http.StatusOK, upd.Code, upd.Body.String())
	updated := decodeRule(t, upd)
	require.Equal(t, "http://mpi2.example", updated.OwnerURL)
	require.EqualValues(t, 2, updated.Version)
	require.True(t, updated.Enabled, "an absent enabled keeps the state")
	stale := a.call(http.MethodPut, rulePath(created.ID, ""), a.tokA, body, map[string]string{"If-Match": ruleETag(1)})
	requireAPIOutcome(t, stale, http.StatusPreconditionFailed, "conflict")

	// A PUT that changes nothing keeps the version; a GET body can be PUT back.
	back, err := json.Marshal(updated)
	require.NoError(t, err)
	same := a.call(http.MethodPut, rulePath(created.ID, ""), a.tokA, string(back), nil)
	require.Equal(t, http.StatusOK, same.Code, same.Body.String())
	require.EqualValues(t, 2, decodeRule(t, same).Version)

	// Disable and enable; asking twice changes nothing.
	dis := a.call(http.MethodPost, rulePath(lab.ID, "disable"), a.tokA, "", nil)
	require.Equal(t, http.StatusOK, dis.Code, dis.Body.String())
	require.False(t, decodeRule(t, dis).Enabled)
	dis = a.call(http.MethodPost, rulePath(lab.ID, "disable"), a.tokA, "", nil)
	require.EqualValues(t, 2, decodeRule(t, dis).Version)
	require.Len(t, a.list(a.tokA, "?enabled=false"), 1)
	en := a.call(http.MethodPost, rulePath(lab.ID, "enable"), a.tokA, "", map[string]string{"If-Match": `W/"2"`})
	require.Equal(t, http.StatusOK, en.Code, en.Body.String())
	require.True(t, decodeRule(t, en).Enabled)

	// Delete, with a stale and then a current If-Match.
	requireAPIOutcome(t, a.call(http.MethodDelete, rulePath(vitals.ID, ""), a.tokA, "", map[string]string{"If-Match": `"7"`}),
		http.StatusPreconditionFailed, "conflict")
	del := a.call(http.MethodDelete, rulePath(vitals.ID, ""), a.tokA, "", map[string]string{"If-Match": `"1"`})
	require.Equal(t, http.StatusNoContent, del.Code, del.Body.String())
	requireAPIOutcome(t, a.call(http.MethodGet, rulePath(vitals.ID, ""), a.tokA, "", nil), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, a.call(http.MethodDelete, rulePath(vitals.ID, ""), a.tokA, "", nil), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/routing-rules/not-a-uuid", a.tokA, "", nil), http.StatusNotFound, "not-found")

	// The routing table the FHIR side loads reflects the API's changes.
	rows, err := db.New(a.pool).FhirRoutingRuleListEnabled(context.Background(), apiTenantA)
	require.NoError(t, err)
	rules := make([]routing.Rule, 0, len(rows))
	for _, r := range rows {
		rules = append(rules, routing.Rule{ResourceType: r.ResourceType, Category: r.Category, OwnerURL: r.OwnerURL})
	}
	table, err := routing.NewTable(rules, routing.Builtin)
	require.NoError(t, err)
	owner, err := table.Owner("Observation", "laboratory")
	require.NoError(t, err)
	require.Equal(t, "http://lab.example", owner)
	owner, err = table.Owner("Patient", "")
	require.NoError(t, err)
	require.Equal(t, "http://mpi2.example", owner)
}

func TestRoutingRulesValidation(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	tests := []struct {
		name, body string
		status     int
		code, want string
	}{
		{"not JSON", `{`, http.StatusBadRequest, "structure", "JSON object"},
		{"an array", `[]`, http.StatusBadRequest, "structure", "JSON object"},
		{"missing fields", `{}`, http.StatusBadRequest, "structure", "ownerUrl is required; resourceType is required"},
		{"unknown field", `{"resourceType":"Patient","ownerUrl":"builtin","owner":"x"}`, http.StatusBadRequest, "structure", `unknown fields "owner"`},
		{"wrong type", `{"resourceType":"Patient","ownerUrl":"builtin","enabled":"yes"}`, http.StatusBadRequest, "structure", "enabled must be true or false"},
		{"id on create", `{"id":"` + uuid.NewString() + `","resourceType":"Patient","ownerUrl":"builtin"}`, http.StatusBadRequest, "value", "assigned by the server"},
		{"unknown resource type", `{"resourceType":"Patients","ownerUrl":"builtin"}`, http.StatusUnprocessableEntity, "value", `"Patients" is not a FHIR R4 resource type`},
		{"lower-case type", `{"resourceType":"patient","ownerUrl":"builtin"}`, http.StatusUnprocessableEntity, "value", "not a FHIR R4 resource type"},
		{"star with category", `{"resourceType":"*","category":"laboratory","ownerUrl":"builtin"}`, http.StatusUnprocessableEntity, "value", "cannot have a category"},
		{"bad category", `{"resourceType":"Observation","category":"lab|x","ownerUrl":"builtin"}`, http.StatusUnprocessableEntity, "value", "is not a code"},
		{"relative owner", `{"resourceType":"Patient","ownerUrl":"/fhir"}`, http.StatusUnprocessableEntity, "value", "absolute http or https"},
		{"ftp owner", `{"resourceType":"Patient","ownerUrl":"ftp://x.example"}`, http.StatusUnprocessableEntity, "value", "absolute http or https"},
		{"owner with query", `{"resourceType":"Patient","ownerUrl":"http://x.example/fhir?a=1"}`, http.StatusUnprocessableEntity, "value", "query"},
		{"owner with fragment", `{"resourceType":"Patient","ownerUrl":"http://x.example/fhir#a"}`, http.StatusUnprocessableEntity, "value", "fragment"},
		{"owner with credentials", `{"resourceType":"Patient","ownerUrl":"http://u:p@x.example"}`, http.StatusUnprocessableEntity, "value", "user info"},
		{"long description", `{"resourceType":"Patient","ownerUrl":"builtin","description":"` + strings.Repeat("d", 1001) + `"}`, http.StatusUnprocessableEntity, "value", "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := a.call(http.MethodPost, "/admin/routing-rules", a.tokA, tt.body, nil)
			requireAPIOutcome(t, rec, tt.status, tt.code)
			require.Contains(t, ruleOutcomeText(t, rec), tt.want)
			require.NotContains(t, rec.Body.String(), "u:p@", "a credential is never echoed")
		})
	}
	require.Empty(t, a.list(a.tokA, ""), "nothing was stored")

	for _, q := range []string{"?resourceType=Bogus", "?enabled=maybe", "?owner=x", "?category=a%20b"} {
		requireAPIOutcome(t, a.call(http.MethodGet, "/admin/routing-rules"+q, a.tokA, "", nil), http.StatusBadRequest, "value")
	}
	require.Empty(t, a.list(a.tokA, "?resourceType=*"))

	r := a.create(a.tokA, `{"resourceType":"*","ownerUrl":"builtin"}`)
	mismatch := a.call(http.MethodPut, rulePath(r.ID, ""), a.tokA, `{"id":"`+uuid.NewString()+`","resourceType":"*","ownerUrl":"builtin"}`, nil)
	requireAPIOutcome(t, mismatch, http.StatusBadRequest, "value")
	bad := a.call(http.MethodPut, rulePath(r.ID, ""), a.tokA, `{"resourceType":"Nope","ownerUrl":"builtin"}`, nil)
	requireAPIOutcome(t, bad, http.StatusUnprocessableEntity, "value")
}

func TestRoutingRulesInvariantsAre409s(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	post := func(body string) *httptest.ResponseRecorder {
		return a.call(http.MethodPost, "/admin/routing-rules", a.tokA, body, nil)
	}
	mpi := a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"http://mpi.example"}`)
	lab := a.create(a.tokA, `{"resourceType":"Observation","category":"laboratory","ownerUrl":"http://lab.example"}`)
	vitals := a.create(a.tokA, `{"resourceType":"Observation","category":"vital-signs","ownerUrl":"http://vitals.example"}`)

	// One primary owner per (type, category).
	rec := post(`{"resourceType":"Patient","ownerUrl":"http://other.example"}`)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")
	require.Contains(t, ruleOutcomeText(t, rec), "rule "+mpi.ID.String()+" already routes Patient to http://mpi.example")
	rec = post(`{"resourceType":"Observation","category":"laboratory","ownerUrl":"http://lab2.example"}`)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")
	require.Contains(t, ruleOutcomeText(t, rec), "rule "+lab.ID.String()+" already routes Observation category laboratory")

	// Whole beside split, and split beside whole.
	rec = post(`{"resourceType":"Observation","ownerUrl":"http://all.example"}`)
	requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
	msg := ruleOutcomeText(t, rec)
	require.Contains(t, msg, "Observation is split by category")
	require.Contains(t, msg, lab.ID.String())
	require.Contains(t, msg, vitals.ID.String())
	rec = post(`{"resourceType":"Patient","category":"vip","ownerUrl":"http://vip.example"}`)
	requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
	require.Contains(t, ruleOutcomeText(t, rec), "Patient is owned whole by rule "+mpi.ID.String())

	// A disabled rule may stand beside anything; enabling it is where the invariant bites.
	spare := a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"http://spare.example","enabled":false}`)
	rec = a.call(http.MethodPost, rulePath(spare.ID, "enable"), a.tokA, "", nil)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")
	require.Contains(t, ruleOutcomeText(t, rec), mpi.ID.String())
	rec = a.call(http.MethodPut, rulePath(spare.ID, ""), a.tokA, `{"resourceType":"Patient","ownerUrl":"http://spare.example","enabled":true}`, nil)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")

	// Moving a rule onto another's slot is refused too; swapping owners through disable works.
	rec = a.call(http.MethodPut, rulePath(vitals.ID, ""), a.tokA, `{"resourceType":"Observation","category":"laboratory","ownerUrl":"http://vitals.example"}`, nil)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")
	require.Equal(t, http.StatusOK, a.call(http.MethodPost, rulePath(mpi.ID, "disable"), a.tokA, "", nil).Code)
	require.Equal(t, http.StatusOK, a.call(http.MethodPost, rulePath(spare.ID, "enable"), a.tokA, "", nil).Code)

	// Re-splitting Observation into a whole owner: disable the category rules first.
	for _, id := range []uuid.UUID{lab.ID, vitals.ID} {
		require.Equal(t, http.StatusOK, a.call(http.MethodPost, rulePath(id, "disable"), a.tokA, "", nil).Code)
	}
	a.create(a.tokA, `{"resourceType":"Observation","ownerUrl":"http://all.example"}`)
	rec = a.call(http.MethodPost, rulePath(lab.ID, "enable"), a.tokA, "", nil)
	requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
	require.Contains(t, ruleOutcomeText(t, rec), "Observation is owned whole")
}

func TestRoutingRulesConcurrentWritesStayUnambiguous(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	// Whole-type and category rules for one type race; the database lets one kind win.
	bodies := []string{
		`{"resourceType":"Condition","ownerUrl":"http://whole.example"}`,
		`{"resourceType":"Condition","category":"problem-list-item","ownerUrl":"http://problems.example"}`,
		`{"resourceType":"Condition","category":"encounter-diagnosis","ownerUrl":"http://dx.example"}`,
	}
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Go(func() {
			rec := a.do(apiRequest{method: http.MethodPost, path: "/admin/routing-rules", token: a.tokA,
				body: strings.NewReader(bodies[i%len(bodies)]), header: map[string]string{"Content-Type": "application/json"}})
			codes[i] = rec.Code
		})
	}
	wg.Wait()
	for _, c := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, c)
	}
	rules := a.list(a.tokA, "?resourceType=Condition&enabled=true")
	whole, split := 0, map[string]int{}
	for _, r := range rules {
		if r.Category == "" {
			whole++
		} else {
			split[r.Category]++
		}
	}
	require.False(t, whole > 0 && len(split) > 0, "owned whole and split at once: %+v", rules)
	require.LessOrEqual(t, whole, 1)
	for c, n := range split {
		require.Equal(t, 1, n, "category %s has %d owners", c, n)
	}
}

func TestRoutingRulesTenantIsolation(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	ruleA := a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"http://a-mpi.example"}`)

	require.Empty(t, a.list(a.tokB, ""), "tenant B sees none of A's rules")
	require.Empty(t, a.list(a.tokB, "?resourceType=Patient"))
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, rulePath(ruleA.ID, ""), ""},
		{http.MethodPut, rulePath(ruleA.ID, ""), `{"resourceType":"Patient","ownerUrl":"http://evil.example"}`},
		{http.MethodPost, rulePath(ruleA.ID, "disable"), ""},
		{http.MethodPost, rulePath(ruleA.ID, "enable"), ""},
		{http.MethodDelete, rulePath(ruleA.ID, ""), ""},
	} {
		rec := a.call(r.method, r.path, a.tokB, r.body, nil)
		requireAPIOutcome(t, rec, http.StatusNotFound, "not-found")
		require.Equal(t, "routing rule not found", ruleOutcomeText(t, rec), "the same answer as for an id that does not exist")
		require.NotContains(t, rec.Body.String(), "a-mpi")
	}

	// B's own rule for the same type is no conflict: the invariant is per tenant, and
	// conflict messages never name another tenant's rule.
	ruleB := a.create(a.tokB, `{"resourceType":"Patient","ownerUrl":"http://b-mpi.example"}`)
	rec := a.call(http.MethodPost, "/admin/routing-rules", a.tokB, `{"resourceType":"Patient","ownerUrl":"http://b2.example"}`, nil)
	requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")
	require.Contains(t, ruleOutcomeText(t, rec), ruleB.ID.String())
	require.NotContains(t, rec.Body.String(), ruleA.ID.String())

	got := a.call(http.MethodGet, rulePath(ruleA.ID, ""), a.tokA, "", nil)
	require.Equal(t, ruleA, decodeRule(t, got), "A's rule is untouched")
	listB := a.list(a.tokB, "")
	require.Len(t, listB, 1)
	require.Equal(t, ruleB.ID, listB[0].ID)
}

func TestRoutingRulesNeedAdminScope(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/routing-rules", "", "", nil), http.StatusUnauthorized, "login")
	clinical := a.token(apiTenantA, apiRWScope)
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/routing-rules", clinical, "", nil), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, a.call(http.MethodPost, "/admin/routing-rules", clinical, `{"resourceType":"Patient","ownerUrl":"builtin"}`, nil),
		http.StatusForbidden, "forbidden")
}
