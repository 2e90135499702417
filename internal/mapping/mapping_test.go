package mapping_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current mapping")

// TestGolden maps every testdata/<case>.hl7 (real public messages, see testdata/README.md) and
// compares the Bundle with testdata/<case>.golden.json. After an intended mapping change, run
// `go test ./internal/mapping -update` and review the diff of the golden files.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(cases), 5, "golden cases missing")
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".hl7")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			bundle := mapFile(t, raw)
			checkTransaction(t, bundle)

			got, err := json.MarshalIndent(bundle, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run `go test ./internal/mapping -update` to create it")
			require.Equal(t, string(want), string(got), "mapping of %s changed; if intended, rerun with -update", path)
		})
	}
}

// TestMapDeterministic: mapping the same message twice, even from two parses, gives the same
// bytes, fullUrls included — the Map activity may be retried and replayed.
func TestMapDeterministic(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(t, err)
	for _, path := range cases {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		first, err := json.Marshal(mapFile(t, raw))
		require.NoError(t, err)
		second, err := json.Marshal(mapFile(t, raw))
		require.NoError(t, err)
		require.True(t, bytes.Equal(first, second), "%s: two mappings differ", path)
	}
}

func TestIdentifierSystem(t *testing.T) {
	for _, tc := range []struct {
		name, cx, system string
	}{
		{"ISO OID without namespace", "123^^^&2.16.840.1.113883.3.72&ISO^MR", "urn:oid:2.16.840.1.113883.3.72"},
		{"ISO OID beside a namespace", "123^^^HOSP&2.16.840.1.113883.3.72&ISO^MR", "urn:oid:2.16.840.1.113883.3.72"},
		{"ISO in lower case", "123^^^HOSP&1.2.3&iso^MR", "urn:oid:1.2.3"},
		{"namespace only", "123^^^HOSP^MR", "urn:id:HOSP"},
		{"namespace with a non-ISO universal id", "123^^^HOSP&1.2.3&L^MR", "urn:id:HOSP"},
		{"URI universal id", "123^^^&https://ids.example.org/mrn&URI^MR", "https://ids.example.org/mrn"},
		{"no assigning authority", "123^^^^MR", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mapPID(t, "PID|1||"+tc.cx+"||DOE^JOHN||19700101|M")
			p := patientOf(t, b)
			require.Len(t, p.Identifier, 1)
			require.Equal(t, tc.system, p.Identifier[0].System)
			require.Equal(t, "123", p.Identifier[0].Value)
			require.Equal(t, "Patient?identifier="+url.QueryEscape(tc.system+"|123"), b.Entry[0].Request.URL)
		})
	}
}

// The medical record number is the conditional key wherever it stands in PID-3; without one
// the first identifier is. Every identifier is kept, in order, with its v2-0203 type.
func TestConditionalKey(t *testing.T) {
	t.Run("MR among others", func(t *testing.T) {
		b := mapPID(t, "PID|1||987-65-4320^^^SSA^SS~^^^EMPTY^PI~M1^^^HOSP^MR~M2^^^OTHER^MR||DOE^JOHN")
		p := patientOf(t, b)
		require.Equal(t, "Patient?identifier="+url.QueryEscape("urn:id:HOSP|M1"), b.Entry[0].Request.URL)
		require.Equal(t, []wantIdent{
			{System: "urn:id:SSA", Value: "987-65-4320", Type: "SS"},
			{Use: "usual", System: "urn:id:HOSP", Value: "M1", Type: "MR"},
			{Use: "usual", System: "urn:id:OTHER", Value: "M2", Type: "MR"},
		}, p.idents(t), "a repetition without a value is skipped")
	})
	t.Run("no MR", func(t *testing.T) {
		b := mapPID(t, "PID|1||P1^^^LAB^PI~S1^^^SSA^SS||DOE^JOHN")
		require.Equal(t, "Patient?identifier="+url.QueryEscape("urn:id:LAB|P1"), b.Entry[0].Request.URL)
	})
	t.Run("no type code", func(t *testing.T) {
		b := mapPID(t, "PID|1||X1^^^A~X2^^^B||DOE^JOHN")
		require.Equal(t, "Patient?identifier="+url.QueryEscape("urn:id:A|X1"), b.Entry[0].Request.URL)
	})
}

