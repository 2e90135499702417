package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// US Core race and ethnicity extensions, from PID-10 and PID-22 when the sender codes them
// with CDC Race & Ethnicity codes (table 0005/0189 in v2.5+ use them). Other codes give a
// text-only extension when they carry a display, and nothing otherwise: a local "W" is never
// turned into a CDC code.
const (
	ExtUSCoreRace      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	ExtUSCoreEthnicity = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	systemCDCREC       = "urn:oid:2.16.840.1.113883.6.238"
)

// OMB categories and their CDC display names.
var (
	ombRace = map[string]string{
		"1002-5": "American Indian or Alaska Native", "2028-9": "Asian",
		"2054-5": "Black or African American", "2076-8": "Native Hawaiian or Other Pacific Islander",
		"2106-3": "White",
	}
	ombEthnicity = map[string]string{"2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino"}
)

func patientExtensions(pid *hl7v2.Segment) []Extension {
	var exts []Extension
	if mmn, ok := XPN(FieldValue(pid, 6)); ok {
		exts = append(exts, Extension{URL: "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", ValueString: mmn.Family})
	}
	if e, ok := raceExtension(pid, 10, ExtUSCoreRace, ombRace, "HL70005"); ok {
		exts = append(exts, e)
	}
	if e, ok := raceExtension(pid, 22, ExtUSCoreEthnicity, ombEthnicity, "HL70189"); ok {
		exts = append(exts, e)
	}
	return exts
}

// raceExtension builds a US Core race or ethnicity extension from every repetition of field n.
func raceExtension(pid *hl7v2.Segment, n int, url string, omb map[string]string, table string) (Extension, bool) {
	ext := Extension{URL: url}
	var texts []string
	for v := range Repetitions(pid, n) {
		code, display, sys := v.Get(1), v.Get(2), strings.ToUpper(v.Get(3))
		cdc := isCDCCode(code) && (sys == "CDCREC" || sys == table || sys == "")
		switch name, isOMB := omb[code]; {
		case cdc && isOMB:
			ext.Extension = append(ext.Extension, Extension{URL: "ombCategory", ValueCoding: &Coding{System: systemCDCREC, Code: code, Display: name}})
			texts = append(texts, firstNonEmpty(display, name))
		case cdc && sys == "CDCREC" && display != "":
			ext.Extension = append(ext.Extension, Extension{URL: "detailed", ValueCoding: &Coding{System: systemCDCREC, Code: code, Display: display}})
			texts = append(texts, display)
		case display != "":
			texts = append(texts, display)
		}
	}
	if len(texts) == 0 {
		return Extension{}, false
	}
	ext.Extension = append(ext.Extension, Extension{URL: "text", ValueString: strings.Join(texts, ", ")})
	return ext, true
}

// isCDCCode reports the CDC Race & Ethnicity code shape, "nnnn-n".
func isCDCCode(s string) bool {
	return len(s) == 6 && s[4] == '-' && isDigits(s[:4]) && isDigits(s[5:])
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
