package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// Immunization from a VXU ORDER group: ORC[Immunization], RXA[Immunization],
// RXR[Immunization] of the V2-to-FHIR IG, and the order group's OBX as the CDC IIS
// implementation guide (release 1.5, 2018 update) reads them: funding eligibility, funding
// source, vaccine information statements and reactions become Immunization elements; any
// other OBX an Observation partOf the Immunization, as the IG's VXU_V04 map says.

// v2-0443 provider roles of Immunization.performer.function.
var (
	functionAdministering = &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0443", Code: "AP", Display: "Administering Provider"}}}
	functionOrdering      = &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0443", Code: "OP", Display: "Ordering Provider"}}}
)

// completionStatuses is the IG ConceptMap CompletionStatus (v2 table 0322).
var completionStatuses = map[string]string{"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}

// immunizationOrigins maps NIP001 (immunization information source) to the FHIR
// immunization-origin codes where one says the same thing; the NIP001 coding is kept beside it.
// 01 (historical, source unspecified) and 05/08 (other registry, public agency) have no
// equivalent and keep the NIP001 coding only.
var immunizationOrigins = map[string]Coding{
	"02": {System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "provider", Display: "Other Provider"},
	"03": {System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "record", Display: "Written Record"},
	"04": {System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "recall", Display: "Parent/Guardian/Patient Recall"},
	"06": {System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "record", Display: "Written Record"},
	"07": {System: "http://terminology.hl7.org/CodeSystem/immunization-origin", Code: "school", Display: "School Record"},
}

// immunizationSystems spells the coding systems that immunization messages use and that table
// 0396 has no FHIR URI for in codingSystems.
var immunizationSystems = map[string]string{
	// NCI Thesaurus, as terminology.hl7.org registers it (RXR-1 routes, C28161 intramuscular).
	"NCIT": "http://ncithesaurus-stage.nci.nih.gov",
}

// LOINC codes of the order-group OBX that the CDC IIS guide maps into the Immunization.
const (
	loincFundingEligibility = "64994-7"
	loincFundingSource      = "30963-3"
	loincVISDocumentType    = "69764-9"
	loincVISVaccineType     = "30956-7"
	loincVISPublished       = "29768-9"
	loincVISPresented       = "29769-7"
	loincReaction           = "31044-1"
)

// izObservationStatuses is the IG ConceptMap ObservationResultStatus (v2 table 0085).
var izObservationStatuses = map[string]string{
	"C": "corrected", "D": "entered-in-error", "F": "final", "I": "registered", "P": "preliminary",
	"R": "preliminary", "S": "preliminary", "U": "final", "W": "entered-in-error", "X": "cancelled",
}

func mapImmunization(b *Builder, o *vxuOrder) error {
	rxa := o.rxa
	im := &immunization{ResourceType: "Immunization", Meta: b.Meta("Immunization"), Patient: b.Patient()}

	status, ok := immunizationStatus(rxa)
	if !ok {
		// The status is a modifier: guessing "completed" for a code we cannot read could
		// record a vaccine never given, so this administration is left out; the rest of the
		// message (the patient, other administrations) still maps.
		b.Notef("RXA(%d)-20: completion status %q is not in table 0322; administration not mapped", rxa.Index(), Code(FieldValue(rxa, 20)))
		return nil
	}
	im.Status = status
	if cc, ok := immunizationCWE(FieldValue(rxa, 5)); ok {
		im.VaccineCode = cc
	} else {
		// RXA-5 is required in v2 and vaccineCode in FHIR; a refusal of an unnamed vaccine
		// still reports something, so the element says "unknown" rather than failing.
		im.VaccineCode = CodeableConcept{Extension: Absent()}
	}
	if raw := FieldValue(rxa, 3).Get(1); raw != "" {
		if im.OccurrenceDateTime = b.DateTime(rxa, 3, raw); im.OccurrenceDateTime == "" {
			// b.DateTime noted why; occurrence[x] is 1..1, so it is data-absent rather than
			// the whole message refused for one date.
			im.OccurrenceElement = AbsentElement()
		}
	} else {
		im.OccurrenceElement = AbsentElement() // occurrence[x] is 1..1
	}
	if status == "not-done" {
		if cc, ok := immunizationCWE(FieldValue(rxa, 18)); ok {
			im.StatusReason = &cc
		}
	}
	if FieldValue(rxa, 21).Get(1) == "A" {
		im.Recorded = b.DateTime(rxa, 22, FieldValue(rxa, 22).Get(1))
	}
	immunizationPrimarySource(im, rxa)
	im.Manufacturer = immunizationManufacturer(b, FieldValue(rxa, 17))
	for v := range Repetitions(rxa, 15) {
		im.LotNumber = v.Get(1)
		break
	}
	im.ExpirationDate = Date(FieldValue(rxa, 16).Get(1))
	// 999 is the CDC guide's "amount unknown", not a dose of 999.
	if amount := FieldValue(rxa, 6).Get(1); amount != "999" {
		if q, ok := NM(amount, FieldValue(rxa, 7)); ok {
			im.DoseQuantity = q
		}
	}
	for v := range Repetitions(rxa, 19) {
		if cc, ok := immunizationCWE(v); ok {
			im.ReasonCode = append(im.ReasonCode, cc)
		}
	}
	// RXA-27 (v2.6+) is the place; RXA-11 (LA2, whose first components are PL's) before it.
	im.Location = b.PL(FieldValue(rxa, 27))
	if im.Location == nil {
		im.Location = b.PL(FieldValue(rxa, 11))
	}
	for v := range Repetitions(rxa, 10) {
		if ref := b.XCN(v); ref != nil {
			im.Performer = append(im.Performer, immunizationPerformer{Function: functionAdministering, Actor: ref})
		}
	}
	if o.orc != nil {
		for v := range Repetitions(o.orc, 12) {
			if ref := b.XCN(v); ref != nil {
				im.Performer = append(im.Performer, immunizationPerformer{Function: functionOrdering, Actor: ref})
			}
		}
	}
	if o.rxr != nil {
		if cc, ok := immunizationCWE(FieldValue(o.rxr, 1)); ok {
			im.Route = withTable(&cc, "0162")
		}
		if cc, ok := immunizationCWE(FieldValue(o.rxr, 2)); ok {
			im.Site = withTable(&cc, "0163")
		}
	}

	key, ids, ok := immunizationIdentity(b, o)
	if !ok {
		b.Notef("RXA(%d): no ORC-3/ORC-2 and no RXA-3 or RXA-5 to key the immunization on; not mapped", rxa.Index())
		return nil
	}
	im.Identifier = ids
	// Entries may only reference earlier ones: the reaction Observations (which the
	// Immunization references) come before it, the partOf Observations after it.
	others := mapImmunizationObservations(b, o, im, key)
	ref := b.Update("Immunization", key, im)
	seen := map[string]bool{}
	for _, obx := range others {
		immunizationObservation(b, o, obx, ref, key, seen)
	}
	return nil
}

// immunizationStatus: RXA-21 D (delete) → entered-in-error; else RXA-20 by the IG's
// CompletionStatus map, completed when empty. ok is false for an RXA-20 not in table 0322.
func immunizationStatus(rxa *hl7v2.Segment) (string, bool) {
	if Code(FieldValue(rxa, 21)) == "D" {
		return "entered-in-error", true
	}
	code := Code(FieldValue(rxa, 20))
	if code == "" {
		return "completed", true
	}
	s, ok := completionStatuses[code]
	return s, ok
}

// immunizationPrimarySource reads RXA-9 (NIP001): 00 "new immunization record" is the administering
// provider's own report (primarySource true); any other source is historical (false) and its
// code is the reportOrigin. Without RXA-9, US Core's 1..1 primarySource gets
// data-absent-reason.
func immunizationPrimarySource(im *immunization, rxa *hl7v2.Segment) {
	for v := range Repetitions(rxa, 9) {
		code := strings.TrimSpace(v.Get(1))
		if code == "" {
			continue
		}
		if code == "00" {
			im.PrimarySource = boolPtr(true)
			return
		}
		im.PrimarySource = boolPtr(false)
		cc, _ := immunizationCWE(v)
		for i := range cc.Coding {
			if cc.Coding[i].System == "" || cc.Coding[i].System == urnID("NIP001") {
				cc.Coding[i].System = urnID("NIP001")
			}
		}
		if origin, ok := immunizationOrigins[code]; ok {
			cc.Coding = append([]Coding{origin}, cc.Coding...)
		}
		im.ReportOrigin = &cc
		return
	}
	im.PrimarySourceElem = AbsentElement()
}

// immunizationManufacturer maps RXA-17 (MVX) to an Organization keyed on its MVX code.
func immunizationManufacturer(b *Builder, v Value) *Reference {
	code, name := v.Get(1), v.Get(2)
	if code == "" {
		if name == "" {
			return nil
		}
		return &Reference{Display: name}
	}
	system := CodingSystem(v.Get(3))
	if system == "" {
		// A manufacturer code without a coding system is an MVX code in every IIS guide.
		system = CodingSystem("MVX")
	}
	return b.organization(Identifier{System: system, Value: code}, name)
}

// immunizationIdentity chooses the Immunization's conditional key: ORC-3 filler order number,
// else ORC-2 placer order number (both kept as identifiers, typed FILL and PLAC), else the
// derived SystemV2Immunization key patient + RXA-5 code + RXA-3, which is what an IIS treats
// as the same dose. An order number without an assigning authority is qualified by the
// sending application (MSH-3), the namespace v2 gives an EI without one; without MSH-3 it
// cannot be told apart from another sender's and the derived key is used.
func immunizationIdentity(b *Builder, o *vxuOrder) (key Identifier, ids []Identifier, ok bool) {
	for _, f := range []struct {
		field int
		code  string
	}{{3, "FILL"}, {2, "PLAC"}} {
		if o.orc == nil {
			break
		}
		id, ok := EI(FieldValue(o.orc, f.field), b.Opts.ids())
		if !ok {
			continue
		}
		if id.System == "" {
			id.System = HDSystem(FieldValue(b.Msg.Segment("MSH", 1), 3), b.Opts.ids())
			if id.System == "" {
				continue
			}
		}
		id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: f.code}}}
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		return Identifier{System: ids[0].System, Value: ids[0].Value}, ids, true
	}
	rxa := o.rxa
	code, date := FieldValue(rxa, 5), FieldValue(rxa, 3).Get(1)
	if code.Get(1) == "" || date == "" {
		return Identifier{}, nil, false
	}
	pk := b.PatientKey()
	key = Identifier{System: SystemV2Immunization, Value: strings.Join([]string{pk.System, pk.Value, CodingSystem(code.Get(3)), code.Get(1), date}, "|")}
	return key, []Identifier{key}, true
}