func TestGender(t *testing.T) {
	// The V2-to-FHIR IG ConceptMap AdministrativeSex (v2 table 0001 → administrative-gender).
	for sex, want := range map[string]string{
		"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown",
		"f": "female", "M^Male^HL70001": "male", "X": "", "": "",
	} {
		p := patientOf(t, mapPID(t, "PID|1||1^^^H^MR||DOE^JO||19700101|"+sex))
		require.Equal(t, want, p.Gender, "PID-8 %q", sex)
		if want == "" {
			require.NotContains(t, p.raw, "gender", "PID-8 %q: no gender rather than a guess", sex)
			require.JSONEq(t, `{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}`,
				string(p.raw["_gender"]), "US Core requires gender: data-absent-reason")
		}
	}
}

func TestBirthDate(t *testing.T) {
	for dob, want := range map[string]string{
		"1962":           "1962",
		"196203":         "1962-03",
		"19620320":       "1962-03-20",
		"196203201230":   "1962-03-20",
		"19620320233000": "1962-03-20",
		// The date is the one written, in the sender's zone: converting to UTC would say the 21st.
		"19620320233000-0500": "1962-03-20",
		"19620320000000+0700": "1962-03-20",
		"19620320^D":          "1962-03-20", // TS with its degree-of-precision component (v2.3)
		"":                    "",
	} {
		p := patientOf(t, mapPID(t, "PID|1||1^^^H^MR||DOE^JO||"+dob+"|F"))
		require.Equal(t, want, p.BirthDate, "PID-7 %q", dob)
		if want == "" {
			require.NotContains(t, p.raw, "birthDate")
		}
	}
}

func TestNames(t *testing.T) {
	b := mapPID(t, `PID|1||1^^^H^MR||EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^MD^L~Josh^^stanley^^^^D~^^^^^^L~Nick^^^^^^N~Mai^Den^^^^^M~Al^Ias^^^^^A~Old^Birth^^^^^B`)
	p := patientOf(t, b)
	require.Equal(t, []wantName{
		{Use: "official", Family: "EVERYMAN", Given: []string{"ADAM", "A"}, Prefix: []string{"Dr."}, Suffix: []string{"III", "MD"}},
		{Use: "usual", Family: "Josh", Given: []string{"stanley"}},
		{Use: "nickname", Family: "Nick"},
		{Use: "maiden", Family: "Mai", Given: []string{"Den"}},
		// Table 0200 A (assigned/alias) and B (birth name) have no name-use in the IG's ConceptMap.
		{Family: "Al", Given: []string{"Ias"}},
		{Family: "Old", Given: []string{"Birth"}},
	}, p.Name, "a repetition with neither family nor given name is dropped")
}

func TestUnmappable(t *testing.T) {
	for name, raw := range map[string]string{
		"no PID":            msh + "MSA|AA|CTRL0\r",
		"PID without PID-3": msh + "PID|1\r",
		"PID-3 empty":       msh + "PID|1||\r",
		"PID-3 no value":    msh + "PID|1||^^^HOSP^MR\r",
	} {
		t.Run(name, func(t *testing.T) {
			m, err := hl7v2.Parse([]byte(raw))
			require.NoError(t, err)
			b, err := mapping.Map(m)
			require.ErrorIs(t, err, mapping.ErrUnmappable)
			require.Nil(t, b)
		})
	}
}

