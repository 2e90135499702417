package mapping

import (
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

type encounter struct {
	ResourceType    string              `json:"resourceType"`
	Meta            fhir.Meta           `json:"meta"`
	Identifier      []Identifier        `json:"identifier"`
	Status          string              `json:"status"`
	Class           Coding              `json:"class"`
	Type            []CodeableConcept   `json:"type"`
	ServiceType     *CodeableConcept    `json:"serviceType,omitempty"`
	Subject         *Reference          `json:"subject"`
	Participant     []participant       `json:"participant,omitempty"`
	Period          *Period             `json:"period,omitempty"`
	ReasonCode      []CodeableConcept   `json:"reasonCode,omitempty"`
	Hospitalization *hospitalization    `json:"hospitalization,omitempty"`
	Location        []encounterLocation `json:"location,omitempty"`
	ServiceProvider *Reference          `json:"serviceProvider,omitempty"`
}

type participant struct {
	Type       []CodeableConcept `json:"type"`
	Individual *Reference        `json:"individual"`
}

type hospitalization struct {
	PreAdmissionIdentifier *Identifier      `json:"preAdmissionIdentifier,omitempty"`
	AdmitSource            *CodeableConcept `json:"admitSource,omitempty"`
	DischargeDisposition   *CodeableConcept `json:"dischargeDisposition,omitempty"`
}

type encounterLocation struct {
	Location *Reference `json:"location"`
	Status   string     `json:"status,omitempty"`
}

// v2 table 0004 (patient class) → Encounter.class: the IG ConceptMap PatientClass[EncounterClass].
var encounterClasses = map[string]Coding{
	"E": {System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "EMER", Display: "emergency"},
	"I": {System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "IMP", Display: "inpatient encounter"},
	"O": {System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "AMB", Display: "ambulatory"},
	"P": {System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "PRENC", Display: "pre-admission"},
	"R": {System: "http://terminology.hl7.org/CodeSystem/v2-0004", Code: "R", Display: "Recurring patient"},
	"B": {System: "http://terminology.hl7.org/CodeSystem/v2-0004", Code: "B", Display: "Obstetrics"},
	"C": {System: "http://terminology.hl7.org/CodeSystem/v2-0004", Code: "C", Display: "Commercial Account"},
	"N": {System: "http://terminology.hl7.org/CodeSystem/v2-0004", Code: "N", Display: "Not Applicable"},
	"U": {System: "http://terminology.hl7.org/CodeSystem/v2-0004", Code: "U", Display: "Unknown"},
}

// classStatuses is the IG ConceptMap PatientClass[EncounterStatus], used when the trigger does
// not decide the status (A08 and other updates).
var classStatuses = map[string]string{"E": "in-progress", "I": "in-progress", "O": "in-progress", "P": "planned", "R": "in-progress", "B": "in-progress", "C": "in-progress", "N": "in-progress", "U": "unknown"}

// triggerStatuses is the IG ConceptMap Event[EncounterStatus], except A04: the IG says planned,
// but a registration (A04) records a patient who has arrived, and A01 → A04 → A08 must not
// move a visit back to planned. A12 (cancel transfer) leaves the visit in progress. The IG
// map stops there; the ADT_A21 events follow their definitions: A21 (leave of absence out)
// is onleave, A22 (back from it), A25 (cancel pending discharge), A26 (cancel pending
// transfer) and A33 (cancel patient departing) leave the visit in progress, and A27 (cancel
// pending admit) cancels the visit an A14 planned.
var triggerStatuses = map[string]string{
	"A01": "in-progress", "A02": "in-progress", "A03": "finished", "A04": "in-progress",
	"A05": "planned", "A06": "in-progress", "A07": "in-progress", "A11": "cancelled",
	"A12": "in-progress", "A13": "in-progress", "A14": "planned",
	"A21": "onleave", "A22": "in-progress", "A25": "in-progress", "A26": "in-progress",
	"A27": "cancelled", "A33": "in-progress",
}

// participantTypes are PV1's practitioner fields and their v3-ParticipationType codes.
var participantTypes = [...]struct {
	field         int
	code, display string
}{{7, "ATND", "attender"}, {8, "REF", "referrer"}, {9, "CON", "consultant"}, {17, "ADM", "admitter"}}

// mapEncounter maps PV1/PV2 to the Encounter, keyed on the visit's identity (see visitKey);
// without one the visit is not mapped, with a note saying why. Sets b.Encounter.
func mapEncounter(b *Builder, trigger string) error {
	pv1 := b.Msg.Segment("PV1", 1)
	if pv1 == nil {
		return nil
	}
	b.MarkHandled(pv1)
	e := &encounter{ResourceType: "Encounter", Meta: b.Meta("Encounter"), Subject: b.Patient()}
	key, ids, ok := visitKey(b, pv1, trigger)
	if !ok {
		return nil
	}
	e.Identifier = ids
	class := Code(FieldValue(pv1, 2))
	if c, ok := encounterClasses[class]; ok {
		e.Class = c
	} else {
		e.Class = Coding{Extension: Absent()} // US Core: class 1..1
	}
	e.Status = encounterStatus(trigger, class, FieldValue(pv1, 45).Get(1) != "")
	if cc, ok := CWE(FieldValue(pv1, 4)); ok {
		e.Type = []CodeableConcept{*withTable(&cc, "0007")}
	} else {
		e.Type = []CodeableConcept{{Extension: Absent()}} // US Core: type 1..*
	}
	if cc, ok := CWE(FieldValue(pv1, 10)); ok {
		e.ServiceType = withTable(&cc, "0069")
	}
	for _, pt := range participantTypes {
		for v := range Repetitions(pv1, pt.field) {
			if ref := b.XCN(v); ref != nil {
				e.Participant = append(e.Participant, participant{
					Type:       []CodeableConcept{{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: pt.code, Display: pt.display}}}},
					Individual: ref,
				})
			}
		}
	}
	start := b.DateTime(pv1, 44, FieldValue(pv1, 44).Get(1))
	end := b.DateTime(pv1, 45, FieldValue(pv1, 45).Get(1))
	if trigger == "A13" {
		end = "" // cancel discharge: the visit is open again
	}
	e.Period = period(start, end)
	e.Hospitalization = hospitalizationOf(b, pv1)
	e.Location = encounterLocations(b, pv1, class, trigger)
	if pv2 := b.Msg.Segment("PV2", 1); pv2 != nil {
		b.MarkHandled(pv2)
		if cc, ok := CWE(FieldValue(pv2, 3)); ok {
			e.ReasonCode = []CodeableConcept{cc}
		}
		for v := range Repetitions(pv2, 13) {
			if ref := b.XCN(v); ref != nil {
				e.Participant = append(e.Participant, participant{
					Type:       []CodeableConcept{{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "REF", Display: "referrer"}}}},
					Individual: ref,
				})
			}
		}
	}
	e.ServiceProvider = serviceProvider(b, pv1)
	b.encounterKey = key
	b.encounter = b.Update("Encounter", key, e)
	return nil
}

