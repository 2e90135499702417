package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterSegment("DG1", mapDG1) }

// diagnosisVerification maps table 0052 (diagnosis type) where it states the certainty:
// a working diagnosis is provisional, a final one confirmed. A (admitting) says when, not how
// sure, and maps to none.
var diagnosisVerification = map[string]string{"W": "provisional", "F": "confirmed"}

// mapDG1 maps a DG1 to a Condition (IG DG1[Condition]) with the US Core encounter-diagnosis
// category and profile: a DG1 is a diagnosis made in the context of the visit. Its key is
// DG1-20 (diagnosis identifier), else the derived SystemV2Condition key patient + DG1-3 code
// + visit key, so the same diagnosis of the same visit sent by A01, A08 and A03 converges.
func mapDG1(b *Builder, seg *hl7v2.Segment) error {
	if b.Patient() == nil {
		return nil
	}
	c := &condition{
		ResourceType: "Condition", Meta: b.Meta("Condition"), Subject: b.Patient(), Encounter: b.Encounter(),
		Category: []CodeableConcept{{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/condition-category", Code: "encounter-diagnosis", Display: "Encounter Diagnosis"}}}},
	}
	codeV := FieldValue(seg, 3)
	if cc, ok := CWE(codeV); ok {
		c.Code = cc
	}
	if c.Code.Text == "" {
		c.Code.Text = FieldValue(seg, 4).Get(1) // DG1-4, withdrawn in v2.5 but still sent
	}
	if len(c.Code.Coding) == 0 && c.Code.Text == "" {
		c.Code = CodeableConcept{Extension: Absent()} // US Core: code 1..1
	}
	typeV := FieldValue(seg, 6)
	if cc, ok := CWE(typeV); ok {
		c.Category = append(c.Category, *withTable(&cc, "0052"))
	}
	if s, ok := diagnosisVerification[Code(typeV)]; ok {
		c.VerificationStatus = conditionVerification(s)
	}
	if Code(FieldValue(seg, 21)) == "D" {
		c.VerificationStatus = conditionVerification("entered-in-error")
	}
	c.OnsetDateTime = b.DateTime(seg, 5, FieldValue(seg, 5).Get(1))
	c.RecordedDate = b.DateTime(seg, 19, FieldValue(seg, 19).Get(1))
	for v := range Repetitions(seg, 16) {
		if ref := b.XCN(v); ref != nil {
			c.Asserter = ref // Condition.asserter is 0..1: the first diagnosing clinician
			break
		}
	}

	// DG1-20 without an assigning authority identifies nothing across senders: kept as an
	// identifier, not used as the key.
	dgID, hasID := EI(FieldValue(seg, 20), b.Opts.ids())
	key := dgID
	if hasID && dgID.System != "" {
		c.Identifier = []Identifier{dgID}
	} else {
		code := firstNonEmpty(codeV.Get(1), strings.ToUpper(c.Code.Text))
		if code == "" {
			b.Notef("DG1(%d)-3: no diagnosis code or text; not mapped", seg.Index())
			return nil
		}
		pk := b.PatientKey()
		parts := []string{pk.System, pk.Value, CodingSystem(codeV.Get(3)), code}
		// A visit keyed on one message is not found again by later ones: keying the
		// diagnosis on it would split one diagnosis per message.
		if b.Encounter() != nil && b.encounterKey.System != SystemV2MessageVisit {
			parts = append(parts, b.encounterKey.System, b.encounterKey.Value)
		}
		key = Identifier{System: SystemV2Condition, Value: strings.Join(parts, "|")}
		c.Identifier = []Identifier{key}
		if hasID {
			c.Identifier = append(c.Identifier, dgID)
		}
	}
	b.Update("Condition", Identifier{System: key.System, Value: key.Value}, c)
	return nil
}

func conditionVerification(code string) *CodeableConcept {
	return &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/condition-ver-status", Code: code}}}
}
