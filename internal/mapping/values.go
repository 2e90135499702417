package mapping

import (
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nhp/interop/internal/hl7v2"
)

// OBX-5 by its type OBX-2: the IG's OBX[Observation] OBX-5 rows where it has one, the closest
// value[x] where it has none, never a silent cut. The rules:
//
//   - NM, SN, NR, CQ, MO, CP: valueQuantity, valueRange or valueRatio with the units of OBX-6
//     (CQ and MO carry their own; an SN ratio's comparator is its numerator's). An SN the IG
//     sends to text ("<>", "+" separator) and any value that does not parse is valueString of
//     all its parts and the units. An NM with a comparator or range (">17", "1-5") is read
//     as the SN it is, with a note.
//   - ST, TX, FT: valueString, repetitions (lines) joined by line breaks, separators the
//     sender did not escape kept. An ST that is a number, with an optional comparator, range
//     or ratio, and has units in OBX-6 is a measurement sent as text: it becomes the
//     quantity, so the units survive (the IG says valueString, which would drop them). Units
//     on other text are appended when the text has a number, else noted.
//   - CWE, CE, CNE, CF, IS, ID: valueCodeableConcept. DT, DTM, TS: valueDateTime. TM: valueTime.
//     DR: valuePeriod.
//   - CX, CK, EI, HD, XPN, PN, XCN, CN, XAD, AD, XTN, TN, XON, VR: valueString formatted from
//     every component the type's text needs (an address keeps street, city, state, postal
//     code, country and county), as R4's value[x] has no Identifier, HumanName, Address or
//     ContactPoint.
//   - NA, MA: valueString of the array as written ("1^2~3^4") and its units. The IG's
//     valueSampledData needs a sampling period (required in R4) that v2 arrays do not carry.
//   - ED, RP: an Attachment in the R5 Observation.value extension (the IG's choice). Documents
//     of a report go to DiagnosticReport.presentedForm instead (see reportDocument).
//
// A repeating OBX-5 of a type other than text is not cut to its first repetition: each
// repetition becomes an Observation.component with the Observation's code and its value, and
// the Observation has no value[x] (obs-7 forbids both). ED and RP map their first repetition;
// the rest are noted.

// isTextType reports whether typ is a v2 type whose repetitions are lines of one text.
func isTextType(typ string) bool { return typ == "ST" || typ == "TX" || typ == "FT" }

// setValue maps OBX-5 into o (see the rules above) and notes what it could not map as typed.
func setValue(b *Builder, o *observation, obx *hl7v2.Segment) {
	typ := Code(FieldValue(obx, 2))
	v := FieldValue(obx, 5)
	if v.IsEmpty() {
		return
	}
	n := 0
	for range Repetitions(obx, 5) {
		n++
	}
	switch {
	case isTextType(typ) && n > 1:
		var lines []string
		for r := range Repetitions(obx, 5) {
			lines = append(lines, rawText(r))
		}
		o.ValueString = strings.Join(lines, "\n")
		noteTextUnits(b, obx)
		return
	case typ == "NA" || typ == "MA":
		// Not valueSampledData, the IG's target: R4 requires SampledData.period, the interval
		// between samples, which an NA or MA does not carry. The array is kept as written.
		var rows []string
		for r := range Repetitions(obx, 5) {
			rows = append(rows, rawText(r))
		}
		o.ValueString = withUnits(b, strings.Join(rows, "~"), obx)
		return
	case typ == "ED" || typ == "RP":
		if n > 1 {
			b.Notef("OBX(%d)-5: %d repetitions of %s; only the first is mapped", obx.Index(), n, typ)
		}
		if a, ok := attachmentValue(b, obx, typ, v); ok {
			o.Extension = []labExtension{{URL: ExtObservationValue, ValueAttachment: a}}
		}
		return
	case n > 1:
		i := 0
		for r := range Repetitions(obx, 5) {
			i++
			c := obsComponent{Code: o.Code}
			if !typedValue(b, &c.obsValue, typ, r, obx) {
				c.ValueString = keptAsText(b, typ, r, obx, i)
			}
			if !c.isSet() {
				c.DataAbsentReason = &CodeableConcept{Coding: []Coding{{System: systemDataAbsentReason, Code: "unknown"}}}
			}
			o.Component = append(o.Component, c)
		}
		return
	}
	if !typedValue(b, &o.obsValue, typ, v, obx) {
		o.ValueString = keptAsText(b, typ, v, obx, 0)
	}
}

