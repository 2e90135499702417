package mapping

import (
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// v2 table 0085 (observation result status, OBX-11) → ObservationStatus: the IG ConceptMap
// ObservationResultStatusCodesInterpretation, completed where it is silent: the pending
// states (I, O specimen in lab / order detail) are registered, unverified and partial (R, S)
// preliminary, B (appended) amended, U and V (now final, verified) final, N (not asked) final
// with a data-absent-reason. An empty or unknown status is "unknown", never a guess.
var observationStatuses = map[string]string{
	"A": "amended", "B": "amended", "C": "corrected", "D": "entered-in-error", "F": "final",
	"I": "registered", "N": "final", "O": "registered", "P": "preliminary", "R": "preliminary",
	"S": "preliminary", "U": "final", "V": "final", "W": "entered-in-error", "X": "cancelled",
}

// absentReasons is the data-absent-reason of an OBX without a value, by OBX-11.
var absentReasons = map[string]string{
	"I": "temp-unknown", "O": "temp-unknown", "P": "temp-unknown", "R": "temp-unknown", "S": "temp-unknown",
	"N": "not-asked", "X": "not-performed", "D": "error", "W": "error",
}

const systemDataAbsentReason = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

// v2 table 0078 (interpretation codes, OBX-8) whose code is the same in
// v3-ObservationInterpretation, the target of the IG ConceptMap InterpretationCode.
var interpretations = map[string]string{
	"<": "Off scale low", ">": "Off scale high", "A": "Abnormal", "AA": "Critical abnormal",
	"AC": "Anti-complementary substances present", "B": "Better", "D": "Significant change down",
	"DET": "Detected", "H": "High", "HH": "Critical high", "HM": "Hold for Medical Review", "HU": "Significantly high",
	"I": "Intermediate", "IE": "Insufficient evidence", "IND": "Indeterminate", "L": "Low", "LL": "Critical low",
	"LU": "Significantly low", "MS": "moderately susceptible", "N": "Normal", "NCL": "No CLSI defined breakpoint",
	"ND": "Not detected", "NEG": "Negative", "NR": "Non-reactive", "NS": "Non-susceptible", "POS": "Positive",
	"QCF": "Quality control failure", "R": "Resistant", "RR": "Reactive", "S": "Susceptible",
	"SDD": "Susceptible-dose dependent", "SYN-R": "Synergy - resistant", "SYN-S": "Synergy - susceptible",
	"TOX": "Cytotoxic substance present", "U": "Significant change up", "VS": "very susceptible",
	"W": "Worse", "WR": "Weakly reactive", "EX": "outside threshold", "HX": "above high threshold", "LX": "below low threshold",
}

const systemV3Interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

// interpretation maps an OBX-8 repetition: the v3 code when table 0078 shares it, else the
// code in the sender's system (v2-0078 when it names none).
func interpretation(v Value) (CodeableConcept, bool) {
	code := strings.TrimSpace(v.Get(1))
	if code == "" {
		return CodeableConcept{}, false
	}
	if d, ok := interpretations[strings.ToUpper(code)]; ok {
		return CodeableConcept{Coding: []Coding{{System: systemV3Interpretation, Code: strings.ToUpper(code), Display: d}}, Text: v.Get(9)}, true
	}
	cc, _ := CWE(v)
	return *withTable(&cc, "0078"), true
}

// mapResults maps the group's OBX segments to Observations and returns the references (in
// OBX order) and, for a report (g.report), its presentedForm: the report rendered as a
// document (ED or RP results of a document type, see reportDocument) and the text of
// code-less text OBX (report lines without an observation code) as one plain-text
// attachment, in OBX order. An OBX-11 D result (v2: delete the OBX) is mapped, as
// entered-in-error, but not returned: the report drops it (see mapDiagnosticReport). It is
// kept as a tombstone rather than deleted so that the original, should it arrive late, is
// refused as older instead of bringing the result back.
func mapResults(b *Builder, g *orderGroup, spec *Reference) (refs []*Reference, forms []labAttachment) {
	var lines []string
	textAt := -1
	for _, r := range g.results {
		obx := r.obx
		typ := Code(FieldValue(obx, 2))
		code, ok := CWE(FieldValue(obx, 3))
		// A document withdrawn by its status (OBX-11 D, W) is no presented form: it stays an
		// Observation, entered-in-error.
		if g.report && (typ == "ED" || typ == "RP") && !isCode(Code(FieldValue(obx, 11)), "D", "W") {
			if a, isDoc := reportDocument(b, obx, typ, code); isDoc {
				b.Notef("OBX(%d)-5: %s document mapped to DiagnosticReport.presentedForm", obx.Index(), a.ContentType)
				forms = append(forms, a)
				continue
			}
		}
		if !ok {
			if g.report && isTextType(typ) {
				if textAt < 0 {
					textAt = len(forms)
					forms = append(forms, labAttachment{})
				}
				for v := range Repetitions(obx, 5) {
					lines = append(lines, rawText(v))
				}
				if FieldValue(obx, 5).IsEmpty() {
					lines = append(lines, "") // an empty line of the report is a line break
				}
				continue
			}
			b.Notef("OBX(%d)-3: no observation identifier; result not mapped", obx.Index())
			continue
		}
		if ref := mapObservation(b, g, r, code, spec); ref != nil && Code(FieldValue(obx, 11)) != "D" {
			refs = append(refs, ref)
		}
	}
	if textAt >= 0 {
		if a, ok := textAttachment(lines); ok {
			forms[textAt] = a
		} else { // blank lines only
			forms = append(forms[:textAt], forms[textAt+1:]...)
		}
	}
	return refs, forms
}

// mapObservation maps one OBX (IG OBX[Observation]) and its NTEs.
func mapObservation(b *Builder, g *orderGroup, r *result, code CodeableConcept, spec *Reference) *Reference {
	obx := r.obx
	// One allocation for the Observation and its one-element slices (it runs per OBX).
	a := &struct {
		o        observation
		id       [1]Identifier
		basedOn  [1]*Reference
		category [1]CodeableConcept
	}{o: observation{ResourceType: "Observation", Code: code, Subject: b.Patient(), Encounter: b.Encounter(), Specimen: spec}}
	o := &a.o
	key := observationKey(b, g, obx, code)
	a.id[0] = key
	o.Identifier = a.id[:]
	if g.sr != nil {
		a.basedOn[0] = g.sr
		o.BasedOn = a.basedOn[:]
	}
	status := Code(FieldValue(obx, 11))
	o.Status = observationStatuses[status]
	if o.Status == "" {
		o.Status = "unknown"
	}
	cat := ObservationCategory(code, FieldValue(g.obr, 24).Get(1))
	a.category[0] = categoryConcept(cat)
	o.Category = a.category[:]
	effectiveSeg, effectiveField, effective := obx, 14, FieldValue(obx, 14).Get(1)
	if effective == "" {
		effectiveSeg, effectiveField, effective = g.obr, 7, FieldValue(g.obr, 7).Get(1)
	}
	if o.EffectiveDateTime = b.DateTime(effectiveSeg, effectiveField, effective); o.EffectiveDateTime == "" {
		o.EffectiveElement = AbsentElement() // US Core: effective[x] must-support
	}
	if s, ok := b.Instant(g.obr, 22, FieldValue(g.obr, 22).Get(1)); ok {
		o.Issued = s
	}
	mapOBXFindings(b, o, obx, status)
	o.Note = annotations(b, r.notes)
	o.Meta = b.Meta("Observation")
	o.Meta.Profile = append(observationProfiles(cat, o), o.Meta.Profile...)
	if cat == CategoryVitalSigns && len(o.Meta.Profile) == 0 {
		b.Notef("OBX(%d)-5: vital sign %s without a UCUM quantity; no vital-signs profile declared", obx.Index(), code.Coding[0].Code)
	}
	return b.Update("Observation", key, o)
}

// mapOBXFindings maps what every OBX says of its Observation wherever it stands (a result, an
// ADT observation): performers (OBX-16, OBX-23), the value (setValue, else a
// dataAbsentReason from OBX-11 status), interpretation (OBX-8), body site (OBX-20), method
// (OBX-17) and reference range (OBX-7 with OBX-6 units).
func mapOBXFindings(b *Builder, o *observation, obx *hl7v2.Segment, status string) {
	for v := range Repetitions(obx, 16) {
		if ref := b.XCN(v); ref != nil {
			o.Performer = append(o.Performer, ref)
		}
	}
	if ref := b.XON(FieldValue(obx, 23)); ref != nil {
		o.Performer = append(o.Performer, ref)
	}
	setValue(b, o, obx)
	o.markAbsentValue(status)
	for v := range Repetitions(obx, 8) {
		if cc, ok := interpretation(v); ok {
			o.Interpretation = append(o.Interpretation, cc)
		}
	}
	if cc, ok := CWE(FieldValue(obx, 20)); ok {
		o.BodySite = &cc
	}
	if cc, ok := CWE(FieldValue(obx, 17)); ok {
		o.Method = &cc
	}
	if rr, ok := parseReferenceRange(FieldValue(obx, 7).Get(1), FieldValue(obx, 6)); ok {
		o.ReferenceRange = []referenceRange{rr}
	}
}

// observationKey is the Observation's SystemV2Observation key; see its doc.
func observationKey(b *Builder, g *orderGroup, obx *hl7v2.Segment, code CodeableConcept) Identifier {
	c := Coding{Code: code.Text}
	if len(code.Coding) > 0 {
		c = code.Coding[0]
	}
	// Every order key is a SystemV2Order value, so the value alone names the order.
	id := Identifier{System: SystemV2Observation, Value: strings.Join([]string{g.resKey.Value, c.System, c.Code, FieldValue(obx, 4).Get(1)}, "|")}
	if b.Has("Observation", id) {
		id.Value += "|#" + FieldValue(obx, 1).Get(1)
		b.Notef("OBX(%d)-4: code and sub-id repeat in the order; keyed with OBX-1", obx.Index())
	}
	return id
}

// commonUCUM are units senders write without naming a coding system that are valid UCUM
// exactly as written, so the quantity can carry system and code.
var commonUCUM = map[string]bool{
	"%": true, "/min": true, "mm[Hg]": true, "Cel": true, "[degF]": true, "kg": true, "g": true, "[lb_av]": true,
	"cm": true, "[in_i]": true, "kg/m2": true, "mg/dL": true, "g/dL": true, "g/L": true, "mmol/L": true,
	"umol/L": true, "U/L": true, "[IU]/L": true, "[IU]/mL": true, "mL": true, "L": true, "L/L": true, "fL": true,
	"pg": true, "10*3/uL": true, "10*6/uL": true, "10*9/L": true, "10*12/L": true, "ug/mL": true, "ng/mL": true,
	"ug/dL": true, "mg/L": true, "mEq/L": true, "s": true, "h": true, "d": true, "wk": true, "mo": true, "a": true,
	"{cells}/uL": true, "pg/{cell}": true, "mg/dl": true, "g/dl": true,
}

// normaliseUnits makes a quantity's unit UCUM-coded when the sender wrote a common UCUM unit
// without a coding system, and drops the ISO ("ISO+" is table 0396's name) system senders
// put on non-UCUM unit text: it names no code system FHIR knows.
func normaliseUnits(q *Quantity) *Quantity {
	if q == nil {
		return nil
	}
	switch {
	case q.System == "" && commonUCUM[q.Unit]:
		q.System, q.Code = systemUCUM, q.Unit
	case q.System == "urn:id:ISO" || q.System == "urn:id:ANSI":
		q.System, q.Code = "", ""
	}
	return q
}

var rangePattern = regexp.MustCompile(`^\s*(-?\d*\.?\d+)\s*(?:-|to|_)\s*(-?\d*\.?\d+)\s*$`)
var boundPattern = regexp.MustCompile(`^\s*(<=|>=|<|>)\s*(-?\d*\.?\d+)\s*$`)

// parseReferenceRange maps OBX-7: the text always (IG: referenceRange.text), and low/high in
// the result's units when the text is "a-b", "a to b", "<b", "<=b", ">a" or ">=a".
func parseReferenceRange(s string, units Value) (referenceRange, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return referenceRange{}, false
	}
	rr := referenceRange{Text: s}
	q := func(n string) *Quantity {
		qq, ok := NM(n, units)
		if !ok {
			return nil
		}
		return normaliseUnits(qq)
	}
	if m := rangePattern.FindStringSubmatch(s); m != nil {
		rr.Low, rr.High = q(m[1]), q(m[2])
	} else if m := boundPattern.FindStringSubmatch(s); m != nil {
		if strings.HasPrefix(m[1], "<") {
			rr.High = q(m[2])
		} else {
			rr.Low = q(m[2])
		}
	}
	return rr, true
}

