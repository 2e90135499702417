package mapping_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// mapADT maps an ADT message of the given MSH-9 and segments (joined with CR) without the
// message resources, and returns the result.
func mapADT(t *testing.T, msh9 string, segments ...string) mapping.Result {
	t.Helper()
	raw := strings.Replace(msh, "ADT^A01^ADT_A01", msh9, 1) + strings.Join(segments, "\r") + "\r"
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	checkTransaction(t, r.Bundle)
	return r
}

// resources returns the resources of type typ in r's Bundle, decoded, with their request URL
// (or ifNoneExist) under "_request".
func resources(t *testing.T, r mapping.Result, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range r.Bundle.Entry {
		var res map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &res))
		if res["resourceType"] == typ {
			res["_request"] = e.Request.Method + " " + e.Request.URL + e.Request.IfNoneExist
			out = append(out, res)
		}
	}
	return out
}

func notes(r mapping.Result) string { return strings.Join(r.Notes, "\n") }

// An Encounter needs a key that finds the same visit again. PV1-19, else PV1-50, else PV1-5
// (the sender's visit ids), else patient + PV1-44; without any, only an event that starts a
// visit (A01/A04/A05/A14) with a patient class gets one, keyed on the message and noted.
func TestEncounterVisitKey(t *testing.T) {
	const pid = "PID|1||P1^^^HOSP^MR||DOE^JO||19700101|F"
	pv1 := func(fields map[int]string) string {
		f := make([]string, 51)
		f[0], f[1] = "PV1", "1"
		for n, v := range fields {
			f[n] = v
		}
		return strings.TrimRight(strings.Join(f, "|"), "|")
	}
	classAndDoctor := map[int]string{2: "I", 3: "4E^401^B^HOSP", 7: "100^SMITH^JOHN^^^DR"}
	with := func(extra map[int]string) map[int]string {
		m := map[int]string{}
		for k, v := range classAndDoctor {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cond := func(system, value string) string {
		return "PUT Encounter?identifier=" + url.QueryEscape(system+"|"+value)
	}
	for _, tc := range []struct {
		name, msh9 string
		pv1        map[int]string
		want       string // request of the Encounter; "" for none
		note       string
	}{
		{"visit number", "ADT^A01^ADT_A01", with(map[int]string{19: "V1^^^HOSP^VN", 50: "ALT1^^^HOSP"}), cond("urn:id:HOSP", "V1"), ""},
		{"alternate visit id", "ADT^A08^ADT_A01", with(map[int]string{50: "ALT1^^^HOSP"}), cond("urn:id:HOSP", "ALT1"), ""},
		{"preadmit number", "ADT^A05^ADT_A05", with(map[int]string{5: "PRE1^^^HOSP"}), cond("urn:id:HOSP", "PRE1"), ""},
		{"preadmit number on the admit", "ADT^A01^ADT_A01", with(map[int]string{5: "PRE1^^^HOSP"}), cond("urn:id:HOSP", "PRE1"), ""},
		{"admit time", "ADT^A03^ADT_A03", with(map[int]string{44: "202401010800"}), cond(mapping.SystemV2Visit, "urn:id:HOSP|P1|202401010800"), ""},
		{"admit without id: keyed on the message", "ADT^A01^ADT_A01", classAndDoctor, cond(mapping.SystemV2MessageVisit, "APP|FAC|CTRL1"), "keyed on this message"},
		{"registration without id", "ADT^A04^ADT_A01", classAndDoctor, cond(mapping.SystemV2MessageVisit, "APP|FAC|CTRL1"), "keyed on this message"},
		{"update without id: which visit?", "ADT^A08^ADT_A01", classAndDoctor, "", "visit this A08 is about"},
		{"discharge without id", "ADT^A03^ADT_A03", classAndDoctor, "", "visit this A03 is about"},
		{"admit without a class", "ADT^A01^ADT_A01", map[int]string{7: "100^SMITH"}, "", "PV1-2"},
		{"class not applicable", "ADT^A01^ADT_A01", map[int]string{2: "N", 7: "100^SMITH"}, "", "PV1-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mapADT(t, tc.msh9, pid, pv1(tc.pv1))
			encs := resources(t, r, "Encounter")
			if tc.want == "" {
				require.Empty(t, encs)
			} else {
				require.Len(t, encs, 1)
				require.Equal(t, tc.want, encs[0]["_request"])
				if tc.pv1[7] != "" {
					require.Contains(t, encs[0], "participant", "the attending doctor is kept")
				}
			}
			if tc.note != "" {
				require.Contains(t, notes(r), tc.note)
			}
		})
	}
	t.Run("lab result without visit id", func(t *testing.T) {
		r := mapADT(t, "ORU^R01^ORU_R01", pid, pv1(classAndDoctor), "OBR|1|P1^LAB|F1^LAB|GLU^Glucose^L", "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F")
		require.Empty(t, resources(t, r, "Encounter"), "one Encounter per result message would pile up visits")
		require.Contains(t, notes(r), "encounter not mapped")
	})
}

// raceExt returns the sub-extensions of the Patient's extension url as "kind system|code" and
// "text value" strings.
func raceExt(t *testing.T, r mapping.Result, url string) []string {
	t.Helper()
	pats := resources(t, r, "Patient")
	require.Len(t, pats, 1)
	exts, _ := pats[0]["extension"].([]any)
	var out []string
	for _, x := range exts {
		e := x.(map[string]any)
		if e["url"] != url {
			continue
		}
		for _, y := range e["extension"].([]any) {
			s := y.(map[string]any)
			if c, ok := s["valueCoding"].(map[string]any); ok {
				out = append(out, s["url"].(string)+" "+c["system"].(string)+"|"+c["code"].(string))
			} else {
				out = append(out, s["url"].(string)+" "+s["valueString"].(string))
			}
		}
	}
	return out
}

// PID-10 and PID-22 become US Core race and ethnicity, every repetition and every coding
// triplet: OMB categories as ombCategory, other CDC codes as detailed, table 0005/0189
// letters where the table is named (or no system is), unknown/declined as null flavors, and
// the required text. What cannot be placed stays as text, with a note.
func TestRaceAndEthnicity(t *testing.T) {
	const cdc, nf = "urn:oid:2.16.840.1.113883.6.238|", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor|"
	for _, tc := range []struct {
		name, race, ethnicity string
		wantRace, wantEth     []string
		note                  string
	}{
		{"CDC codes, every repetition", "2106-3^White^CDCREC~2028-9^Asian^CDCREC", "2186-5^Not Hispanic or Latino^CDCREC",
			[]string{"ombCategory " + cdc + "2106-3", "ombCategory " + cdc + "2028-9", "text White, Asian"},
			[]string{"ombCategory " + cdc + "2186-5", "text Not Hispanic or Latino"}, ""},
		{"CDC code under the table's name, no display", "2054-5^^HL70005", "2135-2^^HL70189",
			[]string{"ombCategory " + cdc + "2054-5", "text Black or African American"},
			[]string{"ombCategory " + cdc + "2135-2", "text Hispanic or Latino"}, ""},
		{"detailed codes", "2108-9^European^CDCREC~2029-7^Asian Indian^2.16.840.1.113883.6.238", "2148-5^Mexican^CDCREC",
			[]string{"detailed " + cdc + "2108-9", "detailed " + cdc + "2029-7", "text European, Asian Indian"},
			[]string{"detailed " + cdc + "2148-5", "text Mexican"}, ""},
		{"CDC code in the alternate triplet", "W^Caucasian^L^2106-3^White^CDCREC", "",
			[]string{"ombCategory " + cdc + "2106-3", "text Caucasian"}, nil, ""},
		{"CDC code in the second alternate triplet", "C^Caucasian^99RACE^^^^^^Caucasian^2106-3^White^CDCREC", "",
			[]string{"ombCategory " + cdc + "2106-3", "text Caucasian"}, nil, ""},
		{"table 0005/0189 letters", "W~B^Black^HL70005~A~I", "H^Hispanic^HL70189",
			[]string{"ombCategory " + cdc + "2106-3", "ombCategory " + cdc + "2054-5", "ombCategory " + cdc + "2028-9", "ombCategory " + cdc + "1002-5", "text White, Black, Asian, American Indian or Alaska Native"},
			[]string{"ombCategory " + cdc + "2135-2", "text Hispanic"}, ""},
		{"ethnicity N", "", "N", nil, []string{"ombCategory " + cdc + "2186-5", "text Not Hispanic or Latino"}, ""},
		{"unknown", "U^Unknown^HL70005", "U",
			[]string{"ombCategory " + nf + "UNK", "text Unknown"}, []string{"ombCategory " + nf + "UNK", "text Unknown"}, ""},
		{"a local letter is not guessed", "W^White^LOCAL", "", []string{"text White"}, nil, "PID-10"},
		{"other race is text", "O^Other^HL70005", "", []string{"text Other"}, nil, "PID-10"},
		{"Hispanic is not a race", "H^Hispanic^HL70005", "", []string{"text Hispanic"}, nil, "PID-10"},
		{"text only", "^Caucasian", "^Latino", []string{"text Caucasian"}, []string{"text Latino"}, "PID-22"},
		{"a race code in the ethnicity field", "", "2106-3^White^CDCREC", nil, []string{"text White"}, "PID-22"},
		{"duplicate codes once", "2106-3^White^CDCREC~W", "", []string{"ombCategory " + cdc + "2106-3", "text White"}, nil, ""},
		{"a code only", "1", "", []string{"text 1"}, nil, "PID-10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mapADT(t, "ADT^A28^ADT_A05", "PID|1||P1^^^HOSP^MR||DOE^JO||19700101|F||"+tc.race+"||||||||||||"+tc.ethnicity)
			require.Equal(t, tc.wantRace, raceExt(t, r, mapping.ExtUSCoreRace))
			require.Equal(t, tc.wantEth, raceExt(t, r, mapping.ExtUSCoreEthnicity))
			if tc.note != "" {
				require.Contains(t, notes(r), tc.note+":")
			} else {
				require.NotContains(t, notes(r), "PID-10")
				require.NotContains(t, notes(r), "PID-22")
			}
		})
	}
}

