package mapping

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
)

// mapReport maps an ORU with one OBR (OBR-24 section) and the given OBX lines and returns its
// resources by type, and the notes.
func mapReport(t *testing.T, section string, obx ...string) (map[string][]map[string]any, []string) {
	t.Helper()
	raw := "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\r" +
		"OBR|1|PL1^EHR|FL1^LAB|24317-0^CBC^LN|||20240101100000+0000|||||||||||||||20240101110000+0000||" + section + "|F\r"
	for _, s := range obx {
		raw += s + "\r"
	}
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := New(Options{}).Map(m)
	require.NoError(t, err)
	out := map[string][]map[string]any{}
	for _, e := range res.Bundle.Entry {
		var r map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &r))
		typ := r["resourceType"].(string)
		out[typ] = append(out[typ], r)
	}
	return out, res.Notes
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestObservationValueTypes asserts value[x] for every OBX-2 type the IG or the corpus has,
// and for the values senders get wrong (comparators in NM and ST, units that must survive,
// composite values that must not be cut to their first component).
func TestObservationValueTypes(t *testing.T) {
	ucumMgdl := `"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"`
	for _, tc := range []struct {
		name, obx string
		key       string // the element expected
		want      string // its JSON
	}{
		// Structured numerics keep OBX-6 whatever shape they take (IG OBX-6 rows).
		{"SN comparator keeps units", "OBX|1|SN|2345-7^Glucose^LN||>^17|mg/dL^^UCUM|||||F", "valueQuantity", `{"value":17,"comparator":">",` + ucumMgdl + `}`},
		{"SN ratio with comparator", "OBX|1|SN|412-7^Pip+Tazo^LN||>^64^/^4|ug/mL^ug/mL^UCUM|||||F", "valueRatio",
			`{"numerator":{"value":64,"comparator":">","unit":"ug/mL","system":"http://unitsofmeasure.org","code":"ug/mL"},"denominator":{"value":4,"unit":"ug/mL","system":"http://unitsofmeasure.org","code":"ug/mL"}}`},
		{"SN <> is IG text with units", "OBX|1|SN|X^X^L||<>^5|mg/dL|||||F", "valueString", `"<> 5 mg/dL"`},
		{"SN plus suffix is IG text", "OBX|1|SN|X^Protein^L||^2^+||||||F", "valueString", `"2 +"`},
		{"SN unknown comparator is text of all parts", "OBX|1|SN|X^X^L||ca^5|mg/dL|||||F", "valueString", `"ca 5 mg/dL"`},
		{"ST comparator with units is a quantity", "OBX|1|ST|2345-7^Glucose^LN||>17|mg/dL|||||F", "valueQuantity", `{"value":17,"comparator":">",` + ucumMgdl + `}`},
		{"ST number with units is a quantity", "OBX|1|ST|2345-7^Glucose^LN||5.2|mg/dL|||||F", "valueQuantity", `{"value":5.2,` + ucumMgdl + `}`},
		{"ST range with units", "OBX|1|ST|X^WBC^L||10-20|/[HPF]^^UCUM|||||F", "valueRange",
			`{"low":{"value":10,"unit":"/[HPF]","system":"http://unitsofmeasure.org","code":"/[HPF]"},"high":{"value":20,"unit":"/[HPF]","system":"http://unitsofmeasure.org","code":"/[HPF]"}}`},
		{"ST descending pair is no range", "OBX|1|ST|X^Month^L||2024-01|mo|||||F", "valueString", `"2024-01 mo"`},
		{"ST comparator without units stays text", "OBX|1|ST|X^X^L||>17||||||F", "valueString", `">17"`},
		{"ST text keeps an unescaped separator", "OBX|1|ST|X^X^L||Positive^see note||||||F", "valueString", `"Positive^see note"`},
		{"TX keeps an unescaped ampersand", "OBX|1|TX|X^X^L||Smith & Jones method||||||F", "valueString", `"Smith & Jones method"`},
		{"NM with comparator", "OBX|1|NM|2345-7^Glucose^LN||<0.5|mg/dL|||||F", "valueQuantity", `{"value":0.5,"comparator":"<",` + ucumMgdl + `}`},
		{"NM not a number keeps the number's units", "OBX|1|NM|X^X^L||ca. 5|mg/dL|||||F", "valueString", `"ca. 5 mg/dL"`},
		{"NR with units", "OBX|1|NR|X^Range^L||2^8|mg/dL|||||F", "valueRange", `{"low":{"value":2,` + ucumMgdl + `},"high":{"value":8,` + ucumMgdl + `}}`},
		{"NR open high", "OBX|1|NR|X^Range^L||2^||||||F", "valueRange", `{"low":{"value":2}}`},
		{"CQ units in the value", "OBX|1|CQ|X^Dose^L||5^mg&milligram&UCUM||||||F", "valueQuantity", `{"value":5,"unit":"milligram","system":"http://unitsofmeasure.org","code":"mg"}`},
		{"CQ units in OBX-6", "OBX|1|CQ|X^Dose^L||5|mg^^UCUM|||||F", "valueQuantity", `{"value":5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}`},
		{"MO", "OBX|1|MO|X^Cost^L||12.50^USD||||||F", "valueQuantity", `{"value":12.50,"unit":"USD","system":"urn:iso:std:iso:4217","code":"USD"}`},
		{"VR", "OBX|1|VR|X^Range^L||5^10||||||F", "valueString", `"5-10"`},
		// Composite values R4 has no value[x] for are text of every component.
		{"XAD keeps the whole address", "OBX|1|XAD|56799-0^Address^LN||123 Main St^Apt 4^Atlanta^GA^30303^USA^H^^13121||||||F", "valueString",
			`"123 Main St, Apt 4, Atlanta, 13121, GA 30303, USA"`},
		{"XAD with SAD subcomponents", "OBX|1|XAD|56799-0^Address^LN||1000&Hospital Lane&7^^Ann Arbor^MI^48109||||||F", "valueString", `"1000 Hospital Lane 7, Ann Arbor, MI 48109"`},
		{"XTN structured number", "OBX|1|XTN|X^Phone^L||^WPN^PH^^1^555^1234567^89||||||F", "valueString", `"+1 555 1234567 X89"`},
		{"XTN email", "OBX|1|XTN|X^Email^L||^NET^Internet^jo@example.org||||||F", "valueString", `"jo@example.org"`},
		{"XTN number, e-mail and comment", "OBX|1|XTN|X^Phone^L||^WPN^PH^jo@example.org^^555^1234567^^after 5 pm||||||F", "valueString", `"555 1234567, jo@example.org (after 5 pm)"`},
		{"XTN e-mail without equipment beside a number", "OBX|1|XTN|X^Phone^L||^WPN^^jo@example.org^^555^1234567||||||F", "valueString", `"555 1234567, jo@example.org"`},
		{"XTN pre-2.3 free text", "OBX|1|XTN|X^Phone^L||(404)555-0100X12||||||F", "valueString", `"(404)555-0100X12"`},
		{"XTN fax", "OBX|1|XTN|X^Fax^L||^WPN^FX^^^555^7654321||||||F", "valueString", `"555 7654321 (fax)"`},
		{"XPN", "OBX|1|XPN|X^Name^L||Smith&Sr^John^Q^Jr^Dr^MD||||||F", "valueString", `"Dr John Q Smith Jr MD"`},
		{"XCN", "OBX|1|XCN|X^Provider^L||1234^Smith^John^^^Dr||||||F", "valueString", `"Dr John Smith (1234)"`},
		{"XON", "OBX|1|XON|X^Lab^L||Acme Lab^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0000000||||||F", "valueString", `"Acme Lab (05D0000000)"`},
		{"CX keeps authority and type", "OBX|1|CX|X^Id^L||A123^^^HOSP^MR||||||F", "valueString", `"A123 (MR, HOSP)"`},
		{"EI", "OBX|1|EI|X^Id^L||S1^LAB^1.2.3^ISO||||||F", "valueString", `"S1 (LAB)"`},
		{"HD", "OBX|1|HD|113014^DICOM Study^DCM||1.2.840.317.5947431.51||||||O", "valueString", `"1.2.840.317.5947431.51"`},
		// Arrays.
		{"NA vector is text as written, with units", "OBX|1|NA|X^Wave^L||1^2.5^-3|mV^millivolt^UCUM|||||F", "valueString", `"1^2.5^-3 millivolt"`},
		{"NA rows", "OBX|1|NA|X^Matrix^L||1^2~3^4||||||F", "valueString", `"1^2~3^4"`},
		{"MA", "OBX|1|MA|X^Leads^L||1^2^3~4^5^6||||||F", "valueString", `"1^2^3~4^5^6"`},
		// Attachments that are not documents stay Observations.
		{"ED image declared", "OBX|1|ED|X^Image^L||^IM^JPEG^Base64^/9j/4AAQSkZJRg==||||||F", "extension",
			`[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/jpeg","data":"/9j/4AAQSkZJRg=="}}]`},
		{"ED type missing: sniffed", "OBX|1|ED|X^Image^L||^^^Base64^iVBORw0KGgoAAA==||||||F", "extension",
			`[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/png","data":"iVBORw0KGgoAAA=="}}]`},
		{"ED type contradicted by the data", "OBX|1|ED|X^Image^L||^IM^GIF^Base64^/9j/4AAQSkZJRg==||||||F", "extension",
			`[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/jpeg","data":"/9j/4AAQSkZJRg=="}}]`},
		{"RP type from the URL", "OBX|1|RP|X^Image^L||https://img.example/a/1.png?x=1||||||F", "extension",
			`[{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value","valueAttachment":{"contentType":"image/png","url":"https://img.example/a/1.png?x=1"}}]`},
		// Repetitions are components, not cut to the first.
		{"CWE repetitions are components", "OBX|1|CWE|X^Organisms^L||A^Alpha^L~B^Beta^L||||||F", "component",
			`[{"code":{"coding":[{"system":"urn:id:L","code":"X","display":"Organisms"}]},"valueCodeableConcept":{"coding":[{"system":"urn:id:L","code":"A","display":"Alpha"}]}},{"code":{"coding":[{"system":"urn:id:L","code":"X","display":"Organisms"}]},"valueCodeableConcept":{"coding":[{"system":"urn:id:L","code":"B","display":"Beta"}]}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := mapReport(t, "HM", tc.obx)
			obs := res["Observation"]
			require.Len(t, obs, 1)
			if tc.key != "extension" { // an Attachment is no value[x]: data-absent "unsupported"
				require.NotContains(t, obs[0], "dataAbsentReason")
			}
			require.JSONEq(t, tc.want, jsonOf(t, obs[0][tc.key]))
			if tc.key == "component" {
				require.NotContains(t, obs[0], "valueCodeableConcept", "obs-7: no value[x] beside components of the same code")
			}
		})
	}
}

// TestEDDecoding covers ED-4 encodings, Base64 as senders write it, and the media types ED-2 and
// ED-3 give in table 0191/0291 or IANA form.
func TestEDDecoding(t *testing.T) {
	pdf := "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
	b64 := base64.StdEncoding.EncodeToString([]byte(pdf))
	for _, tc := range []struct {
		name, raw, contentType, data string
	}{
		{"IANA type and subtype", "^application^pdf^Base64^" + b64, "application/pdf", b64},
		{"table 0191/0291", "^AP^PDF^Base64^" + b64, "application/pdf", b64},
		{"full type in ED-3", "^^application/pdf^Base64^" + b64, "application/pdf", b64},
		{"table code where the IANA type belongs: sniffed", "^^AP/PDF^Base64^" + b64, "application/pdf", b64},
		{"nonsense type: sniffed", "^XX^foo bar^Base64^" + b64, "application/pdf", b64},
		{"Base64 with line breaks and no padding", "^AP^PDF^Base64^" + b64[:8] + `\.br\` + strings.TrimRight(b64[8:], "="), "application/pdf", b64},
		{"Hex", "^AP^PDF^Hex^" + "255044462d312e340a", "application/pdf", base64.StdEncoding.EncodeToString([]byte("%PDF-1.4\n"))},
		{"ASCII text", "^TEXT^^A^Hello", "text/plain", "SGVsbG8="},
		{"ASCII with unescaped separators", "^TEXT^^A^a&b^c", "text/plain", base64.StdEncoding.EncodeToString([]byte("a&b^c"))},
		{"ASCII RTF", `^TEXT^RTF^A^{\E\rtf1 x}`, "application/rtf", base64.StdEncoding.EncodeToString([]byte(`{\rtf1 x}`))},
		{"HTML sniffed", "^^^A^<!DOCTYPE html><p>x", "text/html", base64.StdEncoding.EncodeToString([]byte("<!DOCTYPE html><p>x"))},
		{"declared kept over a guess", "^IM^JPEG^Base64^VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc=", "image/jpeg", "VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := hl7v2.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rOBX|1|ED|X||" + tc.raw + "\r"))
			require.NoError(t, err)
			a, ok := ED(FieldValue(m.Segment("OBX", 1), 5))
			require.True(t, ok)
			require.Equal(t, tc.contentType, a.ContentType)
			require.Equal(t, tc.data, a.Data)
		})
	}
	for _, bad := range []string{"^AP^PDF^Base64^", "^AP^PDF^Base64^<Base64 encoded>", "^AP^PDF^Hex^zz"} {
		m, err := hl7v2.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rOBX|1|ED|X||" + bad + "\r"))
		require.NoError(t, err)
		_, ok := ED(FieldValue(m.Segment("OBX", 1), 5))
		require.False(t, ok, bad)
	}
}

func TestSniffMedia(t *testing.T) {
	for data, want := range map[string]string{
		"%PDF-1.7":                "application/pdf",
		"\x89PNG\r\n\x1a\n":       "image/png",
		"\xff\xd8\xff\xdb":        "image/jpeg",
		"GIF89a..":                "image/gif",
		"II*\x00....":             "image/tiff",
		"MM\x00*....":             "image/tiff",
		`{\rtf1\ansi`:             "application/rtf",
		"<?xml version=\"1.0\"?>": "application/xml",
		"  <html><body>":          "text/html",
		"plain words\r\n":         "text/plain",
		"caf\xc3\xa9":             "text/plain",
		"\x00\x01\x02binary":      "application/octet-stream",
		"\xc3\x28":                "application/octet-stream",
	} {
		got, _ := sniffMedia([]byte(data))
		require.Equal(t, want, got, "%q", data)
	}
	dicom := make([]byte, 140)
	copy(dicom[128:], "DICM")
	got, certain := sniffMedia(dicom)
	require.Equal(t, "application/dicom", got)
	require.True(t, certain)
}

// TestReportPresentedForm: the report rendered as a document (an ED or RP of a document
// type) and code-less report text are the DiagnosticReport's presentedForm, titled with the
// OBX-3 text; images stay Observations.
func TestReportPresentedForm(t *testing.T) {
	pdf := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4\n"))
	res, notes := mapReport(t, "RAD",
		"OBX|1|TX|||IMPRESSION:||||||F",
		"OBX|2|ED|18748-4^Diagnostic imaging study^LN||^application^pdf^Base64^"+pdf+"||||||F",
		"OBX|3|TX|||No acute findings.||||||F",
		"OBX|4|ED|X^Key image^L||^IM^JPEG^Base64^/9j/4AAQSkZJRg==||||||F",
		"OBX|5|RP|Y^Report link^L||https://pacs.example/r/1.pdf||||||F",
	)
	require.Len(t, res["DiagnosticReport"], 1)
	dr := res["DiagnosticReport"][0]
	require.JSONEq(t, `[
		{"contentType":"text/plain","data":"`+base64.StdEncoding.EncodeToString([]byte("IMPRESSION:\nNo acute findings."))+`","title":"CBC"},
		{"contentType":"application/pdf","data":"`+pdf+`","title":"Diagnostic imaging study"},
		{"contentType":"application/pdf","url":"https://pacs.example/r/1.pdf","title":"Report link"}]`, jsonOf(t, dr["presentedForm"]))
	require.Len(t, res["Observation"], 1, "the key image stays a result")
	require.Len(t, dr["result"], 1)
	require.Contains(t, strings.Join(notes, "\n"), "OBX(2)-5: application/pdf document mapped to DiagnosticReport.presentedForm")

	// A withdrawn document (OBX-11 W) is not presented; its Observation says entered-in-error.
	res, _ = mapReport(t, "RAD", "OBX|1|ED|18748-4^Diagnostic imaging study^LN||^application^pdf^Base64^"+pdf+"||||||W")
	require.NotContains(t, res["DiagnosticReport"][0], "presentedForm")
	require.Equal(t, "entered-in-error", res["Observation"][0]["status"])

	// Blank code-less lines alone are no presentedForm.
	res, _ = mapReport(t, "RAD", "OBX|1|TX|||||||||F", "OBX|2|TX||| ||||||F", "OBX|3|NM|718-7^Hgb^LN||13|g/dL|||||F")
	require.NotContains(t, res["DiagnosticReport"][0], "presentedForm")

	// Without a report (ORM), a document stays an Observation's attachment.
	m, err := hl7v2.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORM^O01|1|P|2.5.1\rPID|1||P1^^^HOSP^MR||DOE^JANE\r" +
		"ORC|NW|PL1^EHR\rOBR|1|PL1^EHR||24317-0^CBC^LN\rOBX|1|ED|X^Consent^L||^AP^PDF^Base64^" + pdf + "||||||F\r"))
	require.NoError(t, err)
	out, err := New(Options{}).Map(m)
	require.NoError(t, err)
	var found bool
	for _, e := range out.Bundle.Entry {
		if strings.Contains(string(e.Resource), `"resourceType":"Observation"`) {
			found = strings.Contains(string(e.Resource), `"contentType":"application/pdf"`)
		}
	}
	require.True(t, found, "ORM ED kept in the Observation")
}

// TestReportProfiles: lab reports claim us-core-diagnosticreport-lab with the LAB category;
// other sections (imaging, cardiology…) us-core-diagnosticreport-note with the LOINC category
// of its value set when the section has one; pathology both.
func TestReportProfiles(t *testing.T) {
	lab := "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"
	note := "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"
	for _, tc := range []struct {
		section    string
		profiles   []string
		categories string
	}{
		{"", []string{lab}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB","display":"Laboratory"}]}]`},
		{"HM", []string{lab}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB","display":"Laboratory"},{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"HM"}]}]`},
		{"RAD", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"RAD"}]},{"coding":[{"system":"http://loinc.org","code":"LP29684-5","display":"Radiology"}]}]`},
		{"CUS", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"CUS"}]},{"coding":[{"system":"http://loinc.org","code":"LP29708-2","display":"Cardiology"}]}]`},
		{"EC", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"EC"}]},{"coding":[{"system":"http://loinc.org","code":"LP29708-2","display":"Cardiology"}]}]`},
		{"PT", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"PT"}]}]`},
		{"US", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"US"}]},{"coding":[{"system":"http://loinc.org","code":"LP29684-5","display":"Radiology"}]}]`},
		{"PF", []string{note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"PF"}]}]`},
		{"SP", []string{lab, note}, `[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB","display":"Laboratory"},{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"SP"}]},{"coding":[{"system":"http://loinc.org","code":"LP7839-6","display":"Pathology"}]}]`},
	} {
		t.Run(tc.section, func(t *testing.T) {
			res, _ := mapReport(t, tc.section, "OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||F")
			dr := res["DiagnosticReport"][0]
			require.JSONEq(t, tc.categories, jsonOf(t, dr["category"]))
			require.JSONEq(t, jsonOf(t, tc.profiles), jsonOf(t, dr["meta"].(map[string]any)["profile"]))
		})
	}
}