// immunizationCWE is CWE with the immunization coding systems spelt as FHIR spells them.
func immunizationCWE(v Value) (CodeableConcept, bool) {
	cc, ok := CWE(v)
	for i := range cc.Coding {
		for name, uri := range immunizationSystems {
			if cc.Coding[i].System == urnID(name) {
				cc.Coding[i].System = uri
			}
		}
	}
	return cc, ok
}

// visGroup is one vaccine information statement: the OBX of one OBX-4 sub-id.
type visGroup struct {
	subID       string
	edu         immunizationEducation
	fromDocType bool
}

// mapImmunizationObservations maps the order group's OBX that become Immunization elements
// (see the file comment) and returns the others, which become Observations partOf it. OBX of
// one VIS share their OBX-4 sub-id; a VIS with neither a document type nor a vaccine type
// cannot satisfy imm-1 (documentType or reference) and is dropped with a note.
func mapImmunizationObservations(b *Builder, o *vxuOrder, im *immunization, key Identifier) (others []*hl7v2.Segment) {
	var (
		vis  []*visGroup
		seen = map[string]bool{}
	)
	visFor := func(sub string) *visGroup {
		for _, g := range vis {
			if g.subID == sub {
				return g
			}
		}
		g := &visGroup{subID: sub}
		vis = append(vis, g)
		return g
	}
	for _, obx := range o.obx {
		code := FieldValue(obx, 3).Get(1)
		value := FieldValue(obx, 5)
		sub := FieldValue(obx, 4).Get(1)
		switch code {
		case loincFundingEligibility:
			if cc, ok := immunizationCWE(value); ok {
				im.ProgramEligibility = append(im.ProgramEligibility, cc)
			}
		case loincFundingSource:
			if cc, ok := immunizationCWE(value); ok && im.FundingSource == nil {
				im.FundingSource = &cc
			}
		case loincVISDocumentType:
			// The GS1 bar code of the VIS document identifies it.
			if s := value.Get(1); s != "" {
				g := visFor(sub)
				g.edu.DocumentType, g.fromDocType = s, true
			}
		case loincVISVaccineType:
			// A VIS named by the vaccine it covers (CDC guide, combination vaccines).
			if s := firstNonEmpty(value.Get(2), value.Get(1)); s != "" {
				if g := visFor(sub); !g.fromDocType {
					g.edu.DocumentType = s
				}
			}
		case loincVISPublished:
			visFor(sub).edu.PublicationDate = b.DateTime(obx, 5, value.Get(1))
		case loincVISPresented:
			visFor(sub).edu.PresentationDate = b.DateTime(obx, 5, value.Get(1))
		case loincReaction:
			if obs := immunizationObservation(b, o, obx, nil, key, seen); obs != nil {
				im.Reaction = append(im.Reaction, immunizationReaction{
					Date:   b.DateTime(obx, 14, FieldValue(obx, 14).Get(1)),
					Detail: obs,
				})
			}
		default:
			others = append(others, obx)
		}
	}
	for _, g := range vis {
		if g.edu.DocumentType == "" {
			b.Notef("OBX-4 %q: vaccine information statement without a document or vaccine type (imm-1); dropped", g.subID)
			continue
		}
		im.Education = append(im.Education, g.edu)
	}
	return others
}

