package mapping

import (
	"strconv"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

type relatedPerson struct {
	ResourceType  string            `json:"resourceType"`
	Meta          fhir.Meta         `json:"meta"`
	Identifier    []Identifier      `json:"identifier"`
	Active        *bool             `json:"active,omitempty"`
	ActiveElement *Element          `json:"_active,omitempty"`
	Patient       *Reference        `json:"patient"`
	Relationship  []CodeableConcept `json:"relationship,omitempty"`
	Name          []HumanName       `json:"name,omitempty"`
	Telecom       []ContactPoint    `json:"telecom,omitempty"`
	Address       []Address         `json:"address,omitempty"`
	Gender        string            `json:"gender,omitempty"`
	BirthDate     string            `json:"birthDate,omitempty"`
	Period        *Period           `json:"period,omitempty"`
}

// mapRelatedPersons maps every NK1 to a RelatedPerson of the patient (the IG's
// NK1[RelatedPerson]). The key is NK1-33 or NK1-12 (the contact's own identifier) when the
// sender gives one, else the derived SystemV2Contact key patient + NK1-1 set id (else the
// segment's position): stable across A01/A08/A03 of one sender, which repeat the contacts in
// the same order.
func mapRelatedPersons(b *Builder) {
	for i, nk1 := range b.Msg.Segments("NK1") {
		b.MarkHandled(nk1)
		mapRelatedPerson(b, nk1, i+1)
	}
}

func mapRelatedPerson(b *Builder, nk1 *hl7v2.Segment, position int) {
	rp := &relatedPerson{ResourceType: "RelatedPerson", Meta: b.Meta("RelatedPerson"), Patient: b.Patient()}
	for _, n := range []int{33, 12} {
		for v := range Repetitions(nk1, n) {
			if id, ok := CX(v, b.Opts.ids()); ok {
				rp.Identifier = append(rp.Identifier, id)
			}
		}
	}
	for _, n := range []int{2, 30} {
		for v := range Repetitions(nk1, n) {
			if name, ok := XPN(v); ok {
				rp.Name = append(rp.Name, name)
			}
		}
	}
	for _, n := range []int{3, 7} {
		if cc, ok := CWE(FieldValue(nk1, n)); ok {
			table := map[int]string{3: "0063", 7: "0131"}[n]
			rp.Relationship = append(rp.Relationship, *withTable(&cc, table))
		}
	}
	for _, f := range []struct {
		n   int
		use string
	}{{5, ""}, {6, "work"}, {31, ""}, {40, ""}} {
		for v := range Repetitions(nk1, f.n) {
			if c, ok := XTN(v, f.use); ok {
				rp.Telecom = append(rp.Telecom, c)
			}
		}
	}
	for _, n := range []int{4, 32} {
		for v := range Repetitions(nk1, n) {
			if a, ok := XAD(v); ok {
				rp.Address = append(rp.Address, a)
			}
		}
	}
	if len(rp.Name) == 0 && len(rp.Identifier) == 0 && len(rp.Telecom) == 0 && len(rp.Address) == 0 {
		b.Notef("NK1(%d): no name, identifier, telecom or address; not mapped", nk1.Index())
		return
	}
	rp.Gender = genders[Code(FieldValue(nk1, 15))]
	rp.BirthDate = Date(FieldValue(nk1, 16).Get(1))
	rp.Period = period(b.DateTime(nk1, 8, FieldValue(nk1, 8).Get(1)), b.DateTime(nk1, 9, FieldValue(nk1, 9).Get(1)))
	rp.ActiveElement = AbsentElement() // US Core: active 1..1, which NK1 does not state
	var key Identifier
	if len(rp.Identifier) > 0 {
		key = rp.Identifier[0]
	} else {
		set := FieldValue(nk1, 1).Get(1)
		if set == "" {
			set = "#" + strconv.Itoa(position)
		}
		pk := b.PatientKey()
		key = Identifier{System: SystemV2Contact, Value: pk.System + "|" + pk.Value + "|" + set}
		rp.Identifier = []Identifier{key}
	}
	b.Update("RelatedPerson", Identifier{System: key.System, Value: key.Value}, rp)
}