// timeOfDay converts a TM (HH[MM[SS[.S…]]][+/-ZZZZ]) to a FHIR time, dropping the offset FHIR
// time cannot hold.
func timeOfDay(s string) (string, bool) {
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		s = s[:i]
	}
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, frac = s[:i], s[i:]
	}
	if !isDigits(s) || len(s)%2 != 0 || len(s) < 2 || len(s) > 6 || (frac != "" && (len(s) != 6 || !isDigits(frac[1:]))) {
		return "", false
	}
	for len(s) < 6 {
		s += "00"
	}
	if s[:2] > "23" || s[2:4] > "59" || s[4:6] > "59" {
		return "", false
	}
	return s[:2] + ":" + s[2:4] + ":" + s[4:6] + frac, true
}

// textAttachment is code-less report text as a plain-text Attachment. Blank lines around
// the text are dropped; those inside it are the report's layout. ok is false when no line
// has text.
func textAttachment(lines []string) (a labAttachment, ok bool) {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return labAttachment{}, false
	}
	return labAttachment{ContentType: "text/plain", Data: base64.StdEncoding.EncodeToString([]byte(strings.Join(lines, "\n")))}, true
}

// markAbsentValue sets dataAbsentReason when setValue gave the Observation neither a value[x]
// nor components: why, from the result status (OBX-11), "unsupported" when the value is an
// attachment carried in an extension, else "unknown".
func (o *observation) markAbsentValue(status string) {
	if o.isSet() || len(o.Component) > 0 {
		return
	}
	reason := absentReasons[status]
	if len(o.Extension) > 0 {
		reason = "unsupported" // the value is an Attachment, in the extension
	} else if reason == "" {
		reason = "unknown"
	}
	o.DataAbsentReason = &CodeableConcept{Coding: []Coding{{System: systemDataAbsentReason, Code: reason}}}
}
