package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterSegment("AL1", mapAL1) }

// allergyCategories is the IG ConceptMap AllergenType[AllergyIntoleranceCategory] (table 0127);
// MA and MC have no FHIR category.
var allergyCategories = map[string]string{"DA": "medication", "FA": "food", "EA": "environment", "AA": "biologic", "PA": "environment", "LA": "environment"}

// allergyCriticality and allergySeverity are the IG ConceptMaps AllergySeverity[criticality]
// and AllergySeverity[reaction.severity] (table 0128).
var (
	allergyCriticality = map[string]string{"SV": "high", "MI": "low"}
	allergySeverity    = map[string]string{"SV": "severe", "MO": "moderate", "MI": "mild"}
)

// mapAL1 maps an AL1 to an AllergyIntolerance (IG AL1[AllergyIntolerance]), keyed on the
// derived SystemV2Allergy key patient + AL1-3 code: v2 has no allergy identifier before IAM,
// and a patient's allergy to one allergen is one resource however many messages repeat it.
//
// clinicalStatus is "active", as the IG assigns: an AL1 lists the patient's current allergies.
// verificationStatus is left out: AL1 does not say whether the allergy was confirmed, and US
// Core only requires it to be supported.
func mapAL1(b *Builder, seg *hl7v2.Segment) error {
	if b.Patient() == nil {
		return nil
	}
	a := &allergyIntolerance{
		ResourceType: "AllergyIntolerance", Meta: b.Meta("AllergyIntolerance"), Patient: b.Patient(),
		ClinicalStatus: &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", Code: "active", Display: "Active"}}},
	}
	codeV := FieldValue(seg, 3)
	if cc, ok := CWE(codeV); ok {
		a.Code = cc
	} else {
		a.Code = CodeableConcept{Extension: Absent()} // US Core: code 1..1
	}
	typ := Code(FieldValue(seg, 2))
	if c, ok := allergyCategories[typ]; ok {
		a.Category = []string{c}
	}
	if typ != "" && typ != "MC" && isAllergenType(typ) {
		a.Type = "allergy" // IG ConceptMap AllergyType: every 0127 code but MC
	}
	sev := Code(FieldValue(seg, 4))
	a.Criticality = allergyCriticality[sev]
	var manifestations []CodeableConcept
	for v := range Repetitions(seg, 5) {
		if t := strings.TrimSpace(v.Get(1)); t != "" {
			manifestations = append(manifestations, CodeableConcept{Text: t})
		}
	}
	if len(manifestations) > 0 {
		a.Reaction = []allergyReaction{{Manifestation: manifestations, Severity: allergySeverity[sev]}}
	}
	a.OnsetDateTime = b.DateTime(seg, 6, FieldValue(seg, 6).Get(1))
	a.Encounter = b.Encounter()

	pk := b.PatientKey()
	allergen := codeV.Get(1)
	if allergen == "" {
		allergen = strings.ToUpper(firstNonEmpty(a.Code.Text, codeV.Get(2)))
	}
	if allergen == "" {
		b.Notef("AL1(%d)-3: no allergen code or text; not mapped", seg.Index())
		return nil
	}
	key := Identifier{System: SystemV2Allergy, Value: strings.Join([]string{pk.System, pk.Value, CodingSystem(codeV.Get(3)), allergen}, "|")}
	a.Identifier = []Identifier{key}
	b.Update("AllergyIntolerance", key, a)
	return nil
}

func isAllergenType(code string) bool {
	switch code {
	case "DA", "FA", "MA", "MC", "EA", "AA", "PA", "LA":
		return true
	}
	return false
}
