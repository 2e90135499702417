package mapping

import (
	"slices"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// US Core race and ethnicity extensions, from PID-10 and PID-22: every repetition, every
// coding triplet of it (CWE-1..3, the alternate 4..6 and the second alternate 10..12).
const (
	ExtUSCoreRace      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	ExtUSCoreEthnicity = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	systemCDCREC       = "urn:oid:2.16.840.1.113883.6.238"
	systemNullFlavor   = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
)

// raceField describes one of the two fields: its v2 table, its OMB categories (CDC code →
// CDC display), the range of CDC codes (their four-digit stem) that are detailed values of
// the field rather than of the other one, and the legacy single-letter values of its table.
type raceField struct {
	field      int
	url, table string
	omb        map[string]string
	lo, hi     int // CDC stems of the field's hierarchy
	also       int // one more stem outside [lo, hi] (2500-7 Other Race)
	letters    map[string]string
}

var (
	raceSpec = raceField{
		field: 10, url: ExtUSCoreRace, table: "HL70005",
		omb: map[string]string{
			"1002-5": "American Indian or Alaska Native", "2028-9": "Asian",
			"2054-5": "Black or African American", "2076-8": "Native Hawaiian or Other Pacific Islander",
			"2106-3": "White",
		},
		lo: 1000, hi: 2131, also: 2500,
		// Table 0005 as pre-2.4 senders and many current ones still write it. "H" (Hispanic)
		// and "O" (other) are not OMB race categories: they are kept as text (noted).
		letters: map[string]string{"W": "2106-3", "B": "2054-5", "A": "2028-9", "I": "1002-5", "P": "2076-8"},
	}
	ethnicitySpec = raceField{
		field: 22, url: ExtUSCoreEthnicity, table: "HL70189",
		omb: map[string]string{"2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino"},
		lo:  2133, hi: 2186, also: -1,
		letters: map[string]string{"H": "2135-2", "N": "2186-5"},
	}
	// nullFlavors are the "unknown" and "asked but declined" values US Core admits as an OMB
	// category of either field.
	nullFlavors = map[string]Coding{
		"U":    {System: systemNullFlavor, Code: "UNK", Display: "Unknown"},
		"UNK":  {System: systemNullFlavor, Code: "UNK", Display: "Unknown"},
		"ASKU": {System: systemNullFlavor, Code: "ASKU", Display: "Asked but no answer"},
	}
)

func patientExtensions(b *Builder, pid *hl7v2.Segment) []Extension {
	var exts []Extension
	if mmn, ok := XPN(FieldValue(pid, 6)); ok {
		exts = append(exts, Extension{URL: "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", ValueString: mmn.Family})
	}
	for _, spec := range [...]*raceField{&raceSpec, &ethnicitySpec} {
		if e, ok := raceExtension(b, pid, spec); ok {
			exts = append(exts, e)
		}
	}
	return exts
}

// raceExtension builds a US Core race or ethnicity extension from every repetition of the
// field: a CDC code of an OMB category (or a table letter that stands for one, or
// unknown/declined) is an ombCategory, another CDC code of the field's hierarchy a
// detailed value, and the required text joins what the sender wrote (CWE-9, else the
// displays, else the category names). A repetition with no code we can place keeps only
// its text, with a note: a local code is never guessed into a CDC one.
func raceExtension(b *Builder, pid *hl7v2.Segment, spec *raceField) (Extension, bool) {
	var omb, detailed []Extension
	var texts []string
	for v := range Repetitions(pid, spec.field) {
		coding, isOMB, ok := Coding{}, false, false
		var display, written string
		for _, t := range [...][3]int{{1, 2, 3}, {4, 5, 6}, {10, 11, 12}} {
			code, disp := strings.TrimSpace(v.Get(t[0])), strings.TrimSpace(v.Get(t[1]))
			display = firstNonEmpty(display, disp)
			if code == "" {
				continue
			}
			sys := v.Get(t[2])
			if written == "" {
				written = code
				if sys != "" {
					written += " (" + sys + ")"
				}
			}
			if !ok {
				coding, isOMB, ok = spec.classify(code, disp, sys)
			}
		}
		text := firstNonEmpty(strings.TrimSpace(v.Get(9)), display)
		if !ok {
			if text == "" && written == "" {
				continue
			}
			kind := spec.url[strings.LastIndexByte(spec.url, '-')+1:]
			b.Notef("PID-%d: %q is no OMB category or CDC Race & Ethnicity code of %s; kept as %s text", spec.field, firstNonEmpty(written, text), kind, kind)
			texts = append(texts, firstNonEmpty(text, v.Get(1)))
			continue
		}
		texts = append(texts, firstNonEmpty(text, coding.Display))
		if hasCoding(omb, coding) || hasCoding(detailed, coding) {
			continue
		}
		c := coding
		if isOMB {
			omb = append(omb, Extension{URL: "ombCategory", ValueCoding: &c})
		} else {
			detailed = append(detailed, Extension{URL: "detailed", ValueCoding: &c})
		}
	}
	if len(texts) == 0 {
		return Extension{}, false
	}
	ext := Extension{URL: spec.url, Extension: append(omb, detailed...)}
	ext.Extension = append(ext.Extension, Extension{URL: "text", ValueString: strings.Join(dedupe(texts), ", ")})
	return ext, true
}

// classify places one coding triplet: a CDC code of the field's hierarchy (whatever system
// the sender named: the code's shape and range are unambiguous), a letter of the field's
// table (only when the system is that table or unnamed), or unknown/declined.
func (spec *raceField) classify(code, display, system string) (c Coding, omb, ok bool) {
	sys := strings.ToUpper(system)
	if isCDCCode(code) {
		if name, isOMB := spec.omb[code]; isOMB {
			return Coding{System: systemCDCREC, Code: code, Display: name}, true, true
		}
		if stem := atoi4(code); stem >= spec.lo && stem <= spec.hi || stem == spec.also {
			return Coding{System: systemCDCREC, Code: code, Display: display}, false, true
		}
		return Coding{}, false, false
	}
	up := strings.ToUpper(code)
	if nf, isNF := nullFlavors[up]; isNF && (sys == "" || sys == spec.table || sys == "NULLFL" || strings.HasSuffix(sys, "NULLFLAVOR")) {
		return nf, true, true
	}
	if sys != "" && sys != spec.table {
		return Coding{}, false, false
	}
	if cdc, isLetter := spec.letters[up]; isLetter {
		return Coding{System: systemCDCREC, Code: cdc, Display: spec.omb[cdc]}, true, true
	}
	return Coding{}, false, false
}

func hasCoding(exts []Extension, c Coding) bool {
	for _, e := range exts {
		if e.ValueCoding.System == c.System && e.ValueCoding.Code == c.Code {
			return true
		}
	}
	return false
}

// isCDCCode reports the CDC Race & Ethnicity code shape, "nnnn-n".
func isCDCCode(s string) bool {
	return len(s) == 6 && s[4] == '-' && isDigits(s[:4]) && isDigits(s[5:])
}

// atoi4 reads the four-digit stem of a CDC code.
func atoi4(s string) int {
	return int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
}

func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