// immunizationObservation maps an order-group OBX to an Observation keyed within its
// Immunization on OBX-3 code and OBX-4 sub-id (OBX-1 set id when the pair repeats, as two
// reactions under one sub-id do), partOf im when im is not nil, and returns its reference;
// nil when the OBX has no value this mapping can write (noted).
func immunizationObservation(b *Builder, o *vxuOrder, obx *hl7v2.Segment, im *Reference, key Identifier, seen map[string]bool) *Reference {
	codeCC, ok := CWE(FieldValue(obx, 3))
	if !ok {
		b.Notef("OBX(%d)-3: no observation code; not mapped", obx.Index())
		return nil
	}
	obs := &izObservation{ResourceType: "Observation", Meta: b.Meta("Observation"), Code: codeCC, Subject: b.Patient()}
	// The ORU family declares its own profiles (laboratory, vital signs) for Observation; these
	// are neither, so they declare none and are checked against base R4.
	obs.Meta.Profile = nil
	if im != nil {
		obs.PartOf = []Reference{{Reference: im.Reference}}
	}
	obs.Status = izObservationStatuses[Code(FieldValue(obx, 11))]
	if obs.Status == "" {
		obs.Status = "unknown"
	}
	obs.EffectiveDateTime = b.DateTime(obx, 14, FieldValue(obx, 14).Get(1))
	value := FieldValue(obx, 5)
	if value.IsEmpty() {
		b.Notef("OBX(%d)-5: no value; not mapped", obx.Index())
		return nil
	}
	switch vt := Code(FieldValue(obx, 2)); vt {
	case "CE", "CWE", "CNE":
		cc, _ := immunizationCWE(value)
		obs.ValueCodeableConcept = &cc
	case "NM":
		q, ok := NM(value.Get(1), FieldValue(obx, 6))
		if !ok {
			b.Notef("OBX(%d)-5: %q is not a number; not mapped", obx.Index(), value.Get(1))
			return nil
		}
		obs.ValueQuantity = q
	case "ST", "TX", "FT":
		obs.ValueString = value.Get(1)
	case "DT", "DTM", "TS":
		if obs.ValueDateTime = DateTime(value.Get(1), b.Opts.Location); obs.ValueDateTime == "" {
			b.Notef("OBX(%d)-5: %q is not a date; not mapped", obx.Index(), value.Get(1))
			return nil
		}
	default:
		b.Notef("OBX(%d)-2: value type %q in an immunization order group is not mapped", obx.Index(), vt)
		return nil
	}
	for _, nte := range o.nte[obx] {
		if s := FieldValue(nte, 3).Get(1); s != "" {
			obs.Note = append(obs.Note, clinicalNote{Text: s})
		}
	}
	idv := key.System + "|" + key.Value + "|" + FieldValue(obx, 3).Get(1) + "|" + FieldValue(obx, 4).Get(1)
	if seen[idv] {
		idv += "|" + FieldValue(obx, 1).Get(1)
	}
	seen[idv] = true
	id := Identifier{System: SystemV2ImmunizationObservation, Value: idv}
	obs.Identifier = []Identifier{id}
	return b.Update("Observation", id, obs)
}
