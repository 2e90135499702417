package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterSegment("PR1", mapPR1) }

// procedureFunctions are PR1's practitioner fields and the SNOMED CT role of each (IG
// PR1[Procedure]); PR1-12 (procedure practitioner) names no role.
var procedureFunctions = [...]struct {
	field int
	role  *CodeableConcept
}{
	{8, &CodeableConcept{Coding: []Coding{{System: "http://snomed.info/sct", Code: "88189002", Display: "Anesthesiologist"}}}},
	{11, &CodeableConcept{Coding: []Coding{{System: "http://snomed.info/sct", Code: "304292004", Display: "Surgeon"}}}},
	{12, nil},
}

// mapPR1 maps a PR1 to a Procedure (IG PR1[Procedure]). Its key is PR1-19 (procedure
// identifier) when it has an assigning authority, else the derived SystemV2Procedure key
// patient + PR1-3 code + PR1-5 time: the same procedure performed twice differs by its time.
//
// status is "completed": the IG leaves it to the message context, and ADT PR1 segments
// report procedures performed during the visit (a planned one would come in an order).
func mapPR1(b *Builder, seg *hl7v2.Segment) error {
	if b.Patient() == nil {
		return nil
	}
	p := &procedure{ResourceType: "Procedure", Meta: b.Meta("Procedure"), Status: "completed", Subject: b.Patient(), Encounter: b.Encounter()}
	codeV := FieldValue(seg, 3)
	if cc, ok := CWE(codeV); ok {
		p.Code = cc
	}
	if p.Code.Text == "" {
		p.Code.Text = FieldValue(seg, 4).Get(1) // PR1-4, deprecated since v2.3 but still sent
	}
	if len(p.Code.Coding) == 0 && p.Code.Text == "" {
		p.Code = CodeableConcept{Extension: Absent()} // US Core: code 1..1
	}
	when := FieldValue(seg, 5).Get(1)
	if p.PerformedDateTime = b.DateTime(seg, 5, when); p.PerformedDateTime == "" {
		// US Core us-core-7: a completed procedure has performed[x].
		p.PerformedElement = AbsentElement()
	}
	if cc, ok := CWE(FieldValue(seg, 6)); ok {
		p.Category = withTable(&cc, "0230")
	}
	for _, f := range procedureFunctions {
		for v := range Repetitions(seg, f.field) {
			if ref := b.XCN(v); ref != nil {
				p.Performer = append(p.Performer, procedurePerformer{Function: f.role, Actor: ref})
			}
		}
	}
	if cc, ok := CWE(FieldValue(seg, 15)); ok {
		p.ReasonCode = []CodeableConcept{cc}
	}
	p.Location = b.PL(FieldValue(seg, 23))

	prID, hasID := EI(FieldValue(seg, 19), b.Opts.ids())
	key := prID
	if hasID && prID.System != "" {
		p.Identifier = []Identifier{prID}
	} else {
		code := firstNonEmpty(codeV.Get(1), strings.ToUpper(p.Code.Text))
		if code == "" {
			b.Notef("PR1(%d)-3: no procedure code or text; not mapped", seg.Index())
			return nil
		}
		pk := b.PatientKey()
		key = Identifier{System: SystemV2Procedure, Value: strings.Join([]string{pk.System, pk.Value, CodingSystem(codeV.Get(3)), code, when}, "|")}
		p.Identifier = []Identifier{key}
		if hasID {
			p.Identifier = append(p.Identifier, prID)
		}
	}
	b.Update("Procedure", Identifier{System: key.System, Value: key.Value}, p)
	return nil
}
