package fhirapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Without an allow-list the FHIR API's owner client refuses to dial an owner on loopback
// (the routing rule was stored behind the admin API's back, as a rebinding name would slip
// past it): the caller gets an owner failure, and nothing reaches the owner.
func TestFHIRGatewayRefusesInternalOwnerAtDialTime(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t, func(d *Deps) { d.FHIR.OwnerPolicy = nil })
	before := o.patients.requests.Load()
	rec := o.get("/fhir/Patient?identifier=urn:oid:1.2.3|42", o.tokA)
	require.GreaterOrEqual(t, rec.Code, http.StatusBadGateway, rec.Body.String())
	requireAPIOutcome(t, rec, http.StatusBadGateway, "transient")
	o.requireNoOwnerURL(t, rec)
	require.Equal(t, before, o.patients.requests.Load(), "the owner was never reached")

	// The built-in store's types still work.
	require.Equal(t, http.StatusOK, o.get("/fhir/Encounter", o.tokA).Code)
}
