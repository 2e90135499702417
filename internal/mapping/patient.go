package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

type patient struct {
	ResourceType         string           `json:"resourceType"`
	Meta                 fhir.Meta        `json:"meta"`
	Extension            []Extension      `json:"extension,omitempty"`
	Identifier           []Identifier     `json:"identifier"`
	Active               *bool            `json:"active,omitempty"`
	Name                 []HumanName      `json:"name"`
	Telecom              []ContactPoint   `json:"telecom,omitempty"`
	Gender               string           `json:"gender,omitempty"`
	GenderElement        *Element         `json:"_gender,omitempty"`
	BirthDate            string           `json:"birthDate,omitempty"`
	BirthDateElement     *Element         `json:"_birthDate,omitempty"`
	DeceasedBoolean      *bool            `json:"deceasedBoolean,omitempty"`
	DeceasedDateTime     string           `json:"deceasedDateTime,omitempty"`
	Address              []Address        `json:"address,omitempty"`
	MaritalStatus        *CodeableConcept `json:"maritalStatus,omitempty"`
	MultipleBirthBoolean *bool            `json:"multipleBirthBoolean,omitempty"`
	MultipleBirthInteger int              `json:"multipleBirthInteger,omitempty"`
	Communication        []communication  `json:"communication,omitempty"`
	GeneralPractitioner  []*Reference     `json:"generalPractitioner,omitempty"`
	Link                 []patientLink    `json:"link,omitempty"`
}

type communication struct {
	Language CodeableConcept `json:"language"`
}

type patientLink struct {
	Other Reference `json:"other"`
	Type  string    `json:"type"`
}

// v2 table 0001 (administrative sex) → administrative-gender: the IG ConceptMap
// AdministrativeSex (N "not applicable" is "other", not "unknown").
var genders = map[string]string{"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}

// v2 table 0002 → v3 MaritalStatus: the IG ConceptMap MaritalStatus.
var maritalStatuses = map[string]Coding{
	"A": {Code: "L", Display: "Legally Separated"}, "D": {Code: "D", Display: "Divorced"},
	"M": {Code: "M", Display: "Married"}, "S": {Code: "S", Display: "Never Married"},
	"W": {Code: "W", Display: "Widowed"}, "C": {Code: "C", Display: "Common Law"},
	"G": {Code: "T", Display: "Domestic partner"}, "P": {Code: "T", Display: "Domestic partner"},
	"R": {Code: "T", Display: "Domestic partner"}, "E": {Code: "L", Display: "Legally Separated"},
	"N": {Code: "A", Display: "Annulled"}, "I": {Code: "I", Display: "Interlocutory"},
	"B": {Code: "U", Display: "unmarried"},
}

// mapPatient maps PID and PD1 to the Patient, keyed on the primary PID-3 identifier, and sets
// b.Patient. Every handler of a message with a PID calls it first.
func mapPatient(b *Builder) error {
	pid := b.Msg.Segment("PID", 1)
	if pid == nil {
		return Unmappable("PID", "%s has no PID segment", b.Msg.Type())
	}
	b.MarkHandled(pid)
	p := &patient{ResourceType: "Patient", Meta: b.Meta("Patient")}
	p.Identifier = patientIdentifiers(b, pid)
	key, ok := primaryIdentifier(p.Identifier)
	if !ok {
		return Unmappable("PID-3", "no identifier value")
	}
	for _, n := range []int{5, 9} {
		for v := range Repetitions(pid, n) {
			if name, ok := XPN(v); ok {
				p.Name = append(p.Name, name)
			}
			// XPN-15 "called by": the IG's XPN[HumanName] makes it a second name's given.
			if called := strings.TrimSpace(v.Get(15)); called != "" {
				p.Name = append(p.Name, HumanName{Use: "usual", Given: []string{called}})
			}
		}
	}
	if len(p.Name) == 0 {
		p.Name = []HumanName{{Extension: Absent()}}    // US Core: name 1..*, or a data-absent-reason
		p.Extension = append(p.Extension, Absent()...) // see mapMerge: us-core-6 in 5.0.1
	}
	for _, f := range []struct {
		n   int
		use string
	}{{13, "home"}, {14, "work"}, {40, ""}} {
		for v := range Repetitions(pid, f.n) {
			if c, ok := XTN(v, f.use); ok {
				p.Telecom = append(p.Telecom, c)
			}
		}
	}
	if g, ok := genders[Code(FieldValue(pid, 8))]; ok {
		p.Gender = g
	} else {
		p.GenderElement = AbsentElement() // US Core: gender 1..1
	}
	birth(b, p, pid)
	for v := range Repetitions(pid, 11) {
		if a, ok := XAD(v); ok {
			p.Address = append(p.Address, a)
		}
	}
	if v := FieldValue(pid, 16); !v.IsEmpty() {
		target, mapped := maritalStatuses[Code(v)]
		target.System = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
		p.MaritalStatus = mappedConcept(v, "0002", target, mapped)
	}
	deceased(b, p, pid)
	multipleBirth(p, pid)
	if lang, ok := language(FieldValue(pid, 15)); ok {
		p.Communication = []communication{{Language: lang}}
	}
	p.Extension = append(p.Extension, patientExtensions(b, pid)...)
	if pd1 := b.Msg.Segment("PD1", 1); pd1 != nil {
		b.MarkHandled(pd1)
		for v := range Repetitions(pd1, 3) {
			if ref := b.XON(v); ref != nil {
				p.GeneralPractitioner = append(p.GeneralPractitioner, ref)
			}
		}
		for v := range Repetitions(pd1, 4) {
			if ref := b.XCN(v); ref != nil {
				p.GeneralPractitioner = append(p.GeneralPractitioner, ref)
			}
		}
	}
	b.patientKey = Identifier{System: key.System, Value: key.Value}
	b.patient = b.Update("Patient", b.patientKey, p)
	return nil
}

// patientIdentifiers reads PID-3 (every repetition), then PID-2 and PID-4 (pre-2.5 external
// and alternate ids), PID-19 (SSN) and PID-20 (driver's licence).
func patientIdentifiers(b *Builder, pid *hl7v2.Segment) []Identifier {
	var ids []Identifier
	for _, n := range []int{3, 2, 4} {
		for v := range Repetitions(pid, n) {
			if id, ok := CX(v, b.Opts.ids()); ok {
				ids = append(ids, id)
			}
		}
	}
	if ssn := FieldValue(pid, 19).Get(1); ssn != "" {
		ids = append(ids, Identifier{
			Type:   &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "SS"}}},
			System: "http://hl7.org/fhir/sid/us-ssn", Value: ssn,
		})
	}
	if v := FieldValue(pid, 20); v.Get(1) != "" {
		ids = append(ids, Identifier{
			Type:   &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "DL"}}},
			System: urnID(v.Get(2)), Value: v.Get(1),
		})
	}
	return ids
}