// visitKey finds the Encounter's conditional key and identifiers. In order:
//   - PV1-19 visit number, PV1-50 alternate visit id, PV1-5 preadmit number: the sender's
//     own ids of the visit, the same in every message about it (A05 → A01 → A08 → A03);
//   - the derived SystemV2Visit key patient + PV1-44 (admit time), as stable;
//   - for an event that starts a visit (A01 admit, A04 register, A05/A14 pre-admit) whose
//     PV1 has a patient class (other than N, not applicable): the derived
//     SystemV2MessageVisit key, the sender (MSH-3, MSH-4) and MSH-10. Nothing else in PV1
//     tells this visit from the patient's others (class, location and doctors repeat across
//     visits and change within one), so keying on them would merge two admissions and move
//     a discharged visit's conditions onto the next one. Keyed on the message, the visit's
//     class, location and doctors are kept; a note says later messages cannot update it.
//
// Any other event without an id or admit time (A08 update, A02 transfer, A03 discharge) is
// about a visit that already exists and cannot be found again: a new Encounter would
// duplicate it (and stay in progress forever), so none is made and a note says why. Lab and
// order messages (ORU, ORM) describe the visit only as context and are treated the same.
func visitKey(b *Builder, pv1 *hl7v2.Segment, trigger string) (Identifier, []Identifier, bool) {
	var ids []Identifier
	if id, ok := CX(FieldValue(pv1, 19), b.Opts.ids()); ok {
		if id.Type == nil {
			id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "VN"}}, Text: "visit number"}
		}
		ids = append(ids, id)
	}
	if id, ok := CX(FieldValue(pv1, 50), b.Opts.ids()); ok {
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		return Identifier{System: ids[0].System, Value: ids[0].Value}, ids, true
	}
	if id, ok := CX(FieldValue(pv1, 5), b.Opts.ids()); ok {
		if id.Type == nil {
			id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "PRE"}}, Text: "preadmit number"}
		}
		return Identifier{System: id.System, Value: id.Value}, []Identifier{id}, true
	}
	pk := b.PatientKey()
	if admit := FieldValue(pv1, 44).Get(1); admit != "" {
		key := Identifier{System: SystemV2Visit, Value: pk.System + "|" + pk.Value + "|" + admit}
		return key, []Identifier{key}, true
	}
	if b.Msg.Type().Code != "ADT" || !visitStarts[trigger] {
		b.Notef("PV1-19, PV1-50, PV1-5, PV1-44: no visit number, alternate visit id, preadmit number or admit time to find the visit this %s is about; encounter not mapped", trigger)
		return Identifier{}, nil, false
	}
	if class := Code(FieldValue(pv1, 2)); class == "" || class == "N" {
		b.Notef("PV1-2: no patient class and no visit id; encounter not mapped")
		return Identifier{}, nil, false
	}
	msh := b.Msg.Segment("MSH", 1)
	app, fac := FieldValue(msh, 3), FieldValue(msh, 4)
	key := Identifier{System: SystemV2MessageVisit, Value: hdText(app) + "|" + hdText(fac) + "|" + b.controlID}
	b.Notef("PV1-19, PV1-50, PV1-5, PV1-44: no visit id or admit time; the encounter is keyed on this message (MSH-3, MSH-4, MSH-10), so later messages about the visit cannot update it")
	return key, []Identifier{key}, true
}

