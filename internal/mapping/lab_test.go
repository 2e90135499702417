package mapping

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
)

func loinc(code string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: systemLOINC, Code: code}}}
}

func TestObservationCategory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  CodeableConcept
		obr24 string
		want  string
	}{
		{"heart rate in a lab order", loinc("8867-4"), "HM", CategoryVitalSigns},
		{"body weight", loinc("29463-7"), "", CategoryVitalSigns},
		{"BP panel", loinc("85354-9"), "", CategoryVitalSigns},
		{"systolic alone", loinc("8480-6"), "", CategoryVitalSigns},
		{"vital-sign code in a local system is not LOINC", CodeableConcept{Coding: []Coding{{System: "urn:id:L", Code: "8867-4"}}}, "", CategoryLaboratory},
		{"LOINC as the alternate coding", CodeableConcept{Coding: []Coding{{System: "urn:id:L", Code: "HR"}, {System: systemLOINC, Code: "8867-4"}}}, "", CategoryVitalSigns},
		{"hematology", loinc("718-7"), "HM", CategoryLaboratory},
		{"chemistry lower case", loinc("2951-2"), "ch", CategoryLaboratory},
		{"microbiology", loinc("625-4"), "MB", CategoryLaboratory},
		{"CT", loinc("24725-4"), "CT", CategoryImaging},
		{"cardiac ultrasound", CodeableConcept{}, "CUS", CategoryImaging},
		{"ECG", CodeableConcept{}, "EC", CategoryProcedure},
		{"nothing said: laboratory", loinc("2951-2"), "", CategoryLaboratory},
		{"unknown section: laboratory", loinc("2951-2"), "ZZ", CategoryLaboratory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ObservationCategory(tc.code, tc.obr24))
		})
	}
}

func TestReferenceRange(t *testing.T) {
	units := Leaf("mg/dL")
	for _, tc := range []struct {
		in        string
		low, high string // "" when absent
	}{
		{"70-105", "70", "105"},
		{"3.8-11.0", "3.8", "11.0"},
		{"4.3 to 6.2", "4.3", "6.2"},
		{"-5 - 5", "-5", "5"},
		{"<130", "", "130"},
		{"<=0.5", "", "0.5"},
		{">60", "60", ""},
		{"<130 optimal", "", ""},
		{"negative", "", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			rr, ok := parseReferenceRange(tc.in, units)
			require.True(t, ok)
			require.Equal(t, tc.in, rr.Text, "the text is always kept")
			got := func(q *Quantity) string {
				if q == nil {
					return ""
				}
				require.Equal(t, systemUCUM, q.System)
				return string(q.Value)
			}
			require.Equal(t, tc.low, got(rr.Low))
			require.Equal(t, tc.high, got(rr.High))
		})
	}
	_, ok := parseReferenceRange("  ", units)
	require.False(t, ok)
}

func TestTimeOfDay(t *testing.T) {
	for in, want := range map[string]string{
		"12": "12:00:00", "1230": "12:30:00", "123005": "12:30:05", "123005.25": "12:30:05.25",
		"1230+0200": "12:30:00", "2460": "", "1": "", "12a0": "", "1230.5": "",
	} {
		got, ok := timeOfDay(in)
		require.Equal(t, want, got, in)
		require.Equal(t, want != "", ok, in)
	}
}

func TestInterpretation(t *testing.T) {
	for in, want := range map[string]Coding{
		"H":                  {System: systemV3Interpretation, Code: "H", Display: "High"},
		"hh":                 {System: systemV3Interpretation, Code: "HH", Display: "Critical high"},
		"A^Abnormal^HL70078": {System: systemV3Interpretation, Code: "A", Display: "Abnormal"},
		"NS^Non-susceptible": {System: systemV3Interpretation, Code: "NS", Display: "Non-susceptible"},
		"Neg":                {System: systemV3Interpretation, Code: "NEG", Display: "Negative"},
		"XYZ^Odd":            {System: "http://terminology.hl7.org/CodeSystem/v2-0078", Code: "XYZ", Display: "Odd"},
	} {
		m, err := hl7v2.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rOBX|1|NM|X||1|||" + in + "\r"))
		require.NoError(t, err)
		cc, ok := interpretation(FieldValue(m.Segment("OBX", 1), 8))
		require.True(t, ok, in)
		require.Equal(t, want, cc.Coding[0], in)
	}
}

