package mapping

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nhp/interop/internal/fhir"
)

// TestSettleProfilesDropsOnlyUnmetClaims checks the claim rules on resources built by hand:
// what a profile makes mandatory decides the claim, a tenant's profile is kept, and the
// shared base profile list is never written through.
func TestSettleProfilesDropsOnlyUnmetClaims(t *testing.T) {
	national := "http://moph.gov.af/fhir/StructureDefinition/afg-patient"
	opts := &Options{Profiles: &ProfileSet{Name: "AFG", Profiles: map[string][]string{"Patient": {national}}}}
	base := append([]string(nil), baseProfiles["Patient"]...)
	id := []Identifier{{System: "urn:id:X", Value: "1"}}
	absentSystem := []Identifier{{SystemElement: AbsentElement(), Value: "1"}}

	cases := []struct {
		name     string
		resource conformer
		want     []string
	}{
		{"complete patient", &patient{Identifier: id, Name: []HumanName{{Family: "A"}}, Gender: "female", BirthDate: "2000"},
			[]string{ProfileUSCorePatient, ProfileIPSPatient, national}},
		{"no birth date: not IPS", &patient{Identifier: absentSystem, Name: []HumanName{{Given: []string{"B"}}}, GenderElement: AbsentElement()},
			[]string{ProfileUSCorePatient, national}},
		{"data-absent name: US Core only", &patient{Identifier: id, Name: []HumanName{{Extension: Absent()}}, Gender: "male", BirthDateElement: AbsentElement()},
			[]string{ProfileUSCorePatient, national}},
		{"no identifier, no gender: neither", &patient{Name: []HumanName{{Family: "A"}}, BirthDate: "2000"},
			[]string{ProfileIPSPatient, national}},
		{"name with a family and a data-absent-reason: not US Core", &patient{Identifier: id, Name: []HumanName{{Family: "A", Extension: Absent()}}, Gender: "male"},
			[]string{national}},
	}
	for _, c := range cases {
		c.resource.meta().Profile = opts.profiles("Patient")
		settleProfiles(c.resource)
		assert.Equal(t, c.want, c.resource.meta().Profile, c.name)
	}
	assert.Equal(t, base, baseProfiles["Patient"], "the shared base profiles were modified")

	practitioners := []struct {
		p    *practitioner
		want []string
	}{
		{&practitioner{Identifier: id, Name: []HumanName{{Family: "A"}}}, []string{ProfileUSCorePractitioner, ProfileIPSPractitioner}},
		{&practitioner{Identifier: []Identifier{{Value: "1"}}, Name: []HumanName{{Family: "A"}}}, []string{ProfileIPSPractitioner}},
		{&practitioner{Identifier: id, Name: []HumanName{{Extension: Absent()}}}, []string{ProfileIPSPractitioner}},
	}
	for _, c := range practitioners {
		c.p.Meta = fhir.Meta{Profile: baseProfiles["Practitioner"]}
		settleProfiles(c.p)
		assert.Equal(t, c.want, c.p.Meta.Profile)
	}

	member := &coverage{SubscriberID: "M1", Relationship: &CodeableConcept{Text: "self"}, Beneficiary: &Reference{}, Payor: []clinicalRef{{Reference: "x"}}}
	noMember := &coverage{Relationship: &CodeableConcept{Text: "self"}, Beneficiary: &Reference{}, Payor: []clinicalRef{{Reference: "x"}}}
	for _, c := range []*coverage{member, noMember} {
		c.Meta.Profile = []string{ProfileUSCoreCoverage}
		settleProfiles(c)
	}
	assert.Equal(t, []string{ProfileUSCoreCoverage}, member.Meta.Profile)
	assert.Nil(t, noMember.Meta.Profile, "us-core-15: no member id")

	final := &diagnosticReport{Status: "final", Category: []CodeableConcept{{Text: "LAB"}}, Subject: &Reference{}, EffectiveDateTime: "2020"}
	final.Meta.Profile = []string{ProfileUSCoreDiagnosticReportL}
	settleProfiles(final)
	assert.Nil(t, final.Meta.Profile, "us-core-9: a final report without issued")
	done := &procedure{Status: "completed", Subject: &Reference{}}
	done.Meta.Profile = []string{ProfileUSCoreProcedure}
	settleProfiles(done)
	assert.Nil(t, done.Meta.Profile, "us-core-7: a completed procedure without performed")
	given := &immunization{Status: "completed", Patient: &Reference{}, OccurrenceElement: AbsentElement()}
	given.Meta.Profile = []string{ProfileUSCoreImmunization, ProfileIPSImmunization}
	settleProfiles(given)
	assert.Len(t, given.Meta.Profile, 2, "occurrence data-absent is accepted")

	registered := &diagnosticReport{Status: "registered", Category: []CodeableConcept{{Text: "LAB"}}, Subject: &Reference{}}
	registered.Meta.Profile = []string{ProfileUSCoreDiagnosticReportL}
	settleProfiles(registered)
	assert.Equal(t, []string{ProfileUSCoreDiagnosticReportL}, registered.Meta.Profile)
}

// TestDropEmptyMeta: an empty meta goes, a meta with content and a "meta" elsewhere stay.
func TestDropEmptyMeta(t *testing.T) {
	for in, want := range map[string]string{
		`{"resourceType":"Observation","meta":{},"status":"final"}`:     `{"resourceType":"Observation","status":"final"}`,
		`{"resourceType":"Observation","meta":{"profile":["x"]},"a":1}`: `{"resourceType":"Observation","meta":{"profile":["x"]},"a":1}`,
		`{"resourceType":"Observation","status":"final","meta":{}}`:     `{"resourceType":"Observation","status":"final","meta":{}}`,
		`{"resourceType":"Basic","code":{"text":"x"},"x":{"meta":{}}}`:  `{"resourceType":"Basic","code":{"text":"x"},"x":{"meta":{}}}`,
	} {
		prefix := []byte(`[{"resourceType":"Patient"},`)
		out := dropEmptyMeta(append(prefix, in...), len(prefix))
		assert.Equal(t, string(prefix)+want, string(out))
	}
}