// hdText writes an HD's namespace id and, when there is one, its universal id after a '^'.
func hdText(v Value) string {
	if u := v.Get(2); u != "" {
		return v.Get(1) + "^" + u
	}
	return v.Get(1)
}

// visitStarts are the events that begin a visit: the first message about it.
var visitStarts = map[string]bool{"A01": true, "A04": true, "A05": true, "A14": true}

func encounterStatus(trigger, class string, discharged bool) string {
	if s, ok := triggerStatuses[trigger]; ok {
		return s
	}
	if discharged {
		return "finished"
	}
	if s, ok := classStatuses[class]; ok {
		return s
	}
	return "unknown"
}

func hospitalizationOf(b *Builder, pv1 *hl7v2.Segment) *hospitalization {
	h := &hospitalization{}
	if id, ok := CX(FieldValue(pv1, 5), b.Opts.ids()); ok {
		h.PreAdmissionIdentifier = &id
	}
	if cc, ok := CWE(FieldValue(pv1, 14)); ok {
		h.AdmitSource = withTable(&cc, "0023")
	}
	if cc, ok := CWE(FieldValue(pv1, 36)); ok {
		h.DischargeDisposition = withTable(&cc, "0112")
	}
	if *h == (hospitalization{}) {
		return nil
	}
	return h
}

// encounterLocations maps PV1-3 (current: planned for a pre-admit, else active) and PV1-6
// (prior location, completed), as the IG's PV1[Encounter] does.
func encounterLocations(b *Builder, pv1 *hl7v2.Segment, class, trigger string) []encounterLocation {
	var locs []encounterLocation
	if ref := b.PL(FieldValue(pv1, 3)); ref != nil {
		status := "active"
		if class == "P" || trigger == "A05" {
			status = "planned"
		}
		if trigger == "A03" {
			status = "completed"
		}
		locs = append(locs, encounterLocation{Location: ref, Status: status})
	}
	if ref := b.PL(FieldValue(pv1, 6)); ref != nil {
		locs = append(locs, encounterLocation{Location: ref, Status: "completed"})
	}
	return locs
}

// serviceProvider is the facility of the assigned location (PV1-3.4), else the sending
// facility (MSH-4): the organisation responsible for the visit.
func serviceProvider(b *Builder, pv1 *hl7v2.Segment) *Reference {
	if ref := b.HDOrganization(FieldValue(pv1, 3).Sub(4)); ref != nil {
		return ref
	}
	return b.HDOrganization(FieldValue(b.Msg.Segment("MSH", 1), 4))
}

// withTable gives codings of a v2 table without a coding system that table's system: PV1
// codes are table values even when senders leave CWE-3 empty.
func withTable(cc *CodeableConcept, table string) *CodeableConcept {
	for i := range cc.Coding {
		if cc.Coding[i].System == "" {
			cc.Coding[i].System = "http://terminology.hl7.org/CodeSystem/v2-" + table
		}
	}
	return cc
}