// mapOBX maps an ORU with one OBR and the given OBX lines and returns the Observations.
func mapOBX(t *testing.T, obx ...string) []map[string]any {
	t.Helper()
	raw := "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\r" +
		"OBR|1|PL1^EHR|FL1^LAB|24317-0^CBC^LN|||20240101100000+0000|||||||||||||||20240101110000+0000||HM|F\r"
	for _, s := range obx {
		raw += s + "\r"
	}
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := New(Options{}).Map(m)
	require.NoError(t, err)
	var out []map[string]any
	for _, e := range res.Bundle.Entry {
		var r map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &r))
		if r["resourceType"] == "Observation" {
			out = append(out, r)
		}
	}
	return out
}

func TestObservationValues(t *testing.T) {
	for _, tc := range []struct {
		name, obx string
		key       string // the value[x] (or other) element expected
		want      string // its JSON
	}{
		{"NM with UCUM", "OBX|1|NM|718-7^Hgb^LN||13.4|g/dL^^UCUM|12-16|N|||F", "valueQuantity", `{"value":13.4,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}`},
		{"NM common UCUM unit without system", "OBX|1|NM|718-7^Hgb^LN||7.10|mmol/L|||||F", "valueQuantity", `{"value":7.10,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}`},
		{"NM unit not UCUM", "OBX|1|NM|789-8^RBC^LN||4.02|/pl|||||F", "valueQuantity", `{"value":4.02,"unit":"/pl"}`},
		{"NM ISO units dropped as a system", "OBX|1|NM|8867-4^HR^LN||60|beats/min^^ISO|||||F", "valueQuantity", `{"value":60,"unit":"beats/min"}`},
		{"NM not a number", "OBX|1|NM|718-7^Hgb^LN||see note|g/dL|||||F", "valueString", `"see note"`},
		{"SN comparator", "OBX|1|SN|185-9^Cipro^LN||<=^0.25|ug/mL^ug/mL^UCUM|||||F", "valueQuantity", `{"value":0.25,"comparator":"<=","unit":"ug/mL","system":"http://unitsofmeasure.org","code":"ug/mL"}`},
		{"SN plain", "OBX|1|SN|1554-5^Glucose^LN||^182|mg/dl|||||F", "valueQuantity", `{"value":182,"unit":"mg/dl","system":"http://unitsofmeasure.org","code":"mg/dl"}`},
		{"SN range", "OBX|1|SN|X^X^L||^1^-^5|%|||||F", "valueRange", `{"low":{"value":1,"unit":"%","system":"http://unitsofmeasure.org","code":"%"},"high":{"value":5,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`},
		{"SN ratio", "OBX|1|SN|X^Titer^L||^1^:^128||||||F", "valueRatio", `{"numerator":{"value":1},"denominator":{"value":128}}`},
		{"SN <> is text", "OBX|1|SN|X^X^L||<>^5||||||F", "valueString", `"<> 5"`},
		{"ST", "OBX|1|ST|94309-2^SARS^LN||Detected||||||F", "valueString", `"Detected"`},
		{"TX lines", "OBX|1|TX|X^Report^L||line one~line two||||||F", "valueString", `"line one\nline two"`},
		{"FT", "OBX|1|FT|X^Report^L||free text||||||F", "valueString", `"free text"`},
		{"CWE", "OBX|1|CWE|625-4^Bacteria^LN||27268008^Salmonella^SCT||||||F", "valueCodeableConcept", `{"coding":[{"system":"http://snomed.info/sct","code":"27268008","display":"Salmonella"}]}`},
		{"CE", "OBX|1|CE|625-4^Bacteria^LN||260385009^Negative^SCT||||||F", "valueCodeableConcept", `{"coding":[{"system":"http://snomed.info/sct","code":"260385009","display":"Negative"}]}`},
		{"DT", "OBX|1|DT|11778-8^EDD^LN||20240315||||||F", "valueDateTime", `"2024-03-15"`},
		{"TS with offset", "OBX|1|TS|X^When^L||202403151230-0500||||||F", "valueDateTime", `"2024-03-15T12:30:00-05:00"`},
		{"DTM without offset keeps the date", "OBX|1|DTM|X^When^L||202403151230||||||F", "valueDateTime", `"2024-03-15"`},
		{"TM", "OBX|1|TM|X^When^L||0830||||||F", "valueTime", `"08:30:00"`},
		{"NR", "OBX|1|NR|X^Range^L||2^8||||||F", "valueRange", `{"low":{"value":2},"high":{"value":8}}`},
		{"CX", "OBX|1|CX|X^Id^L||A123^^^HOSP||||||F", "valueString", `"A123 (HOSP)"`},
		{"ED base64", "OBX|1|ED|X^Image^L||^IM^JPEG^Base64^SGVsbG8=||||||F", "extension", `[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/jpeg","data":"SGVsbG8="}}]`},
		{"RP", "OBX|1|RP|X^Image^L||https://img.example/1^^IM^JPEG||||||F", "extension", `[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/jpeg","url":"https://img.example/1"}}]`},
		{"pending without value", "OBX|1|NM|718-7^Hgb^LN||||||||I", "dataAbsentReason", `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"temp-unknown"}]}`},
		{"not asked", "OBX|1|NM|718-7^Hgb^LN||||||||N", "dataAbsentReason", `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"not-asked"}]}`},
		{"corrected", "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||C", "status", `"corrected"`},
		{"deleted", "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||D", "status", `"entered-in-error"`},
		{"no status", "OBX|1|NM|718-7^Hgb^LN||13|g/dL", "status", `"unknown"`},
		{"effective from OBX-14", "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||F|||20240101093000+0100", "effectiveDateTime", `"2024-01-01T09:30:00+01:00"`},
		{"effective from OBR-7", "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||F", "effectiveDateTime", `"2024-01-01T10:00:00+00:00"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := mapOBX(t, tc.obx)
			require.Len(t, obs, 1)
			got, err := json.Marshal(obs[0][tc.key])
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestVitalSignProfiles(t *testing.T) {
	for _, tc := range []struct {
		name, obx string
		want      []string
	}{
		{"heart rate in /min", "OBX|1|NM|8867-4^HR^LN||72|/min^^UCUM|||||F", []string{ProfileUSCoreVitalSigns, usCore("us-core-heart-rate")}},
		{"heart rate in beats/min (not UCUM)", "OBX|1|NM|8867-4^HR^LN||72|beats/min|||||F", nil},
		{"weight in lb", "OBX|1|NM|29463-7^Wt^LN||180|[lb_av]^^UCUM|||||F", []string{ProfileUSCoreVitalSigns, usCore("us-core-body-weight")}},
		{"temperature in a unit the profile refuses", "OBX|1|NM|8310-5^Temp^LN||310|K^^UCUM|||||F", []string{ProfileUSCoreVitalSigns}},
		{"lab result", "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||F", []string{ProfileUSCoreObservationLab}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := mapOBX(t, tc.obx)
			require.Len(t, obs, 1)
			var got []string
			profiles, _ := obs[0]["meta"].(map[string]any)["profile"].([]any)
			for _, p := range profiles {
				got = append(got, p.(string))
			}
			if tc.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// Results are keyed on the order's filler number, the OBX-3 code and OBX-4: a correction of
// the same result (OBX-11 C in a later message) has the same key; two results sharing code
// and sub-id within an order stay apart (keyed with OBX-1).
func TestObservationKey(t *testing.T) {
	first := mapOBX(t, "OBX|1|NM|718-7^Hgb^LN|1|13|g/dL|||||P")
	corrected := mapOBX(t, "OBX|1|NM|718-7^Hgb^LN|1|14|g/dL|||||C")
	require.Equal(t, first[0]["identifier"], corrected[0]["identifier"])
	require.Equal(t, "urn:id:LAB|FL1|http://loinc.org|24317-0|http://loinc.org|718-7|1", first[0]["identifier"].([]any)[0].(map[string]any)["value"])

	two := mapOBX(t, "OBX|1|NM|718-7^Hgb^LN|1|13|g/dL|||||F", "OBX|2|NM|718-7^Hgb^LN|1|14|g/dL|||||F", "OBX|3|NM|718-7^Hgb^LN|2|15|g/dL|||||F")
	require.Len(t, two, 3)
	var keys []string
	for _, o := range two {
		keys = append(keys, o["identifier"].([]any)[0].(map[string]any)["value"].(string))
	}
	require.Equal(t, []string{"urn:id:LAB|FL1|http://loinc.org|24317-0|http://loinc.org|718-7|1", "urn:id:LAB|FL1|http://loinc.org|24317-0|http://loinc.org|718-7|1|#2", "urn:id:LAB|FL1|http://loinc.org|24317-0|http://loinc.org|718-7|2"}, keys)
}
