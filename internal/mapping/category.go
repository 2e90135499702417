package mapping

import "strings"

// Observation categories (http://terminology.hl7.org/CodeSystem/observation-category). The
// routing fan-out sends vital signs and laboratory results to different owners, so the
// category is decided here, once, from what the message says.
const (
	CategoryVitalSigns = "vital-signs"
	CategoryLaboratory = "laboratory"
	CategoryImaging    = "imaging"
	CategoryProcedure  = "procedure"

	systemObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemLOINC               = "http://loinc.org"
	systemUCUM                = "http://unitsofmeasure.org"
)

// vitalSign is a LOINC code of the FHIR vital-signs set: its US Core profile (empty: only the
// generic us-core-vital-signs applies) and the UCUM codes that profile allows.
type vitalSign struct {
	profile string
	units   []string
}

// vitalSigns are the codes of FHIR's vital-signs profiles (R4 §vitalsigns) and US Core 6.1's.
// Panels (85353-1, 85354-9) carry their values in members or components, which v2 OBX do not.
var vitalSigns = map[string]vitalSign{
	"85353-1": {},
	"9279-1":  {"us-core-respiratory-rate", []string{"/min"}},
	"8867-4":  {"us-core-heart-rate", []string{"/min"}},
	"2708-6":  {"us-core-pulse-oximetry", []string{"%"}},
	"59408-5": {"us-core-pulse-oximetry", []string{"%"}},
	"8310-5":  {"us-core-body-temperature", []string{"Cel", "[degF]"}},
	"8302-2":  {"us-core-body-height", []string{"cm", "[in_i]"}},
	"9843-4":  {"us-core-head-circumference", []string{"cm", "[in_i]"}},
	"29463-7": {"us-core-body-weight", []string{"kg", "g", "[lb_av]"}},
	"39156-5": {"us-core-bmi", []string{"kg/m2"}},
	"85354-9": {},
	"8480-6":  {},
	"8462-4":  {},
	"3150-0":  {},
	"3151-8":  {},
	"59576-9": {},
	"8289-1":  {},
	"77606-2": {},
}

// v2 table 0074 (diagnostic service section id) by the observation category it implies.
var serviceSections = map[string]string{
	"BG": CategoryLaboratory, "BLB": CategoryLaboratory, "CG": CategoryLaboratory, "CH": CategoryLaboratory,
	"CP": CategoryLaboratory, "GE": CategoryLaboratory, "HM": CategoryLaboratory, "IMM": CategoryLaboratory,
	"LAB": CategoryLaboratory, "MB": CategoryLaboratory, "MCB": CategoryLaboratory, "MYC": CategoryLaboratory,
	"OSL": CategoryLaboratory, "PAR": CategoryLaboratory, "PAT": CategoryLaboratory, "SP": CategoryLaboratory,
	"SR": CategoryLaboratory, "TX": CategoryLaboratory, "URN": CategoryLaboratory, "VR": CategoryLaboratory,
	"CT": CategoryImaging, "CUS": CategoryImaging, "NMR": CategoryImaging, "NMS": CategoryImaging,
	"OUS": CategoryImaging, "RAD": CategoryImaging, "RUS": CategoryImaging, "RX": CategoryImaging,
	"VUS": CategoryImaging, "XRC": CategoryImaging, "US": CategoryImaging, // US: not in 0074, but senders write it for ultrasound
	"CTH": CategoryProcedure, "EC": CategoryProcedure, "EN": CategoryProcedure, "PF": CategoryProcedure,
}

// ObservationCategory returns the observation-category code of an OBX result: vital-signs
// when its code (OBX-3) has a LOINC coding of the FHIR vital-signs set, whatever the order
// says; else what the order's diagnostic service section (OBR-24, v2 table 0074) implies
// (laboratory for LAB, CH, HM, MB…, imaging for RAD, CT, CUS…, procedure for EC, PF…); else
// laboratory: ORU and ORM carry results and orders of the laboratory unless OBR-24 says
// otherwise, which is how the V2-to-FHIR IG scopes them. Never empty.
func ObservationCategory(code CodeableConcept, obr24 string) string {
	if _, ok := vitalSignOf(code); ok {
		return CategoryVitalSigns
	}
	if c, ok := serviceSections[strings.ToUpper(strings.TrimSpace(obr24))]; ok {
		return c
	}
	return CategoryLaboratory
}

func vitalSignOf(code CodeableConcept) (vitalSign, bool) {
	for _, c := range code.Coding {
		if c.System == systemLOINC {
			if vs, ok := vitalSigns[c.Code]; ok {
				return vs, true
			}
		}
	}
	return vitalSign{}, false
}

var categoryDisplays = map[string]string{
	CategoryVitalSigns: "Vital Signs", CategoryLaboratory: "Laboratory", CategoryImaging: "Imaging", CategoryProcedure: "Procedure",
}

func categoryConcept(cat string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: systemObservationCategory, Code: cat, Display: categoryDisplays[cat]}}}
}

// observationProfiles returns the US Core profiles an Observation conforms to. Vital signs
// need a UCUM valueQuantity (or a data-absent-reason): the specific profile (us-core-heart-rate…)
// when the unit is one it allows, the generic one otherwise; a vital sign whose value is not
// a UCUM quantity gets none rather than a false claim. IPS Observation-results-laboratory-uv-ips
// is not declared: it requires a performer, which most v2 results do not name.
func observationProfiles(cat string, o *observation) []string {
	switch cat {
	case CategoryLaboratory:
		return labProfiles[:1:1] // shared, read-only: an append copies
	case CategoryImaging, CategoryProcedure:
		return clinicalResultProfiles[:1:1]
	case CategoryVitalSigns:
		vs, _ := vitalSignOf(o.Code)
		q := o.ValueQuantity
		switch {
		case q == nil && o.DataAbsentReason != nil && vs.profile != "":
			return []string{ProfileUSCoreVitalSigns, usCore(vs.profile)}
		case q == nil && o.DataAbsentReason != nil:
			return []string{ProfileUSCoreVitalSigns}
		case q == nil || q.System != systemUCUM || q.Code == "" || q.Comparator != "":
			return nil
		}
		for _, u := range vs.units {
			if q.Code == u {
				return []string{ProfileUSCoreVitalSigns, usCore(vs.profile)}
			}
		}
		return []string{ProfileUSCoreVitalSigns}
	}
	return nil
}

var (
	labProfiles            = []string{ProfileUSCoreObservationLab}
	clinicalResultProfiles = []string{ProfileUSCoreClinicalResult}
)

func usCore(name string) string { return "http://hl7.org/fhir/us/core/StructureDefinition/" + name }