// keptAsText is the valueString of a value that does not parse as its type, with a note.
// rep is the repetition's number when OBX-5 repeats, else 0.
func keptAsText(b *Builder, typ string, v Value, obx *hl7v2.Segment, rep int) string {
	s := rawText(v)
	if isMeasureType(typ) {
		s = withUnits(b, s, obx)
	}
	what := "no value type in OBX-2"
	if typ != "" {
		what = fmt.Sprintf("%q is not a valid %s", clip(s), typ)
	}
	if rep > 0 {
		b.Notef("OBX(%d)-5: repetition %d: %s; kept as text", obx.Index(), rep, what)
	} else {
		b.Notef("OBX(%d)-5: %s; kept as text", obx.Index(), what)
	}
	return s
}

// clip shortens a value quoted in a note: a note says what happened, it does not copy data.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func isMeasureType(typ string) bool {
	switch typ {
	case "NM", "SN", "NR", "CQ":
		return true
	}
	return false
}

// typedValue maps one OBX-5 repetition v of type typ into dst. It returns false when v does
// not parse as typ (or typ is unknown); the caller keeps it as text.
func typedValue(b *Builder, dst *obsValue, typ string, v Value, obx *hl7v2.Segment) bool {
	switch typ {
	case "NM":
		if q, ok := NM(v.Get(1), FieldValue(obx, 6)); ok {
			dst.ValueQuantity = normaliseUnits(q)
			return true
		}
		// A comparator or range in a numeric field (">17", "1-5") is a structured numeric
		// sent in the wrong type: map it as one rather than as text.
		if setSNText(dst, v.Get(1), obx) {
			b.Notef("OBX(%d)-5: %q is not a plain number; mapped as a structured numeric", obx.Index(), v.Get(1))
			return true
		}
	case "SN":
		return setSN(b, dst, v, obx)
	case "ST", "TX", "FT":
		s := rawText(v)
		switch {
		case FieldValue(obx, 6).IsEmpty():
			dst.ValueString = s
		case typ == "ST" && setSNText(dst, s, obx):
			// a measurement sent as text: a quantity, so its units are kept
		case typ == "ST":
			dst.ValueString = withUnits(b, s, obx)
		default:
			dst.ValueString = s
			noteTextUnits(b, obx)
		}
		return dst.isSet()
	case "VR":
		// IG: OBX-5.1 + "-" + OBX-5.2 (a value range).
		dst.ValueString = strings.Join(nonEmpty(v.Get(1), v.Get(2)), "-")
		return dst.ValueString != ""
	case "CE", "CWE", "CNE", "CF", "IS", "ID":
		if cc, ok := CWE(v); ok {
			dst.ValueCodeableConcept = &cc
			return true
		}
	case "DT", "DTM", "TS":
		if s := DateTime(v.Get(1), b.Opts.Location); s != "" {
			dst.ValueDateTime = s
			return true
		}
	case "TM":
		if s, ok := timeOfDay(v.Get(1)); ok {
			dst.ValueTime = s
			return true
		}
	case "DR":
		if p := period(DateTime(v.Sub(1).Get(1), b.Opts.Location), DateTime(v.Sub(2).Get(1), b.Opts.Location)); p != nil {
			dst.ValuePeriod = p
			return true
		}
	case "NR":
		units := FieldValue(obx, 6)
		lo, okLo := NM(v.Get(1), units)
		hi, okHi := NM(v.Get(2), units)
		if (okLo || v.Get(1) == "") && (okHi || v.Get(2) == "") && (okLo || okHi) {
			dst.ValueRange = &Range{Low: normaliseUnits(lo), High: normaliseUnits(hi)}
			return true
		}
	case "CQ":
		// CQ-2 are the quantity's own units; OBX-6 when the sender put them there instead.
		units := v.Sub(2)
		if units.IsEmpty() {
			units = FieldValue(obx, 6)
		}
		if q, ok := NM(v.Get(1), units); ok {
			dst.ValueQuantity = normaliseUnits(q)
			return true
		}
	case "MO":
		return setMoney(dst, v.Get(1), v.Get(2))
	case "CP":
		price := v.Sub(1) // CP-1 is an MO in subcomponents
		return setMoney(dst, price.Get(1), price.Get(2))
	case "CX", "CK":
		hd := v.Sub(4)
		dst.ValueString = idText(v.Get(1), v.Get(5), cmp.Or(hd.Get(1), hd.Get(2)))
	case "EI":
		dst.ValueString = idText(v.Get(1), cmp.Or(v.Get(2), v.Get(3)))
	case "HD":
		dst.ValueString = idText(v.Get(1), v.Get(2))
	case "XPN", "PN":
		dst.ValueString = nameText(v, 0)
	case "XCN", "CN":
		dst.ValueString = idText(nameText(v, 1), v.Get(1))
	case "XON":
		dst.ValueString = idText(v.Get(1), cmp.Or(v.Get(10), v.Get(3)))
	case "XAD", "AD":
		dst.ValueString = addressText(v)
	case "XTN", "TN":
		dst.ValueString = telecomText(v)
	}
	return dst.isSet()
}