// primaryIdentifier picks the conditional key among PID-3's identifiers (they come first):
// the first medical record number, else the first PID-3 identifier. PID-2/PID-4 never key,
// so a sender adding them does not split the patient.
func primaryIdentifier(ids []Identifier) (Identifier, bool) {
	for _, id := range ids {
		if id.Type != nil && id.Type.Coding[0].Code == "MR" {
			return id, true
		}
	}
	if len(ids) == 0 {
		return Identifier{}, false
	}
	return ids[0], true
}

// birth maps PID-7 to birthDate (the date as written, in the sender's zone) and, when it has
// a time and an offset (written, or the sender's zone), the patient-birthTime extension. An
// unreadable date is noted and birthDate says data-absent-reason "error": never a guessed
// date (a wrong one would attach the patient to the wrong person downstream), and never a
// refusal, since the patient is keyed on PID-3 and the rest of the message is true.
func birth(b *Builder, p *patient, pid *hl7v2.Segment) {
	dob := FieldValue(pid, 7).Get(1)
	if dob == "" {
		return
	}
	t, prec, err := hl7v2.ParseTime(dob)
	if err != nil {
		b.NoteAt("PID-7", "birth date %q is not a valid date (%s); birthDate absent", dob, badTimeReason(dob, err))
		p.BirthDateElement = &Element{Extension: []Extension{{URL: ExtDataAbsentReason, ValueCode: "error"}}}
		return
	}
	p.BirthDate = fhirDate(t, prec)
	if prec > hl7v2.PrecisionDay {
		if dt := b.DateTime(pid, 7, dob); strings.Contains(dt, "T") {
			p.BirthDateElement = &Element{Extension: []Extension{{URL: "http://hl7.org/fhir/StructureDefinition/patient-birthTime", ValueDateTime: dt}}}
		}
	}
}

// deceased maps PID-29 (death date/time), else PID-30 (death indicator Y/N).
func deceased(b *Builder, p *patient, pid *hl7v2.Segment) {
	if dt := b.DateTime(pid, 29, FieldValue(pid, 29).Get(1)); dt != "" {
		p.DeceasedDateTime = dt
		return
	}
	switch Code(FieldValue(pid, 30)) {
	case "Y":
		p.DeceasedBoolean = boolPtr(true)
	case "N":
		p.DeceasedBoolean = boolPtr(false)
	}
}

// multipleBirth maps PID-25 (birth order), else PID-24 (multiple birth indicator).
func multipleBirth(p *patient, pid *hl7v2.Segment) {
	if n := FieldValue(pid, 25).Get(1); isDigits(n) && len(n) < 3 && n != "0" {
		p.MultipleBirthInteger = int(n[0] - '0')
		if len(n) == 2 {
			p.MultipleBirthInteger = p.MultipleBirthInteger*10 + int(n[1]-'0')
		}
		return
	}
	switch Code(FieldValue(pid, 24)) {
	case "Y":
		p.MultipleBirthBoolean = boolPtr(true)
	case "N":
		p.MultipleBirthBoolean = boolPtr(false)
	}
}

// language maps a primary language (PID-15, NK1-20). An ISO 639 code ("EN", "en-US") is
// also a BCP 47 tag, the system US Core binds: it gets that coding first; the sender's coding
// follows as written.
func language(v Value) (CodeableConcept, bool) {
	cc, ok := CWE(v)
	if !ok {
		return cc, false
	}
	code, sys := v.Get(1), strings.ToUpper(v.Get(3))
	if isBCP47(code) && (sys == "" || sys == "HL70296" || sys == "ISO639" || sys == "ISO639-1" || sys == "IETF") {
		tag := Coding{System: "urn:ietf:bcp:47", Code: bcp47(code), Display: v.Get(2)}
		if len(cc.Coding) > 0 && cc.Coding[0].System == "" {
			cc.Coding[0] = tag
		} else {
			cc.Coding = append([]Coding{tag}, cc.Coding...)
		}
	}
	return cc, true
}

func isBCP47(s string) bool {
	lang, region, _ := strings.Cut(s, "-")
	if len(lang) < 2 || len(lang) > 3 || (region != "" && len(region) != 2) {
		return false
	}
	for _, c := range lang + region {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func bcp47(s string) string {
	lang, region, ok := strings.Cut(s, "-")
	if !ok {
		return strings.ToLower(lang)
	}
	return strings.ToLower(lang) + "-" + strings.ToUpper(region)
}
