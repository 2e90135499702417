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
