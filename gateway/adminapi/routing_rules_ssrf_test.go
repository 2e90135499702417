package adminapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/netguard"
)

// An owner URL may not point the service at itself, its network or the cloud's metadata
// service (SSRF): loopback, private, link-local, unspecified, multicast and metadata
// addresses are refused with a 400 that names the rule, on create, update and enable, unless
// the operator's allow-list names them.
func TestRoutingRulesRefuseInternalOwners(t *testing.T) {
	t.Parallel()
	a := newRuleAPI(t)
	refused := []string{
		"http://169.254.169.254/latest/meta-data",
		"http://[fd00:ec2::254]/",
		"http://127.0.0.1:8080/fhir",
		"http://localhost:8080/fhir",
		"http://app.localhost/fhir",
		"http://[::1]/fhir",
		"http://[::ffff:127.0.0.1]/fhir",
		"http://10.0.0.5/fhir",
		"https://172.16.3.4/fhir",
		"http://192.168.1.10/fhir",
		"http://[fc00::5]/fhir",
		"http://169.254.10.10/fhir",
		"http://[fe80::1]/fhir",
		"http://0.0.0.0:8080/fhir",
		"http://224.0.0.1/fhir",
	}
	for _, u := range refused {
		rec := a.call(http.MethodPost, "/admin/routing-rules", a.tokA, fmt.Sprintf(`{"resourceType":"Observation","category":"laboratory","ownerUrl":%q}`, u), nil)
		requireAPIOutcome(t, rec, http.StatusBadRequest, "security")
		text := ruleOutcomeText(t, rec)
		require.Contains(t, text, "routing rule for Observation category laboratory", u)
		require.Contains(t, text, "INTEROP_OWNER_ALLOW", u)
	}
	require.Empty(t, a.list(a.tokA, ""), "nothing was stored")

	// A public owner is fine; moving it onto a refused address by PUT is not, and the 400 names
	// the rule by its id.
	r := a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"https://93.184.215.14/fhir"}`)
	rec := a.call(http.MethodPut, rulePath(r.ID, ""), a.tokA, `{"resourceType":"Patient","ownerUrl":"http://169.254.169.254/"}`, nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "security")
	require.Contains(t, ruleOutcomeText(t, rec), "routing rule "+r.ID.String())
	require.Contains(t, ruleOutcomeText(t, rec), "cloud metadata")
	require.Equal(t, "https://93.184.215.14/fhir", a.list(a.tokA, "")[0].OwnerURL)

	// A rule stored before the check (or under a wider allow-list) cannot be enabled onto one.
	_, err := a.pool.Exec(t.Context(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url, enabled) VALUES ($1, 'Encounter', 'http://10.1.1.1/fhir', false)`, apiTenantA)
	require.NoError(t, err)
	var old routingRuleView
	for _, x := range a.list(a.tokA, "?resourceType=Encounter") {
		old = x
	}
	requireAPIOutcome(t, a.call(http.MethodPost, rulePath(old.ID, "enable"), a.tokA, "", nil), http.StatusBadRequest, "security")
}

// The operator's allow-list lets named ranges and hosts through.
func TestRoutingRulesOwnerAllowList(t *testing.T) {
	t.Parallel()
	allow, err := netguard.Parse("10.20.0.0/16, 127.0.0.1")
	require.NoError(t, err)
	a := newRuleAPI(t, func(d *Deps) { d.OwnerPolicy = allow })
	a.create(a.tokA, `{"resourceType":"Patient","ownerUrl":"http://10.20.1.2/fhir"}`)
	a.create(a.tokA, `{"resourceType":"Encounter","ownerUrl":"http://127.0.0.1:9999/fhir"}`)
	rec := a.call(http.MethodPost, "/admin/routing-rules", a.tokA, `{"resourceType":"Condition","ownerUrl":"http://10.21.1.2/fhir"}`, nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "security")
	rec = a.call(http.MethodPost, "/admin/routing-rules", a.tokA, `{"resourceType":"Condition","ownerUrl":"http://169.254.169.254/"}`, nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "security")
}
