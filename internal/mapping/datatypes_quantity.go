package mapping

import "strings"

// Decimal is a FHIR decimal kept as the sender's digits, so "7.10" is not rewritten as 7.1.
// Only values NM accepts are built (see ParseDecimal), so the text is always a JSON number.
type Decimal string

// MarshalJSON writes the decimal as a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d), nil }

// ParseDecimal checks an NM value and normalises what JSON forbids ("+5", ".5", "5.", "007").
// ok is false for anything that is not a number.
func ParseDecimal(s string) (Decimal, bool) {
	s = strings.TrimSpace(s)
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if (intPart == "" && frac == "") || (intPart != "" && !isDigits(intPart)) || (frac != "" && !isDigits(frac)) {
		return "", false
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if hasDot && frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return Decimal(out), true
}

// NM maps a numeric value with optional units (a CWE of UCUM or other codes) to a Quantity.
func NM(value string, units Value) (*Quantity, bool) {
	d, ok := ParseDecimal(value)
	if !ok {
		return nil, false
	}
	q := &Quantity{Value: d}
	setUnits(q, units)
	return q, true
}

// CQ maps a composite quantity with units (CQ-1 number, CQ-2 units as a CWE in subcomponents).
func CQ(v Value) (*Quantity, bool) { return NM(v.Get(1), v.Sub(2)) }

// setUnits fills unit, and system/code when the units are coded (UCUM, or any named system).
func setUnits(q *Quantity, units Value) {
	code, text, sys := units.Get(1), units.Get(2), units.Get(3)
	if code == "" {
		q.Unit = text
		return
	}
	q.Unit = text
	if q.Unit == "" {
		q.Unit = code
	}
	if sys == "" {
		return
	}
	q.System, q.Code = CodingSystem(sys), code
	if strings.EqualFold(sys, "ISO+") || strings.EqualFold(sys, "ANS+") {
		q.System, q.Code = "", "" // ISO+ / ANSI+ units are not UCUM: keep the text only
	}
}

// SNResult is the FHIR shape a structured numeric maps to; exactly one field is set.
type SNResult struct {
	Quantity *Quantity
	Range    *Range
	Ratio    *Ratio
}

var snComparators = map[string]string{"<": "<", ">": ">", "<=": "<=", ">=": ">=", "=": "", "": ""}

// SN maps a structured numeric (SN-1 comparator, SN-2 num1, SN-3 separator, SN-4 num2) per the
// IG's SN[Quantity], SN[Range] and SN[Ratio]: "-" a range, ":" or "/" a ratio, no separator a
// quantity. units (OBX-6) apply to every number, as the IG's OBX-6 rows say. A comparator
// qualifies a quantity or a ratio's numerator (">^64^/^4": more than 64 to 4); a range has
// none. ok is false when the numbers are not numbers or the comparator is one FHIR has no
// code for ("<>").
func SN(v Value, units Value) (SNResult, bool) {
	return snParts(v.Get(1), v.Get(2), v.Get(3), v.Get(4), units)
}

func snParts(comp, n1, sep, n2 string, units Value) (SNResult, bool) {
	fhirComp, known := snComparators[comp]
	if !known {
		return SNResult{}, false
	}
	a, okA := NM(n1, units)
	if !okA {
		return SNResult{}, false
	}
	switch sep {
	case "":
		if n2 != "" {
			return SNResult{}, false
		}
		a.Comparator = fhirComp
		return SNResult{Quantity: a}, true
	case "-":
		b, okB := NM(n2, units)
		if !okB || fhirComp != "" {
			return SNResult{}, false
		}
		return SNResult{Range: &Range{Low: a, High: b}}, true
	case ":", "/":
		b, okB := NM(n2, units)
		if !okB {
			return SNResult{}, false
		}
		a.Comparator = fhirComp
		return SNResult{Ratio: &Ratio{Numerator: a, Denominator: b}}, true
	}
	return SNResult{}, false
}

// ED maps encapsulated data (ED-2 type, ED-3 subtype, ED-4 encoding, ED-5 data) to an
// Attachment (IG ED[Attachment]): the data as Base64 whatever ED-4 says (Base64, Hex or A for
// ASCII text), the contentType from ED-2/ED-3 unless they are missing or the data's magic
// number contradicts them (see decodeED). ok is false when there is no data or it cannot be
// decoded.
func ED(v Value) (Attachment, bool) {
	ed, ok := decodeED(v)
	return ed.Attachment, ok
}