// ADT OBX (the OBSERVATION group: height, weight, gestational age) become Observations of the
// patient in the visit, keyed on patient + visit + OBX-3 + OBX-4, so the A08 that corrects a
// weight updates the A01's Observation.
func TestADTObservations(t *testing.T) {
	const pid = "PID|1||P1^^^HOSP^MR||DOE^JO||19700101|F"
	pv1 := "PV1|1|I|4E^401^B^HOSP" + strings.Repeat("|", 16) + "V1^^^HOSP^VN"
	obx := []string{
		"OBX|1|NM|8302-2^Body height^LN||172|cm^cm^UCUM|||||F|||20240101080000",
		"OBX|2|NM|11884-4^Gestational age Estimated^LN||38|wk^weeks^UCUM|||||F",
		"OBX|3|ST|ABC^Local note^L||first^part|||||||",
	}
	admit := mapADT(t, "ADT^A01^ADT_A01", append([]string{pid, pv1}, obx...)...)
	obs := resources(t, admit, "Observation")
	require.Len(t, obs, 3, "every OBX is an Observation")
	encs := resources(t, admit, "Encounter")
	require.Len(t, encs, 1)
	for _, o := range obs {
		require.NotNil(t, o["subject"])
		require.NotNil(t, o["encounter"], "the observation is of the visit")
	}
	height, gest := obs[0], obs[1]
	require.Equal(t, "vital-signs", height["category"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"])
	require.Contains(t, height["meta"].(map[string]any)["profile"], "http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-height")
	require.Equal(t, 172.0, height["valueQuantity"].(map[string]any)["value"])
	require.NotContains(t, gest, "category", "v2 does not say what kind of observation it is")
	require.NotContains(t, gest["meta"].(map[string]any), "profile")
	require.Equal(t, 38.0, gest["valueQuantity"].(map[string]any)["value"])
	require.Equal(t, "final", gest["status"])
	require.Contains(t, gest, "_effectiveDateTime", "no OBX-14: data-absent")
	pregnancy := resources(t, mapADT(t, "ADT^A01^ADT_A01", pid, pv1, "OBX|1|CWE|82810-3^Pregnancy status^LN||77386006^Pregnant^SCT||||||F"), "Observation")[0]
	require.Equal(t, "social-history", pregnancy["category"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"], "US Core puts pregnancy status there")

	// An A08 of the same visit reports the height again: the same conditional key.
	update := mapADT(t, "ADT^A08^ADT_A01", pid, pv1, "OBX|1|NM|8302-2^Body height^LN||173|cm^cm^UCUM|||||C")
	require.Equal(t, height["_request"], resources(t, update, "Observation")[0]["_request"])

	// Another visit of the patient keeps its own.
	other := mapADT(t, "ADT^A01^ADT_A01", pid, strings.Replace(pv1, "V1^", "V2^", 1), obx[0])
	require.NotEqual(t, height["_request"], resources(t, other, "Observation")[0]["_request"])

	// A repeated code and sub-id in one message is told apart by OBX-1, with a note.
	twice := mapADT(t, "ADT^A01^ADT_A01", pid, pv1, obx[0], strings.Replace(obx[0], "OBX|1|", "OBX|4|", 1))
	require.Len(t, resources(t, twice, "Observation"), 2)
	require.Contains(t, notes(twice), "OBX(2)-4")

	// A person-only event (A28) has no visit: the observation is the patient's.
	person := mapADT(t, "ADT^A28^ADT_A05", pid, "PV1|1|N", obx[1])
	pobs := resources(t, person, "Observation")
	require.Len(t, pobs, 1)
	require.NotContains(t, pobs[0], "encounter")

	// An OBX without OBX-3 cannot be keyed: a note, nothing invented.
	nocode := mapADT(t, "ADT^A01^ADT_A01", pid, pv1, "OBX|1|NM|||5")
	require.Empty(t, resources(t, nocode, "Observation"))
	require.Contains(t, notes(nocode), "OBX(1)-3")
}

// requests lists "METHOD Type" of r's entries.
func requests(t *testing.T, r mapping.Result) []string {
	t.Helper()
	var out []string
	for _, e := range r.Bundle.Entry {
		typ, _, _ := strings.Cut(e.Request.URL, "?")
		out = append(out, e.Request.Method+" "+typ)
	}
	return out
}

// A patient merge restates nothing of the merged-away patient: it is a FHIRPath Patch
// (active=false, link replaced-by), never a Patient of data-absent demographics. Account and
// visit merges link no patients; A29 writes nothing; A23 leaves the visit alone.
func TestMergeAndDeleteEvents(t *testing.T) {
	const pid = "PID|1||NEW^^^HOSP^MR||DOE^JO||19700101|F"
	pv1 := "PV1|1|I|4E^401^B^HOSP" + strings.Repeat("|", 16) + "V1^^^HOSP^VN"
	for _, tc := range []struct {
		name, msh9 string
		segments   []string
		want       []string
		note       string
	}{
		{"A40 patient merge", "ADT^A40^ADT_A39", []string{pid, "MRG|OLD^^^HOSP^MR||||||OLDNAME^X"}, []string{"PUT Patient", "PATCH Patient"}, ""},
		{"A39 merge person", "ADT^A39^ADT_A39", []string{pid, "MRG|OLD^^^HOSP^MR"}, []string{"PUT Patient", "PATCH Patient"}, ""},
		{"A34 (v2.3) merge patient id", "ADT^A34^ADT_A30", []string{pid, "MRG|OLD^^^HOSP^MR"}, []string{"PUT Patient", "PATCH Patient"}, ""},
		{"A41 account merge", "ADT^A41^ADT_A39", []string{pid, "MRG|OLD^^^HOSP^MR||ACC1^^^HOSP"}, []string{"PUT Patient"}, "account merge"},
		{"A35 account merge", "ADT^A35^ADT_A30", []string{pid, "MRG|OLD^^^HOSP^MR||ACC1^^^HOSP"}, []string{"PUT Patient"}, "account merge"},
		{"A42 visit merge", "ADT^A42^ADT_A39", []string{pid, "MRG|NEW^^^HOSP^MR||||V0^^^HOSP^VN", pv1}, []string{"PUT Patient", "PUT Encounter"}, "visit merge"},
		{"A47 identifier change", "ADT^A47^ADT_A30", []string{pid, "MRG|OLD^^^HOSP^MR"}, []string{"PUT Patient"}, "identifier change"},
		{"two merges in one message", "ADT^A40^ADT_A39", []string{pid, "MRG|OLD^^^HOSP^MR", "PID|1||NEW2^^^HOSP^MR||DOE^JO", "MRG|OLD2^^^HOSP^MR"}, []string{"PUT Patient", "PATCH Patient"}, "MRG(2)"},
		{"A29 delete person", "ADT^A29^ADT_A21", []string{pid, pv1}, nil, "A29"},
		{"A29 under another structure", "ADT^A29^ADT_A01", []string{pid, pv1}, nil, "A29"},
		{"A23 delete visit", "ADT^A23^ADT_A21", []string{pid, pv1}, []string{"PUT Patient"}, "A23"},
		{"A21 leave of absence", "ADT^A21^ADT_A21", []string{pid, pv1}, []string{"PUT Patient", "PUT Encounter"}, ""},
		{"A24 link: each patient gets a seealso link, neither is restated", "ADT^A24^ADT_A24", []string{pid, pv1, "PID|1||OTHER^^^HOSP^MR||DOE^JO"}, []string{"PATCH Patient", "PATCH Patient"}, ""},
		{"A37 unlink", "ADT^A37^ADT_A37", []string{pid, pv1, "PID|1||OTHER^^^HOSP^MR||DOE^JO"}, nil, "A37"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(msh, "ADT^A01^ADT_A01", tc.msh9, 1) + strings.Join(tc.segments, "\r") + "\r"
			m, err := hl7v2.Parse([]byte(raw))
			require.NoError(t, err)
			r, err := mapping.New(mapping.Options{}).Map(m)
			require.NoError(t, err)
			if len(tc.want) > 0 {
				checkTransaction(t, r.Bundle)
			}
			var got []string
			for _, req := range requests(t, r) {
				if req != "POST Location" && req != "POST Organization" && req != "POST Practitioner" {
					got = append(got, req)
				}
			}
			require.Equal(t, tc.want, got)
			if tc.note != "" {
				require.Contains(t, notes(r), tc.note)
			}
			for _, e := range r.Bundle.Entry {
				require.NotContains(t, string(e.Resource), "OLDNAME", "MRG-7 restates nothing")
				if strings.HasPrefix(e.Request.URL, "Patient") {
					require.NotContains(t, string(e.Resource), "data-absent-reason", "no demographics are made absent")
				}
				if e.Request.Method == "PATCH" && strings.Contains(tc.msh9, "A24") {
					require.Contains(t, string(e.Resource), `"seealso"`)
					require.NotContains(t, string(e.Resource), `"active"`)
				} else if e.Request.Method == "PATCH" {
					require.Contains(t, e.Request.URL, "OLD")
					require.Contains(t, string(e.Resource), `"replaced-by"`)
					require.Contains(t, string(e.Resource), `"valueBoolean":false`)
				}
			}
		})
	}
	t.Run("A21 is a leave of absence", func(t *testing.T) {
		r := mapADT(t, "ADT^A21^ADT_A21", pid, pv1)
		require.Equal(t, "onleave", resources(t, r, "Encounter")[0]["status"])
	})
	t.Run("A27 cancels the pending admit", func(t *testing.T) {
		r := mapADT(t, "ADT^A27^ADT_A21", pid, pv1)
		require.Equal(t, "cancelled", resources(t, r, "Encounter")[0]["status"])
	})
}