// noteTextUnits notes OBX-6 units on a text result: free text has no quantity to hold them.
func noteTextUnits(b *Builder, obx *hl7v2.Segment) {
	if u := FieldValue(obx, 6); !u.IsEmpty() {
		b.Notef("OBX(%d)-6: units %q on a text result; not mapped", obx.Index(), clip(unitText(u)))
	}
}

// setSN maps a structured numeric with the units of OBX-6 (IG SN[Quantity], SN[Range],
// SN[Ratio]); the forms the IG sends to valueString ("<>" comparator, "+" suffix) and those
// FHIR cannot hold become text of all four parts and the units, as the IG writes it.
func setSN(b *Builder, dst *obsValue, v Value, obx *hl7v2.Segment) bool {
	if v.Get(1) != "<>" && v.Get(3) != "+" {
		if sn, ok := SN(v, FieldValue(obx, 6)); ok {
			sn.set(dst)
			return true
		}
	}
	s := strings.Join(nonEmpty(v.Get(1), v.Get(2), v.Get(3), v.Get(4)), " ")
	if s == "" {
		return false
	}
	dst.ValueString = withUnits(b, s, obx)
	return true
}

func (sn SNResult) set(dst *obsValue) {
	switch {
	case sn.Quantity != nil:
		dst.ValueQuantity = normaliseUnits(sn.Quantity)
	case sn.Range != nil:
		sn.Range.Low, sn.Range.High = normaliseUnits(sn.Range.Low), normaliseUnits(sn.Range.High)
		dst.ValueRange = sn.Range
	default:
		sn.Ratio.Numerator, sn.Ratio.Denominator = normaliseUnits(sn.Ratio.Numerator), normaliseUnits(sn.Ratio.Denominator)
		dst.ValueRatio = sn.Ratio
	}
}

// snText is a structured numeric written as text: ">17", "<= 0.5", "1-5", "1:128".
var snText = regexp.MustCompile(`^\s*(<=|>=|<|>|=)?\s*([-+]?\d*\.?\d+)\s*(?:([-:/])\s*([-+]?\d*\.?\d+))?\s*$`)

// setSNText maps text that is a structured numeric (see snText) with the units of OBX-6.
func setSNText(dst *obsValue, s string, obx *hl7v2.Segment) bool {
	if strings.IndexFunc(s, isDigit) < 0 {
		return false // no number: spare the regexp
	}
	m := snText.FindStringSubmatch(s)
	if m == nil || m[3] == "-" && !ascending(m[2], m[4]) {
		return false // "2024-01" is no range
	}
	sn, ok := snParts(m[1], m[2], m[3], m[4], FieldValue(obx, 6))
	if !ok {
		return false
	}
	sn.set(dst)
	return true
}

// ascending reports whether the decimal a is at most b.
func ascending(a, b string) bool {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && x <= y
}