// TestObservationValuesHostile maps malformed values of every type: no panic, and every
// Observation has a value, components, an attachment or a data-absent-reason (us-core-2).
func TestObservationValuesHostile(t *testing.T) {
	types := []string{"", "ZZ", "NM", "SN", "ST", "TX", "FT", "CWE", "CE", "CNE", "CF", "IS", "ID", "DT", "DTM", "TS", "TM",
		"DR", "NR", "CQ", "MO", "CP", "VR", "CX", "CK", "EI", "HD", "XPN", "PN", "XCN", "CN", "XON", "XAD", "AD", "XTN", "TN",
		"NA", "MA", "ED", "RP"}
	values := []string{"^", "^^^^^", "&&&", "~~", "x~", `\X00\`, "<>^^-^", ">^^/^", "^^-^5", "1e5", "-", "...", ">",
		"^^^Base64^====", "^IM^^Hex^zz", "^^^^" + strings.Repeat("A", 5000), "99999999999999999999999999.5", "a^b&c~d^e&f"}
	for _, typ := range types {
		for _, val := range values {
			res, _ := mapReport(t, "RAD", "OBX|1|"+typ+"|X^Thing^L||"+val+"|mg^^UCUM|||||F")
			for _, o := range res["Observation"] {
				has := false
				for k := range o {
					if strings.HasPrefix(k, "value") || k == "component" || k == "extension" || k == "dataAbsentReason" {
						has = true
					}
				}
				require.True(t, has, "%s %q: %v", typ, val, o)
			}
		}
	}
}

// TestReportIssuedAbsent: a released report without OBR-22 still meets us-core-9 (issued
// present for partial, preliminary, final… reports) with a data-absent-reason, not a made-up
// time; a registered one needs none.
func TestReportIssuedAbsent(t *testing.T) {
	for status, want := range map[string]bool{"F": true, "P": true, "C": true, "I": false, "": false} {
		raw := "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
			"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\r" +
			"OBR|1|PL1^EHR|FL1^LAB|24317-0^CBC^LN|||20240101100000+0000|||||||||||||||||HM|" + status + "\r" +
			"OBX|1|NM|718-7^Hgb^LN||13|g/dL|||||F\r"
		m, err := hl7v2.Parse([]byte(raw))
		require.NoError(t, err)
		res, err := New(Options{}).Map(m)
		require.NoError(t, err)
		for _, e := range res.Bundle.Entry {
			if strings.Contains(string(e.Resource), `"resourceType":"DiagnosticReport"`) {
				require.NotContains(t, string(e.Resource), `"issued"`)
				require.Equal(t, want, strings.Contains(string(e.Resource), `"_issued":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}`), status)
			}
		}
	}
}
