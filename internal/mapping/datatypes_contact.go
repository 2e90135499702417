package mapping

import "strings"

// v2 table 0200 (name type) → FHIR name-use: the IG ConceptMap NameType. Codes it leaves
// unmapped (A assigned/alias, B birth, C adopted, …) get no use rather than a guess.
var nameUses = map[string]string{
	"L": "official", "R": "official", "D": "usual", "M": "maiden", "N": "nickname",
	"MSK": "anonymous", "BAD": "old", "NAV": "temp", "TEMP": "temp",
}

// XPN maps an extended person name (XPN[HumanName]): family XPN-1.1, given XPN-2 and XPN-3,
// suffix XPN-4 and XPN-6 (degree), prefix XPN-5, use from XPN-7, period XPN-10 or XPN-12/13.
// ok is false when there is neither a family nor a given name.
func XPN(v Value) (n HumanName, ok bool) {
	return personName(v, 0)
}

// personName reads an XPN-shaped name starting at part off+1 (XCN's name starts at XCN-2).
func personName(v Value, off int) (n HumanName, ok bool) {
	n.Family = v.Sub(off + 1).Get(1)
	n.Given = nonEmpty(v.Get(off+2), v.Get(off+3))
	n.Suffix = nonEmpty(v.Get(off+4), v.Get(off+6))
	n.Prefix = nonEmpty(v.Get(off + 5))
	if off == 0 {
		n.Use = nameUses[v.Get(7)]
		start, end := v.Get(12), v.Get(13)
		if start == "" && end == "" {
			start, end = v.Sub(10).Get(1), v.Sub(10).Get(2)
		}
		n.Period = period(DateTime(start, nil), DateTime(end, nil))
	}
	return n, n.Family != "" || len(n.Given) > 0
}

// v2 table 0190 (address type) → address-use and address-type: the IG ConceptMaps
// AddressType[Use] and AddressType[Type].
var (
	addressUses  = map[string]string{"BA": "old", "BI": "billing", "C": "temp", "B": "work", "H": "home", "O": "work"}
	addressTypes = map[string]string{"M": "postal", "SH": "postal"}
)

// XAD maps an extended address (XAD[Address]): lines XAD-1.1 and XAD-2, city XAD-3, state
// XAD-4, postal code XAD-5, country XAD-6, use/type XAD-7, district XAD-9, period XAD-12 or
// XAD-13/14. ok is false when every part is empty.
func XAD(v Value) (a Address, ok bool) {
	// The IG's XAD[Address] and SAD[Address]: line = SAD-1 street, SAD-2 street name, SAD-3
	// dwelling number, XAD-2 other designation, XAD-19 addressee, in that order.
	sad := v.Sub(1)
	a.Line = nonEmpty(strings.TrimSpace(sad.Get(1)), strings.TrimSpace(sad.Get(2)), strings.TrimSpace(sad.Get(3)),
		strings.TrimSpace(v.Get(2)), strings.TrimSpace(v.Get(19)))
	a.City = strings.TrimSpace(v.Get(3))
	a.State = strings.TrimSpace(v.Get(4))
	a.PostalCode = strings.TrimSpace(v.Get(5))
	a.Country = strings.TrimSpace(v.Get(6))
	a.District = strings.TrimSpace(v.Get(9))
	if len(a.Line) == 0 && a.City == "" && a.State == "" && a.PostalCode == "" && a.Country == "" && a.District == "" {
		return Address{}, false
	}
	kind := v.Get(7)
	a.Use, a.Type = addressUses[kind], addressTypes[kind]
	start, end := v.Get(13), v.Get(14)
	if start == "" && end == "" {
		start, end = v.Sub(12).Get(1), v.Sub(12).Get(2)
	}
	a.Period = period(DateTime(start, nil), DateTime(end, nil))
	return a, true
}

// v2 tables 0201 (use) and 0202 (equipment) → contact-point-use and -system: the IG
// ConceptMaps TelecommunicationUseCode and TelecommunicationEquipmentType. CP (cell phone)
// is system phone with use mobile, as the IG's map sends it to contact-point-use.
var (
	telecomUses    = map[string]string{"PRN": "home", "WPN": "work", "PRS": "mobile"}
	telecomSystems = map[string]string{
		"PH": "phone", "FX": "fax", "MD": "other", "CP": "phone", "SAT": "other", "BP": "pager",
		"INTERNET": "email", "X.400": "email", "TDD": "other", "TTY": "other",
	}
)

// XTN maps an extended telecommunication number (XTN[ContactPoint]). The value is XTN-4 for
// e-mail, else XTN-12 (unformatted), else assembled from XTN-5..8 as the IG does, else XTN-1
// (the pre-2.3 free text number). use comes from XTN-2 or, when that is empty, defaultUse
// (PID-13 home, PID-14 work). ok is false without a value.
func XTN(v Value, defaultUse string) (c ContactPoint, ok bool) {
	equip := strings.ToUpper(v.Get(3))
	c.System = telecomSystems[equip]
	if equip == "" && v.Get(4) != "" {
		c.System = "email"
	}
	switch {
	case c.System == "email":
		c.Value = v.Get(4)
	case v.Get(12) != "":
		c.Value = v.Get(12)
	case v.Get(7) != "":
		c.Value = strings.Join(nonEmpty(prefixed("+", v.Get(5)), v.Get(6), v.Get(7), prefixed("X", v.Get(8))), " ")
	default:
		c.Value = v.Get(1)
	}
	if c.Value == "" {
		return ContactPoint{}, false
	}
	if c.System == "" {
		// ContactPoint.system is required when value is present (cpt-2): a v2.2-style number with
		// no equipment type is a phone number by the field that carries it.
		c.System = "phone"
		if strings.Contains(c.Value, "@") {
			c.System = "email"
		}
	}
	c.Use = telecomUses[strings.ToUpper(v.Get(2))]
	if equip == "CP" {
		c.Use = "mobile"
	}
	if c.Use == "" && v.Get(2) == "" {
		c.Use = defaultUse
	}
	c.Period = period(DateTime(v.Get(13), nil), DateTime(v.Get(14), nil))
	return c, true
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
