package mapping

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

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
// quantity. units apply to every number. ok is false when the numbers are not numbers or the
// comparator is one FHIR has no code for ("<>").
func SN(v Value, units Value) (SNResult, bool) {
	comp, n1, sep, n2 := v.Get(1), v.Get(2), v.Get(3), v.Get(4)
	fhirComp, known := snComparators[comp]
	if !known {
		return SNResult{}, false
	}
	q := func(s string) (*Quantity, bool) { return NM(s, units) }
	switch sep {
	case "":
		a, ok := q(n1)
		if !ok {
			return SNResult{}, false
		}
		a.Comparator = fhirComp
		return SNResult{Quantity: a}, true
	case "-":
		a, okA := q(n1)
		b, okB := q(n2)
		if !okA || !okB || comp != "" {
			return SNResult{}, false
		}
		return SNResult{Range: &Range{Low: a, High: b}}, true
	case ":", "/":
		a, okA := NM(n1, Value{kind: kindLeaf})
		b, okB := NM(n2, Value{kind: kindLeaf})
		if !okA || !okB || comp != "" {
			return SNResult{}, false
		}
		return SNResult{Ratio: &Ratio{Numerator: a, Denominator: b}}, true
	}
	return SNResult{}, false
}

// ED maps encapsulated data (ED-2 type, ED-3 subtype, ED-4 encoding, ED-5 data) to an
// Attachment: Base64 is kept, Hex and A (ASCII text) are re-encoded to Base64. ok is false
// when there is no data or it cannot be decoded.
func ED(v Value) (Attachment, bool) {
	data := v.Get(5)
	if data == "" {
		return Attachment{}, false
	}
	a := Attachment{ContentType: mediaType(v.Get(2), v.Get(3))}
	switch strings.ToUpper(v.Get(4)) {
	case "BASE64":
		if _, err := base64.StdEncoding.DecodeString(data); err != nil {
			return Attachment{}, false
		}
		a.Data = data
	case "HEX":
		raw, err := hex.DecodeString(data)
		if err != nil {
			return Attachment{}, false
		}
		a.Data = base64.StdEncoding.EncodeToString(raw)
	default:
		a.Data = base64.StdEncoding.EncodeToString([]byte(data))
	}
	return a, true
}

// mediaType builds a MIME type from ED-2 (type of data, table 0191) and ED-3 (subtype).
func mediaType(typ, sub string) string {
	switch {
	case strings.Contains(sub, "/"):
		return strings.ToLower(sub)
	case sub != "" && typ != "":
		// Table 0191 codes, and the IANA top-level names senders write instead (ED-2 "application").
		major := map[string]string{"AP": "application", "IM": "image", "TEXT": "text", "TX": "text", "AU": "audio", "MULTIPART": "multipart",
			"APPLICATION": "application", "IMAGE": "image", "AUDIO": "audio", "VIDEO": "video", "MODEL": "model"}[strings.ToUpper(typ)]
		if major != "" {
			return major + "/" + strings.ToLower(sub)
		}
	case strings.EqualFold(typ, "TX") || strings.EqualFold(typ, "TEXT"):
		return "text/plain"
	}
	return ""
}