// setMoney maps an MO (quantity, ISO 4217 denomination) to a Quantity in the currency.
func setMoney(dst *obsValue, amount, currency string) bool {
	d, ok := ParseDecimal(amount)
	if !ok {
		return false
	}
	q := &Quantity{Value: d}
	if currency = strings.ToUpper(strings.TrimSpace(currency)); currency != "" {
		q.Unit, q.System, q.Code = currency, "urn:iso:std:iso:4217", currency
	}
	dst.ValueQuantity = q
	return true
}

// attachmentValue maps an ED or RP value to the Attachment of the value extension.
func attachmentValue(b *Builder, obx *hl7v2.Segment, typ string, v Value) (*labAttachment, bool) {
	if typ == "RP" {
		return rpAttachment(v)
	}
	ed, ok := decodeED(v)
	if !ok {
		b.Notef("OBX(%d)-5: ED without decodable data; not mapped", obx.Index())
		return nil, false
	}
	noteED(b, obx, ed)
	return &labAttachment{ContentType: ed.ContentType, Data: ed.Data}, true
}

// rpAttachment maps a reference pointer (IG RP[Attachment]): RP-1 the pointer, RP-3/RP-4 the
// type of the data it points to.
func rpAttachment(v Value) (*labAttachment, bool) {
	url := strings.TrimSpace(v.Get(1))
	if url == "" {
		return nil, false
	}
	return &labAttachment{ContentType: rpMediaType(url, v.Get(3), v.Get(4)), URL: url}, true
}

// noteED notes when an ED's content type is not what ED-2/ED-3 declared, or its encoding is
// not one of table 0299's.
func noteED(b *Builder, obx *hl7v2.Segment, ed edData) {
	switch {
	case ed.declared == "":
		b.Notef("OBX(%d)-5: ED-2/ED-3 name no media type; %s by the data", obx.Index(), ed.ContentType)
	case ed.ContentType != ed.declared:
		b.Notef("OBX(%d)-5: ED declares %s but the data is %s", obx.Index(), ed.declared, ed.ContentType)
	}
	if ed.unknownEncoding != "" {
		b.Notef("OBX(%d)-5: ED-4 encoding %q unknown; data kept as text", obx.Index(), clip(ed.unknownEncoding))
	}
}

// reportDocument returns the OBX as a DiagnosticReport.presentedForm when it is the report
// rendered as a document (an ED or RP of a document type: PDF, RTF, HTML, text, a scanned
// document), titled with the OBX-3 text. Images and signals stay Observations.
func reportDocument(b *Builder, obx *hl7v2.Segment, typ string, code CodeableConcept) (labAttachment, bool) {
	n := 0
	for range Repetitions(obx, 5) {
		n++
	}
	if n != 1 {
		return labAttachment{}, false
	}
	v := FieldValue(obx, 5)
	var (
		a          labAttachment
		ed         edData
		typeOfData string
	)
	if typ == "RP" {
		p, ok := rpAttachment(v)
		if !ok {
			return labAttachment{}, false
		}
		a, typeOfData = *p, v.Get(3)
	} else {
		var ok bool
		if ed, ok = decodeED(v); !ok {
			return labAttachment{}, false
		}
		a, typeOfData = labAttachment{ContentType: ed.ContentType, Data: ed.Data}, v.Get(2)
	}
	if !isDocument(a.ContentType, typeOfData) {
		return labAttachment{}, false
	}
	if typ == "ED" {
		noteED(b, obx, ed)
	}
	a.Title = conceptText(code)
	return a, true
}

// conceptText is the text a person reads for a concept: its text, else its first display,
// else its first code.
func conceptText(cc CodeableConcept) string {
	if cc.Text != "" {
		return cc.Text
	}
	for _, c := range cc.Coding {
		if c.Display != "" {
			return c.Display
		}
	}
	if len(cc.Coding) > 0 {
		return cc.Coding[0].Code
	}
	return ""
}

// rawText is a value as the text it was written as: its parts rejoined with the component
// and subcomponent separators (which text types cannot contain, so they were data the sender
// did not escape), trailing empty parts dropped.
func rawText(v Value) string { return textFrom(v, 1) }

