package mapping

import "strings"

// codingSystems maps v2 table 0396 (name of coding system) to FHIR system URIs. Names not
// here become urn:id:<name> (local, unambiguous within a sender) — never a guessed URI.
var codingSystems = map[string]string{
	"LN":      "http://loinc.org",
	"SCT":     "http://snomed.info/sct",
	"SNM":     "http://snomed.info/sct",
	"I10":     "http://hl7.org/fhir/sid/icd-10-cm",
	"I10C":    "http://hl7.org/fhir/sid/icd-10-cm",
	"ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
	"I9":      "http://hl7.org/fhir/sid/icd-9-cm",
	"I9C":     "http://hl7.org/fhir/sid/icd-9-cm",
	"CVX":     "http://hl7.org/fhir/sid/cvx",
	"MVX":     "http://hl7.org/fhir/sid/mvx",
	"NDC":     "http://hl7.org/fhir/sid/ndc",
	"UCUM":    "http://unitsofmeasure.org",
	"RXNORM":  "http://www.nlm.nih.gov/research/umls/rxnorm",
	"RXN":     "http://www.nlm.nih.gov/research/umls/rxnorm",
	"CPT":     "http://www.ama-assn.org/go/cpt",
	"C4":      "http://www.ama-assn.org/go/cpt",
	"CDCREC":  "urn:oid:2.16.840.1.113883.6.238",
	"ISO3166": "urn:iso:std:iso:3166",
	"NUCC":    "http://nucc.org/provider-taxonomy",
	"NPI":     "http://hl7.org/fhir/sid/us-npi",
}

// CodingSystem maps a table 0396 coding system name to a FHIR system URI: HL7nnnn (and
// HL7nnnn with a suffix) → the v2-nnnn code system, known names per codingSystems, a URI or
// OID as itself, else urn:id:<name>. "" for "".
func CodingSystem(name string) string {
	if name == "" {
		return ""
	}
	up := strings.ToUpper(name)
	if s, ok := codingSystems[up]; ok {
		return s
	}
	if len(up) >= 7 && strings.HasPrefix(up, "HL7") && isDigits(up[3:7]) {
		return "http://terminology.hl7.org/CodeSystem/v2-" + up[3:7]
	}
	switch {
	case strings.Contains(name, "://") || strings.HasPrefix(name, "urn:"):
		return name
	case isOID(name):
		return "urn:oid:" + name
	}
	return urnID(name)
}

// CWE maps a CWE, CE, CNE or CF (the triplets share their layout) to a CodeableConcept per
// the IG's CWE[CodeableConcept]: triplets 1-3, 4-6 and 10-12 are codings (versions 7, 8,
// 13), CWE-9 is text. A code with no coding system gets no system, not a guessed one. ok is
// false when nothing is there; a text-only concept (no codes) is kept as text.
func CWE(v Value) (cc CodeableConcept, ok bool) {
	for _, t := range [...]struct{ code, display, system, version int }{{1, 2, 3, 7}, {4, 5, 6, 8}, {10, 11, 12, 13}} {
		code := v.Get(t.code)
		if code == "" {
			continue
		}
		cc.Coding = append(cc.Coding, Coding{
			System: CodingSystem(v.Get(t.system)), Version: v.Get(t.version), Code: code, Display: v.Get(t.display),
		})
	}
	cc.Text = v.Get(9)
	if len(cc.Coding) == 0 && cc.Text == "" {
		cc.Text = v.Get(2) // text-only CWE: "^Penicillin allergy"
	}
	return cc, len(cc.Coding) > 0 || cc.Text != ""
}

// Code returns CWE-1 (or an ID/IS value) upper-cased, for table lookups.
func Code(v Value) string { return strings.ToUpper(strings.TrimSpace(v.Get(1))) }

// mappedConcept returns a CodeableConcept whose first coding is the ConceptMap target of the
// v2 code and whose second is the v2 code itself in its v2 table, so nothing is lost.
func mappedConcept(v Value, table string, target Coding, mapped bool) *CodeableConcept {
	code := v.Get(1)
	if code == "" {
		return nil
	}
	cc := &CodeableConcept{Text: v.Get(9)}
	if mapped {
		cc.Coding = append(cc.Coding, target)
	}
	src := Coding{System: "http://terminology.hl7.org/CodeSystem/v2-" + table, Code: code, Display: v.Get(2)}
	if sys := v.Get(3); sys != "" && !strings.EqualFold(sys, "HL7"+table) {
		src.System = CodingSystem(sys)
	}
	if !mapped || src.System != target.System || src.Code != target.Code {
		cc.Coding = append(cc.Coding, src)
	}
	return cc
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isOID(s string) bool {
	if len(s) < 3 || !strings.Contains(s, ".") {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if !isDigits(p) {
			return false
		}
	}
	return true
}
