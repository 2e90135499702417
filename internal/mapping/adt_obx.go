package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// OBX outside an order (ADT's OBSERVATION group: height, weight, gestational age…) becomes an
// Observation of the patient in the visit, the IG's OBX[Observation] row of ADT_A01. ORU,
// ORM and VXU map their OBX inside their order groups and mark them handled first.
func init() { RegisterSegment("OBX", mapPatientOBX) }

// mapPatientOBX maps one OBX that belongs to no order: its value through setValue (the same
// OBX-5 mapping as results), status, time, interpretation, reference range, method, body
// site and performers. Category and profile are claimed only where the code says what the
// observation is: vital-signs for the FHIR vital-signs LOINC codes (with the US Core
// vital-signs profiles when the value meets them), social-history for the LOINC codes US
// Core 6.1 puts there (see isSocialHistory; no profile is claimed: their value sets are not
// checked here); any other ADT observation (a gestational age) has no category v2 states,
// so it gets none rather than a guess.
func mapPatientOBX(b *Builder, obx *hl7v2.Segment) error {
	code, ok := CWE(FieldValue(obx, 3))
	if !ok {
		b.Notef("OBX(%d)-3: no observation identifier; observation not mapped", obx.Index())
		return nil
	}
	if b.Patient() == nil {
		return nil
	}
	o := &observation{ResourceType: "Observation", Code: code, Subject: b.Patient(), Encounter: b.Encounter()}
	key := patientObservationKey(b, obx, code)
	o.Identifier = []Identifier{key}
	status := Code(FieldValue(obx, 11))
	if o.Status = observationStatuses[status]; o.Status == "" {
		o.Status = "unknown"
	}
	cat := ""
	if _, vital := vitalSignOf(code); vital {
		cat = CategoryVitalSigns
		o.Category = []CodeableConcept{categoryConcept(cat)}
	} else if isSocialHistory(code) {
		o.Category = []CodeableConcept{{Coding: []Coding{{System: systemObservationCategory, Code: "social-history", Display: "Social History"}}}}
	}
	if o.EffectiveDateTime = b.DateTime(obx, 14, FieldValue(obx, 14).Get(1)); o.EffectiveDateTime == "" {
		o.EffectiveElement = AbsentElement() // US Core vital signs: effective[x] 1..1
	}
	mapOBXFindings(b, o, obx, status)
	o.Meta = b.Meta("Observation")
	if cat != "" {
		o.Meta.Profile = append(observationProfiles(cat, o), o.Meta.Profile...)
		if len(o.Meta.Profile) == 0 {
			b.Notef("OBX(%d)-5: vital sign %s without a UCUM quantity; no vital-signs profile declared", obx.Index(), code.Coding[0].Code)
		}
	}
	b.Update("Observation", key, o)
	return nil
}

// patientObservationKey is the SystemV2PatientObservation key of an OBX outside an order:
// the patient, the visit (when the message has one with a visit id), OBX-3 and OBX-4, the same in every
// message that reports this observation of this visit, so an A08's corrected weight updates
// the A01's. A second OBX with the same code and sub-id in one message is told apart by its
// set id (OBX-1), with a note.
func patientObservationKey(b *Builder, obx *hl7v2.Segment, code CodeableConcept) Identifier {
	c := Coding{Code: code.Text}
	if len(code.Coding) > 0 {
		c = code.Coding[0]
	}
	// A visit keyed on one message is not found again by later ones (see visitKey): the
	// observation is then keyed on the patient alone, as without a visit.
	pk, vk := b.PatientKey(), Identifier{}
	if b.Encounter() != nil && b.encounterKey.System != SystemV2MessageVisit {
		vk = b.encounterKey
	}
	id := Identifier{System: SystemV2PatientObservation, Value: strings.Join([]string{pk.System, pk.Value, vk.System, vk.Value, c.System, c.Code, FieldValue(obx, 4).Get(1)}, "|")}
	if b.Has("Observation", id) {
		id.Value += "|#" + FieldValue(obx, 1).Get(1)
		b.Notef("OBX(%d)-4: code and sub-id repeat in the message; keyed with OBX-1", obx.Index())
	}
	return id
}

// socialHistoryCodes are the LOINC codes whose US Core 6.1 profiles fix the social-history
// category: smoking status, pregnancy status, pregnancy intent.
var socialHistoryCodes = map[string]bool{"72166-2": true, "82810-3": true, "86645-9": true}

func isSocialHistory(code CodeableConcept) bool {
	for _, c := range code.Coding {
		if c.System == systemLOINC && socialHistoryCodes[c.Code] {
			return true
		}
	}
	return false
}
