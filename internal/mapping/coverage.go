package mapping

import (
	"strconv"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterSegment("IN1", mapIN1) }

// subscriberRelationships maps table 0063 (IN1-17) to the subscriber-relationship codes US
// Core binds Coverage.relationship to; the v2 coding is kept beside it. Relations the FHIR
// value set has no code for keep the v2 coding only.
var subscriberRelationships = map[string]string{
	"SEL": "self", "SPO": "spouse", "DOM": "common",
	"CHD": "child", "NCH": "child", "SCH": "child", "FCH": "child",
	"PAR": "parent", "MTH": "parent", "FTH": "parent",
}

// relationshipCodes are the codes of HL7 table 0063 (the IG ConceptMap Relationship). Older
// senders write numeric (UB-92/X12) codes in IN1-17; those are not 0063 codes and are not
// given its system.
var relationshipCodes = map[string]bool{
	"SEL": true, "SPO": true, "DOM": true, "CHD": true, "GCH": true, "NCH": true, "SCH": true, "FCH": true,
	"DEP": true, "WRD": true, "PAR": true, "MTH": true, "FTH": true, "CGV": true, "GRD": true, "GRP": true,
	"EXF": true, "SIB": true, "BRO": true, "SIS": true, "FND": true, "OAD": true, "EME": true, "EMR": true,
	"ASC": true, "EMC": true, "OWN": true, "TRA": true, "MGR": true, "NON": true, "UNK": true, "OTH": true,
}

// mapIN1 maps an IN1 (and the IN2 after it, which adds nothing US Core asks for) to a
// Coverage (IG IN1[Coverage]) whose payor is the insurance company (IN1-3 id, IN1-4 name).
//
// Key: IN1-49 (insured's id number) when it has an assigning authority — it is the member id
// (identifier type MB); otherwise the derived SystemV2Coverage key patient + company id +
// company name + plan + policy number, the parts that tell one policy of the patient from
// another.
//
// status is "active": FHIR and US Core require it (no data-absent-reason is allowed on a
// modifier code), and v2 sends IN1 for the coverage in force for the visit or the patient; an
// ended plan still shows in period.end.
func mapIN1(b *Builder, seg *hl7v2.Segment) error {
	if b.Patient() == nil {
		return nil
	}
	c := &coverage{ResourceType: "Coverage", Meta: b.Meta("Coverage"), Status: "active", Beneficiary: b.Patient()}
	if next := nextSegment(b.Msg, seg); next != nil && next.Name() == "IN2" {
		b.MarkHandled(next)
	}

	member, hasMember := CX(FieldValue(seg, 49), b.Opts.ids())
	if hasMember {
		member.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "MB", Display: "Member Number"}}}
		member.Use = ""
		c.Identifier = append(c.Identifier, member)
	}
	policy := FieldValue(seg, 36).Get(1)
	c.SubscriberID = firstNonEmpty(policy, member.Value)

	// IN1-15 is user-defined table 0086: its codes are the sender's, so a code without a
	// coding system keeps none.
	if cc, ok := CWE(FieldValue(seg, 15)); ok {
		c.Type = &cc
	}
	rel := FieldValue(seg, 17)
	if cc, ok := CWE(rel); ok {
		if relationshipCodes[Code(rel)] {
			cc = *withTable(&cc, "0063")
		}
		if code, ok := subscriberRelationships[Code(rel)]; ok {
			cc.Coding = append([]Coding{{System: "http://terminology.hl7.org/CodeSystem/subscriber-relationship", Code: code}}, cc.Coding...)
		}
		c.Relationship = &cc
		if Code(rel) == "SEL" {
			c.Subscriber = b.Patient()
		}
	}
	c.Period = period(Date(FieldValue(seg, 12).Get(1)), Date(FieldValue(seg, 13).Get(1)))
	if plan := FieldValue(seg, 2); plan.Get(1) != "" {
		c.Class = append(c.Class, coverageClass{Type: coverageClassType("plan", "Plan"), Value: plan.Get(1), Name: plan.Get(2)})
	}
	if group := FieldValue(seg, 8).Get(1); group != "" {
		c.Class = append(c.Class, coverageClass{Type: coverageClassType("group", "Group"), Value: group, Name: FieldValue(seg, 9).Get(1)})
	}
	if n, err := strconv.Atoi(FieldValue(seg, 22).Get(1)); err == nil && n > 0 {
		c.Order = n // coordination of benefits priority
	}
	c.Payor = []clinicalRef{payor(b, seg)}

	key := Identifier{System: member.System, Value: member.Value}
	if !hasMember || member.System == "" {
		pk := b.PatientKey()
		key = Identifier{System: SystemV2Coverage, Value: strings.Join([]string{pk.System, pk.Value, FieldValue(seg, 3).Get(1), FieldValue(seg, 4).Get(1), FieldValue(seg, 2).Get(1), policy}, "|")}
		c.Identifier = append(c.Identifier, key)
	}
	b.Update("Coverage", key, c)
	return nil
}

// payor is the insurance company: an Organization keyed on IN1-3 (company id, a CX) named by
// IN1-4, else IN1-4 as an XON; data-absent-reason when IN1 names no company (payor is 1..*).
func payor(b *Builder, seg *hl7v2.Segment) clinicalRef {
	name := FieldValue(seg, 4)
	var ref *Reference
	if id, ok := CX(FieldValue(seg, 3), b.Opts.ids()); ok && id.System != "" {
		id.Use, id.Period = "", nil
		ref = b.organization(id, name.Get(1))
	} else {
		ref = b.XON(name)
	}
	if ref == nil {
		return clinicalRef{Extension: Absent()}
	}
	return clinicalRef{Reference: ref.Reference, Display: ref.Display}
}

func coverageClassType(code, display string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/coverage-class", Code: code, Display: display}}}
}

// nextSegment returns the segment after seg, nil at the end.
func nextSegment(m *hl7v2.Message, seg *hl7v2.Segment) *hl7v2.Segment {
	all := m.Segments("")
	for i, s := range all {
		if s == seg && i+1 < len(all) {
			return all[i+1]
		}
	}
	return nil
}
