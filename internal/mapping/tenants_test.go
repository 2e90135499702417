package mapping_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

const afgTenants = `{"moph-af": {"name": "AFG-Core", "timeZone": "Asia/Kabul",
  "profiles": {"Patient": ["http://moph.gov.af/fhir/StructureDefinition/afg-patient"]},
  "nationalIdentifier": {"authority": "MOPH", "system": "http://moph.gov.af/fhir/sid/nid"}}}`

// A tenant's national profile and identifier system reach its Patients; other tenants keep
// the base profiles and the default identifier rules.
func TestTenantsApplyNationalProfiles(t *testing.T) {
	tenants, err := mapping.LoadTenants(strings.NewReader(afgTenants))
	require.NoError(t, err)
	msg, err := hl7v2.Parse([]byte("MSH|^~\\&|HIS|KBL|INTEROP|NHP|20260101120000+0430||ADT^A01^ADT_A01|C1|P|2.5.1\r" +
		"EVN|A01|20260101120000+0430\r" +
		"PID|1||1234567^^^MOPH^NI~55^^^KBLH^MR||Karimi^Ahmad||19800101|M\r"))
	require.NoError(t, err)

	patient := func(m *mapping.Mapper) map[string]any {
		res, err := m.Map(msg)
		require.NoError(t, err)
		for _, e := range res.Bundle.Entry {
			var r map[string]any
			require.NoError(t, json.Unmarshal(e.Resource, &r))
			if r["resourceType"] == "Patient" {
				return r
			}
		}
		t.Fatal("no Patient in the Bundle")
		return nil
	}
	afg := patient(tenants.ForTenant("moph-af"))
	require.Contains(t, afg["meta"].(map[string]any)["profile"], "http://moph.gov.af/fhir/StructureDefinition/afg-patient")
	require.Contains(t, afg["meta"].(map[string]any)["profile"], mapping.ProfileUSCorePatient, "national profiles add to US Core, never replace it")
	systems := []any{}
	for _, id := range afg["identifier"].([]any) {
		systems = append(systems, id.(map[string]any)["system"])
	}
	require.Contains(t, systems, "http://moph.gov.af/fhir/sid/nid")

	other := patient(tenants.ForTenant("someone-else"))
	require.NotContains(t, other["meta"].(map[string]any)["profile"], "http://moph.gov.af/fhir/StructureDefinition/afg-patient")

	// What the CapabilityStatement declares for each tenant.
	require.Equal(t, map[string][]string{"Patient": {"http://moph.gov.af/fhir/StructureDefinition/afg-patient"}}, tenants.NationalProfiles("moph-af"))
	require.Nil(t, tenants.NationalProfiles("someone-else"))
	var none *mapping.Tenants
	require.Nil(t, none.NationalProfiles("moph-af"), "no configuration: no national profiles")
}

// "*" configures the tenants the file does not name: here, the zone of times without offset.
func TestTenantsAnyTenant(t *testing.T) {
	tenants, err := mapping.LoadTenants(strings.NewReader(`{"*": {"timeZone": "Asia/Kabul"}}`))
	require.NoError(t, err)
	msg, err := hl7v2.Parse([]byte("MSH|^~\\&|HIS|KBL|INTEROP|NHP|20260101120000||ADT^A01^ADT_A01|C1|P|2.5.1\r" +
		"PID|1||55^^^KBLH^MR||Karimi^Ahmad||19800101|M\r" +
		"PV1|1|I|W1^R1^B1||||||||||||||||V100^^^KBLH^VN|||||||||||||||||||||||||20260101113000\r"))
	require.NoError(t, err)
	res, err := tenants.ForTenant("anyone").Map(msg)
	require.NoError(t, err)
	var found bool
	for _, e := range res.Bundle.Entry {
		if strings.Contains(string(e.Resource), `"resourceType":"Encounter"`) {
			found = true
			require.Contains(t, string(e.Resource), `"start":"2026-01-01T11:30:00+04:30"`, "PV1-44 read in the configured zone")
		}
	}
	require.True(t, found, "no Encounter mapped")
}

func TestLoadTenantsRefusesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":      `{"t": {"profile": {}}}`,
		"bad zone":           `{"t": {"timeZone": "Mars/Olympus"}}`,
		"relative profile":   `{"t": {"profiles": {"Patient": ["afg-patient"]}}}`,
		"national no system": `{"t": {"nationalIdentifier": {"authority": "MOPH"}}}`,
		"not an object":      `[1]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mapping.LoadTenants(strings.NewReader(doc))
			require.Error(t, err)
		})
	}
}
