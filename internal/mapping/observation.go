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
// OBX order) and the text of code-less text OBX (report lines without an observation code,
// which become the DiagnosticReport's presentedForm).
func mapResults(b *Builder, g *orderGroup, spec *Reference) (refs []*Reference, text []string) {
	for _, r := range g.results {
		obx := r.obx
		code, ok := CWE(FieldValue(obx, 3))
		if !ok {
			if isCode(Code(FieldValue(obx, 2)), "TX", "ST", "FT") {
				var lines []string
				for v := range Repetitions(obx, 5) {
					lines = append(lines, v.Get(1))
				}
				text = append(text, strings.Join(lines, "\n"))
				continue
			}
			b.Notef("OBX(%d)-3: no observation identifier; result not mapped", obx.Index())
			continue
		}
		if ref := mapObservation(b, g, r, code, spec); ref != nil {
			refs = append(refs, ref)
		}
	}
	return refs, text
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
	for v := range Repetitions(obx, 16) {
		if ref := b.XCN(v); ref != nil {
			o.Performer = append(o.Performer, ref)
		}
	}
	if ref := b.XON(FieldValue(obx, 23)); ref != nil {
		o.Performer = append(o.Performer, ref)
	}
	setValue(b, o, obx)
	if o.ValueQuantity == nil && o.ValueCodeableConcept == nil && o.ValueString == "" && o.ValueRange == nil &&
		o.ValueRatio == nil && o.ValueTime == "" && o.ValueDateTime == "" && o.ValuePeriod == nil {
		reason := absentReasons[status]
		if len(o.Extension) > 0 {
			reason = "unsupported" // the value is an Attachment, in the extension
		} else if reason == "" {
			reason = "unknown"
		}
		o.DataAbsentReason = &CodeableConcept{Coding: []Coding{{System: systemDataAbsentReason, Code: reason}}}
	}
	for v := range Repetitions(obx, 8) {
		if cc, ok := interpretation(v); ok {
			o.Interpretation = append(o.Interpretation, cc)
		}
	}
	o.Note = annotations(b, r.notes)
	if cc, ok := CWE(FieldValue(obx, 20)); ok {
		o.BodySite = &cc
	}
	if cc, ok := CWE(FieldValue(obx, 17)); ok {
		o.Method = &cc
	}
	if rr, ok := parseReferenceRange(FieldValue(obx, 7).Get(1), FieldValue(obx, 6)); ok {
		o.ReferenceRange = []referenceRange{rr}
	}
	o.Meta = b.Meta("Observation")
	o.Meta.Profile = append(observationProfiles(cat, o), o.Meta.Profile...)
	if cat == CategoryVitalSigns && len(o.Meta.Profile) == 0 {
		b.Notef("OBX(%d)-5: vital sign %s without a UCUM quantity; no vital-signs profile declared", obx.Index(), code.Coding[0].Code)
	}
	return b.Update("Observation", key, o)
}

// observationKey is the Observation's SystemV2Observation key; see its doc.
func observationKey(b *Builder, g *orderGroup, obx *hl7v2.Segment, code CodeableConcept) Identifier {
	c := Coding{Code: code.Text}
	if len(code.Coding) > 0 {
		c = code.Coding[0]
	}
	id := Identifier{System: SystemV2Observation, Value: strings.Join([]string{g.resKey.System, g.resKey.Value, c.System, c.Code, FieldValue(obx, 4).Get(1)}, "|")}
	if b.Has("Observation", id) {
		id.Value += "|#" + FieldValue(obx, 1).Get(1)
		b.Notef("OBX(%d)-4: code and sub-id repeat in the order; keyed with OBX-1", obx.Index())
	}
	return id
}

// setValue maps OBX-5 by its type OBX-2 (IG OBX[Observation] OBX-5 rows). A value that does
// not parse as its type is kept as text (valueString), with a note.
func setValue(b *Builder, o *observation, obx *hl7v2.Segment) {
	typ := Code(FieldValue(obx, 2))
	v := FieldValue(obx, 5)
	if v.IsEmpty() {
		return
	}
	units := FieldValue(obx, 6)
	if !isCode(typ, "TX", "FT", "ST") {
		n := 0
		for range Repetitions(obx, 5) {
			n++
		}
		if n > 1 {
			b.Notef("OBX(%d)-5: %d repetitions; only the first is mapped", obx.Index(), n)
		}
	}
	switch typ {
	case "NM":
		if q, ok := NM(v.Get(1), units); ok {
			o.ValueQuantity = normaliseUnits(q)
			return
		}
	case "SN":
		if v.Get(1) == "<>" || v.Get(3) == "+" {
			break // IG: valueString
		}
		if sn, ok := SN(v, units); ok {
			switch {
			case sn.Quantity != nil:
				o.ValueQuantity = normaliseUnits(sn.Quantity)
			case sn.Range != nil:
				sn.Range.Low, sn.Range.High = normaliseUnits(sn.Range.Low), normaliseUnits(sn.Range.High)
				o.ValueRange = sn.Range
			default:
				o.ValueRatio = sn.Ratio
			}
			return
		}
	case "ST", "TX", "FT", "VR":
		var lines []string
		for r := range Repetitions(obx, 5) {
			lines = append(lines, r.Get(1))
		}
		o.ValueString = strings.Join(lines, "\n")
		return
	case "CE", "CWE", "CNE", "CF", "IS", "ID":
		if cc, ok := CWE(v); ok {
			o.ValueCodeableConcept = &cc
			return
		}
	case "DT", "DTM", "TS":
		if s := DateTime(v.Get(1), b.Opts.Location); s != "" {
			o.ValueDateTime = s
			return
		}
	case "TM":
		if s, ok := timeOfDay(v.Get(1)); ok {
			o.ValueTime = s
			return
		}
	case "DR":
		if p := period(DateTime(v.Sub(1).Get(1), b.Opts.Location), DateTime(v.Sub(2).Get(1), b.Opts.Location)); p != nil {
			o.ValuePeriod = p
			return
		}
	case "NR":
		lo, okLo := NM(v.Get(1), Value{kind: kindLeaf})
		hi, okHi := NM(v.Get(2), Value{kind: kindLeaf})
		if okLo || okHi {
			o.ValueRange = &Range{Low: lo, High: hi}
			return
		}
	case "CX", "EI":
		o.ValueString = v.Get(1)
		return
	case "ED":
		if a, ok := ED(v); ok {
			o.Extension = []labExtension{{URL: ExtObservationValue, ValueAttachment: &labAttachment{ContentType: a.ContentType, Data: a.Data}}}
			return
		}
		b.Notef("OBX(%d)-5: ED without decodable data; not mapped", obx.Index())
		return
	case "RP":
		// RP-1 is a pointer to the data (a URL, or an id the sender resolves), RP-3/RP-4 its type.
		o.Extension = []labExtension{{URL: ExtObservationValue, ValueAttachment: &labAttachment{ContentType: mediaType(v.Get(3), v.Get(4)), URL: v.Get(1)}}}
		return
	}
	b.Notef("OBX(%d)-5: %q is not a valid %s; kept as text", obx.Index(), v.Get(1), typ)
	o.ValueString = v.Get(1)
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

// textAttachment is code-less report text as a plain-text Attachment.
func textAttachment(lines []string) Attachment {
	return Attachment{ContentType: "text/plain", Data: base64.StdEncoding.EncodeToString([]byte(strings.Join(lines, "\n")))}
}