// A birth date that is not a date (a placeholder "DOB", month 13…) is a demographic error, not
// an identity one: the message maps, birthDate is left out and a note says why. A lab result
// of such a patient keeps its observations.
// A lab result whose patient has a placeholder birth date is mapped whole (the patient is keyed
// on PID-3); the birth date is a note.
func TestBadBirthDateKeepsTheResult(t *testing.T) {
	for _, dob := range []string{"DOB", "19621320", "19620230", "1962-03-20", "19620", "UNKNOWN^D"} {
		t.Run(dob, func(t *testing.T) {
			raw := strings.Replace(msh, "ADT^A01^ADT_A01", "ORU^R01^ORU_R01", 1) +
				"PID|1||1^^^H^MR||DOE^JO||" + dob + "|F\r" +
				"OBR|1|P1^LAB|F1^LAB|GLU^Glucose^L\r" +
				"OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F\r"
			m, err := hl7v2.Parse([]byte(raw))
			require.NoError(t, err)
			r, err := mapping.New(mapping.Options{}).Map(m)
			require.NoError(t, err)
			checkTransaction(t, r.Bundle)
			types := map[string]int{}
			for _, e := range r.Bundle.Entry {
				head, err := fhir.ReadHead(e.Resource)
				require.NoError(t, err)
				types[head.ResourceType]++
				if head.ResourceType == "Patient" {
					require.NotContains(t, string(e.Resource), `"birthDate"`)
				}
			}
			require.Equal(t, 1, types["Patient"])
			require.Equal(t, 1, types["Observation"], "the result is kept")
			require.Contains(t, strings.Join(r.Notes, "\n"), "PID-7")
		})
	}
}

// fullUrls are name-based: stable for one message, distinct across messages.
func TestFullURL(t *testing.T) {
	pid := "PID|1||1^^^H^MR||DOE^JO"
	a := mapPID(t, pid)
	m, err := hl7v2.Parse([]byte(strings.Replace(msh, "CTRL1", "CTRL2", 1) + pid + "\r"))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	b := r.Bundle
	require.True(t, strings.HasPrefix(a.Entry[0].FullURL, "urn:uuid:"))
	require.NotEqual(t, a.Entry[0].FullURL, b.Entry[0].FullURL)
	require.Equal(t, a.Entry[0].Request, b.Entry[0].Request, "the conditional key depends on the patient only")
}

// --- helpers ---------------------------------------------------------------------------------

const msh = "MSH|^~\\&|APP|FAC|RCV|RFAC|20240101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1\r"

func mapFile(t *testing.T, raw []byte) *fhir.Bundle {
	t.Helper()
	m, err := hl7v2.Parse(raw)
	require.NoError(t, err)
	b, err := mapping.Map(m)
	require.NoError(t, err)
	return b
}

// mapPID maps a message of msh and pid without MessageHeader and Provenance (and the sender
// Organization they bring), so that the Patient is entry 0.
func mapPID(t *testing.T, pid string) *fhir.Bundle {
	t.Helper()
	m, err := hl7v2.Parse([]byte(msh + pid + "\r"))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	checkTransaction(t, r.Bundle)
	return r.Bundle
}

// checkTransaction asserts the invariants every mapped Bundle keeps: a transaction whose
// entries are all conditional (PUT or PATCH Type?identifier=system|value, or POST with
// ifNoneExist identifier=system|value) or, for MessageHeader and Provenance, an update of the resource's
// own name-based id (PUT Type/<the fullUrl's uuid>), with a urn:uuid fullUrl.
func checkTransaction(t *testing.T, b *fhir.Bundle) {
	t.Helper()
	require.Equal(t, "Bundle", b.ResourceType)
	require.Equal(t, fhir.BundleTransaction, b.Type)
	require.NotEmpty(t, b.Entry)
	for i, e := range b.Entry {
		head, err := fhir.ReadHead(e.Resource)
		require.NoError(t, err, "entry %d", i)
		require.True(t, strings.HasPrefix(e.FullURL, "urn:uuid:"), "entry %d fullUrl %q", i, e.FullURL)
		require.NotNil(t, e.Request, "entry %d", i)
		var path, query string
		switch e.Request.Method {
		case "PUT":
			var ok bool
			path, query, ok = strings.Cut(e.Request.URL, "?")
			if !ok && (head.ResourceType == "MessageHeader" || head.ResourceType == "Provenance") {
				id := strings.TrimPrefix(e.FullURL, "urn:uuid:")
				require.Equal(t, head.ResourceType+"/"+id, e.Request.URL, "entry %d", i)
				require.Equal(t, id, head.ID, "entry %d", i)
				continue
			}
			require.True(t, ok, "entry %d: %q is not a conditional URL", i, e.Request.URL)
		case "POST":
			path, query = e.Request.URL, e.Request.IfNoneExist
		case "PATCH": // a FHIRPath Patch of the resource matching the condition
			var ok bool
			path, query, ok = strings.Cut(e.Request.URL, "?")
			require.True(t, ok, "entry %d: %q is not a conditional URL", i, e.Request.URL)
			require.Equal(t, "Parameters", head.ResourceType, "entry %d", i)
			head.ResourceType = path
		default:
			t.Fatalf("entry %d: method %s", i, e.Request.Method)
		}
		require.Equal(t, head.ResourceType, path, "entry %d", i)
		q, err := url.ParseQuery(query)
		require.NoError(t, err, "entry %d", i)
		require.Contains(t, q.Get("identifier"), "|", "entry %d: condition %q", i, query)
	}
}