// textFrom is rawText of parts from, from+1… of v.
func textFrom(v Value, from int) string {
	n := v.Len()
	if n <= from && v.Sub(from).Len() <= 1 {
		return v.Get(from)
	}
	var sb strings.Builder
	for i := from; i <= n; i++ {
		if i > from {
			sb.WriteByte('^')
		}
		c := v.Sub(i)
		m := c.Len()
		if m <= 1 {
			sb.WriteString(v.Get(i))
			continue
		}
		for j := 1; j <= m; j++ {
			if j > 1 {
				sb.WriteByte('&')
			}
			sb.WriteString(c.Sub(j).Get(1))
		}
	}
	return strings.TrimRight(sb.String(), "^&")
}

// withUnits appends the units of OBX-6 to a value kept as text, as the IG writes SN text,
// when the text has a number for them to qualify ("ca. 5", "1+"); units it cannot qualify
// ("see note") are noted.
func withUnits(b *Builder, s string, obx *hl7v2.Segment) string {
	if strings.IndexFunc(s, isDigit) < 0 {
		noteTextUnits(b, obx)
		return s
	}
	if u := unitText(FieldValue(obx, 6)); u != "" {
		return s + " " + u
	}
	return s
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// unitText is the units a person reads: CWE-2 text, else CWE-1 code.
func unitText(u Value) string { return cmp.Or(u.Get(2), u.Get(1)) }

// idText formats an identifier with its qualifiers: "A123 (MR, HOSP)".
func idText(id string, qualifiers ...string) string {
	q := strings.Join(nonEmpty(qualifiers...), ", ")
	switch {
	case id == "":
		return q
	case q == "":
		return id
	}
	return id + " (" + q + ")"
}

// nameText formats an XPN-shaped name starting at part off+1 (XCN's starts at XCN-2):
// prefix, given, middle, family, suffix, degree.
func nameText(v Value, off int) string {
	return strings.Join(nonEmpty(v.Get(off+5), v.Get(off+2), v.Get(off+3), v.Sub(off+1).Get(1), v.Get(off+4), v.Get(off+6)), " ")
}

// addressText formats every part of an XAD a postal address has: street (SAD-1..3), other
// designation, city, county (XAD-9), state and postal code, country, other geographic
// designation (XAD-8).
func addressText(v Value) string {
	sad := v.Sub(1)
	street := strings.Join(nonEmpty(strings.TrimSpace(sad.Get(1)), strings.TrimSpace(sad.Get(2)), strings.TrimSpace(sad.Get(3))), " ")
	stateZip := strings.Join(nonEmpty(strings.TrimSpace(v.Get(4)), strings.TrimSpace(v.Get(5))), " ")
	return strings.Join(nonEmpty(street, strings.TrimSpace(v.Get(2)), strings.TrimSpace(v.Get(3)), strings.TrimSpace(v.Get(9)),
		stateZip, strings.TrimSpace(v.Get(6)), strings.TrimSpace(v.Get(8))), ", ")
}

// telecomText formats an XTN: its number (XTN-12, else XTN-5..8 assembled as XTN does, else
// XTN-1), its e-mail address (XTN-4), the kind of equipment when it is not a telephone or the
// Internet, and XTN-9's comment ("+1 555 1234567 (fax)", "555 1234567, jo@example.org (after
// 5 pm)").
func telecomText(v Value) string {
	number := v.Get(12)
	if number == "" && v.Get(7) != "" {
		number = strings.Join(nonEmpty(prefixed("+", v.Get(5)), v.Get(6), v.Get(7), prefixed("X", v.Get(8))), " ")
	}
	if number == "" {
		number = v.Get(1)
	}
	email := v.Get(4)
	if email == number {
		email = ""
	}
	kind := ""
	switch equip := strings.ToUpper(v.Get(3)); telecomSystems[equip] {
	case "", "phone", "email":
	case "other":
		kind = strings.ToLower(equip)
	default:
		kind = telecomSystems[equip]
	}
	return idText(strings.Join(nonEmpty(number, email), ", "), kind, v.Get(9))
}
