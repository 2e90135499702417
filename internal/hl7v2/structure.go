package hl7v2

import "strings"

// Structure returns the message structure ID (HL7 table 0354), such as
// "ADT_A01" for an ADT^A04: MSH-9.3 when the sender filled it in, else the
// structure StructureFor derives from MSH-9.1, MSH-9.2 and MSH-12. MSH-9.3
// is returned as written even when it is not a real structure (some
// senders put the event there, "ADT_A04"); Groups copes with that.
func (m *Message) Structure() string {
	t := m.Type()
	if t.Structure != "" {
		return t.Structure
	}
	return StructureFor(t.Code, t.Trigger, m.Version())
}

// StructureFor returns the message structure HL7 assigns to a message code
// and trigger event in the given version (MSH-12, e.g. "2.5.1"), or "" when
// the pair is not in the table. An empty or unreadable version is read as
// the newest. Any ACK is structure "ACK".
//
// The table covers ADT completely and the order, result, scheduling,
// document, immunisation, financial and pharmacy events this service
// meets. Where versions disagree it follows each version:
//
//   - ADT^A12 is ADT_A09 before v2.5 and ADT_A12 from v2.5 on;
//   - ADT^A44 is ADT_A43, and A47/A49 are ADT_A30, before v2.7; from
//     v2.7 they are ADT_A44, ADT_A44 and ADT_A43;
//   - ADT^A55 is ADT_A52 before v2.6 and ADT_A54 from v2.6 on.
//
// ADT^A39–A42 are ADT_A39 in every version that has table 0354 (v2.3.1
// on). Toolkits that predate it named the A40 structure ADT_A40 and
// senders still write that in MSH-9.3; Groups treats it as ADT_A39.
func StructureFor(code, trigger, version string) string {
	code, trigger = strings.ToUpper(strings.TrimSpace(code)), strings.ToUpper(strings.TrimSpace(trigger))
	if code == "ACK" {
		return "ACK"
	}
	key := code + "^" + trigger
	if v, ok := versionedStructures[key]; ok {
		if versionAtLeast(version, v.major, v.minor) {
			return v.since
		}
		return v.before
	}
	return eventStructures[key]
}

// versionedStructure is a table entry that changed between versions.
type versionedStructure struct {
	major, minor  int    // the version the change happened in
	before, since string // the structure before it, and from it on
}

var versionedStructures = map[string]versionedStructure{
	"ADT^A12": {2, 5, "ADT_A09", "ADT_A12"},
	"ADT^A44": {2, 7, "ADT_A43", "ADT_A44"},
	"ADT^A47": {2, 7, "ADT_A30", "ADT_A44"},
	"ADT^A49": {2, 7, "ADT_A30", "ADT_A43"},
	"ADT^A55": {2, 6, "ADT_A52", "ADT_A54"},
}

// eventStructures is table 0354 read backwards: event → structure (HL7
// v2.5.1, checked against v2.3.1 to v2.8 for the entries here).
var eventStructures = func() map[string]string {
	m := make(map[string]string)
	add := func(code, structure string, triggers ...string) {
		for _, t := range triggers {
			m[code+"^"+t] = structure
		}
	}
	add("ADT", "ADT_A01", "A01", "A04", "A08", "A13")
	add("ADT", "ADT_A02", "A02")
	add("ADT", "ADT_A03", "A03")
	add("ADT", "ADT_A05", "A05", "A14", "A28", "A31")
	add("ADT", "ADT_A06", "A06", "A07")
	add("ADT", "ADT_A09", "A09", "A10", "A11")
	add("ADT", "ADT_A15", "A15")
	add("ADT", "ADT_A16", "A16")
	add("ADT", "ADT_A17", "A17")
	add("ADT", "ADT_A18", "A18")
	add("ADT", "ADT_A20", "A20")
	add("ADT", "ADT_A21", "A21", "A22", "A23", "A25", "A26", "A27", "A29", "A32", "A33")
	add("ADT", "ADT_A24", "A24")
	add("ADT", "ADT_A30", "A30", "A34", "A35", "A36", "A46", "A48")
	add("ADT", "ADT_A37", "A37")
	add("ADT", "ADT_A38", "A38")
	add("ADT", "ADT_A39", "A39", "A40", "A41", "A42")
	add("ADT", "ADT_A43", "A43")
	add("ADT", "ADT_A45", "A45")
	add("ADT", "ADT_A50", "A50", "A51")
	add("ADT", "ADT_A52", "A52", "A53")
	add("ADT", "ADT_A54", "A54")
	add("ADT", "ADT_A60", "A60")
	add("ADT", "ADT_A61", "A61", "A62")
	add("ORU", "ORU_R01", "R01", "R40")
	add("ORU", "ORU_R30", "R30", "R31", "R32")
	add("ORM", "ORM_O01", "O01")
	add("OML", "OML_O21", "O21")
	add("OML", "OML_O33", "O33")
	add("OML", "OML_O35", "O35")
	add("OUL", "OUL_R22", "R22")
	add("OUL", "OUL_R23", "R23")
	add("OUL", "OUL_R24", "R24")
	add("VXU", "VXU_V04", "V04")
	add("SIU", "SIU_S12", "S12", "S13", "S14", "S15", "S16", "S17", "S18", "S19", "S20", "S21", "S22", "S23", "S24", "S26", "S27")
	add("MDM", "MDM_T01", "T01", "T03", "T05", "T07", "T09", "T11")
	add("MDM", "MDM_T02", "T02", "T04", "T06", "T08", "T10")
	add("DFT", "DFT_P03", "P03")
	add("DFT", "DFT_P11", "P11")
	add("BAR", "BAR_P01", "P01")
	add("BAR", "BAR_P02", "P02")
	add("BAR", "BAR_P05", "P05")
	add("BAR", "BAR_P06", "P06")
	add("BAR", "BAR_P10", "P10")
	add("BAR", "BAR_P12", "P12")
	add("RDE", "RDE_O11", "O11", "O25")
	add("RDS", "RDS_O13", "O13")
	add("RAS", "RAS_O17", "O17")
	add("RGV", "RGV_O15", "O15")
	return m
}()