type wantIdent struct {
	Use, System, Value, Type string
}

type wantName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
	Prefix []string `json:"prefix"`
	Suffix []string `json:"suffix"`
}

type patientJSON struct {
	ResourceType string `json:"resourceType"`
	Identifier   []struct {
		Use    string `json:"use"`
		System string `json:"system"`
		Value  string `json:"value"`
		Type   *struct {
			Coding []struct {
				System string `json:"system"`
				Code   string `json:"code"`
			} `json:"coding"`
		} `json:"type"`
	} `json:"identifier"`
	Name      []wantName `json:"name"`
	Gender    string     `json:"gender"`
	BirthDate string     `json:"birthDate"`
	raw       map[string]json.RawMessage
}

func (p patientJSON) idents(t *testing.T) []wantIdent {
	t.Helper()
	var out []wantIdent
	for _, id := range p.Identifier {
		w := wantIdent{Use: id.Use, System: id.System, Value: id.Value}
		if id.Type != nil {
			require.Len(t, id.Type.Coding, 1)
			require.Equal(t, "http://terminology.hl7.org/CodeSystem/v2-0203", id.Type.Coding[0].System)
			w.Type = id.Type.Coding[0].Code
		}
		out = append(out, w)
	}
	return out
}

func patientOf(t *testing.T, b *fhir.Bundle) patientJSON {
	t.Helper()
	for _, e := range b.Entry {
		// Other entries (the MessageHeader's sender Organization) have elements of the same
		// name and another shape: decode only the Patient.
		if head, err := fhir.ReadHead(e.Resource); err != nil || head.ResourceType != "Patient" {
			continue
		}
		var p patientJSON
		require.NoError(t, json.Unmarshal(e.Resource, &p))
		require.NoError(t, json.Unmarshal(e.Resource, &p.raw))
		return p
	}
	t.Fatal("no Patient entry")
	return patientJSON{}
}

// Bundle.timestamp is MSH-7 as an instant (the IG's MSH[Bundle]): seconds and a zone, the
// sender's own offset, else the configured sender zone; never an invented one.
func TestBundleTimestamp(t *testing.T) {
	kabul, err := time.LoadLocation("Asia/Kabul")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, msh7 string
		loc        *time.Location
		want, note string
	}{
		{"offset kept", "20240101120000+0215", nil, "2024-01-01T12:00:00+02:15", ""},
		{"minutes get seconds", "202401011200-0500", nil, "2024-01-01T12:00:00-05:00", ""},
		{"fraction kept", "20240101120000.123+0000", nil, "2024-01-01T12:00:00.123+00:00", ""},
		{"no offset, sender zone", "20240101120000", kabul, "2024-01-01T12:00:00+04:30", ""},
		{"no offset, no zone", "20240101120000", nil, "", "MSH-7"},
		{"date only", "20240101", kabul, "", "MSH-7"},
		{"not a time", "yesterday", nil, "", "MSH-7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(msh, "20240101120000", tc.msh7, 1) + "PID|1||1^^^H^MR||DOE^JO\r"
			m, err := hl7v2.Parse([]byte(raw))
			require.NoError(t, err)
			r, err := mapping.New(mapping.Options{Location: tc.loc}).Map(m)
			require.NoError(t, err)
			require.Equal(t, tc.want, r.Bundle.Timestamp)
			out, err := json.Marshal(r.Bundle)
			require.NoError(t, err)
			if tc.want == "" {
				require.NotContains(t, string(out), `"timestamp"`)
				require.Contains(t, strings.Join(r.Notes, "\n"), tc.note)
			} else {
				require.Contains(t, string(out), `"timestamp":"`+tc.want+`"`)
			}
		})
	}
}
