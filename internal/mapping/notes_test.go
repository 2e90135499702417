package mapping_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// mapNotes maps raw with m and returns the Bundle's resources by type and the notes, split.
func mapNotes(t *testing.T, m *mapping.Mapper, raw string) (map[string][]map[string]any, []mapping.Note) {
	t.Helper()
	msg, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := m.Map(msg)
	require.NoError(t, err)
	byType := map[string][]map[string]any{}
	for _, e := range res.Bundle.Entry {
		var r map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &r))
		typ := r["resourceType"].(string)
		byType[typ] = append(byType[typ], r)
	}
	notes := make([]mapping.Note, len(res.Notes))
	for i, n := range res.Notes {
		notes[i] = mapping.ParseNote(n)
	}
	return byType, notes
}

// notesAt returns the texts of the notes about location.
func notesAt(notes []mapping.Note, location string) []string {
	var out []string
	for _, n := range notes {
		if n.Location == location {
			out = append(out, n.Text)
		}
	}
	return out
}

// A birth date that is not a date is a note and a data-absent-reason, not a refusal: the
// patient is keyed on PID-3, and the rest of the message (a lab result) is true.
func TestBadBirthDateIsANote(t *testing.T) {
	for name, dob := range map[string]string{
		"month 13": "19621320", "30 February": "19620230", "ISO format": "1962-03-20",
		"5 digits": "19620", "placeholder": "DOB",
	} {
		t.Run(name, func(t *testing.T) {
			res, notes := mapNotes(t, mapping.New(mapping.Options{}), msh+"PID|1||1^^^H^MR||DOE^JO||"+dob+"|F\r")
			p := res["Patient"][0]
			require.NotContains(t, p, "birthDate")
			require.Equal(t, map[string]any{"extension": []any{map[string]any{
				"url": mapping.ExtDataAbsentReason, "valueCode": "error"}}}, p["_birthDate"])
			got := notesAt(notes, "PID-7")
			require.Len(t, got, 1, "notes %v", notes)
			require.Contains(t, got[0], `"`+dob+`" is not a valid date`)
		})
	}
}

// Every time field the mapping reads says so when its value is not a time, once per field
// even when several resources read it (OBR-7 is every result's fallback effective time).
func TestBadTimesAreNotes(t *testing.T) {
	raw := "MSH|^~\\&|LAB|FAC|RCV|FAC|2025010||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r" +
		"OBR|1||ACC1|2345-7^Glucose^LN|||202501011\r" +
		"OBX|1|NM|2345-7^Glucose^LN||abc|mg/dL|||||F\r" +
		"OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|||||F\r"
	res, notes := mapNotes(t, mapping.New(mapping.Options{}), raw)
	require.Len(t, notesAt(notes, "MSH-7"), 1, "notes %v", notes)
	require.Contains(t, notesAt(notes, "MSH-7")[0], `"2025010" is not a valid date/time (wrong number of digits)`)
	require.Equal(t, []string{`"202501011" is not a valid date/time (wrong number of digits); not mapped`}, notesAt(notes, "OBR-7"))
	require.Equal(t, []string{`"abc" is not a valid NM; kept as text`}, notesAt(notes, "OBX(1)-5"))
	require.Len(t, res["Observation"], 2)
	for _, o := range res["Observation"] {
		require.NotContains(t, o, "effectiveDateTime")
	}

	// The same through a Mapper with MessageResources: MSH-7 is also Provenance.recorded.
	_, notes = mapNotes(t, mapping.New(mapping.Options{MessageResources: true}), raw)
	require.Contains(t, notesAt(notes, "MSH-7"), "no valid time; no Provenance (recorded is required)")

	// A valid EVN-2 is the event time, and a bad MSH-7 is still said.
	withEVN := strings.Replace(raw, "\rPID|", "\rEVN||20250101120000+0100\rPID|", 1)
	_, notes = mapNotes(t, mapping.New(mapping.Options{}), withEVN)
	require.Len(t, notesAt(notes, "MSH-7"), 1, "notes %v", notes)
	require.Empty(t, notesAt(notes, "EVN-2"))
}

// Without a zone a time without offset keeps its date, and one note names the fields that
// lost their time of day; with one, the time and the zone's offset are kept and nothing is said.
func TestZonelessTimesAreNoted(t *testing.T) {
	raw := "MSH|^~\\&|LAB|FAC|RCV|FAC|20250101120000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r" +
		"OBR|1||ACC1|2345-7^Glucose^LN|||20250101110000\r" +
		"OBX|1|NM|2345-7^Glucose^LN||90|mg/dL|||||F|||20250101103000\r" +
		"OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|||||F|||20250101103500\r"
	res, notes := mapNotes(t, mapping.New(mapping.Options{}), raw)
	require.Equal(t, "2025-01-01", res["Observation"][0]["effectiveDateTime"])
	require.Equal(t, "2025-01-01", res["DiagnosticReport"][0]["effectiveDateTime"])
	var zoneless []mapping.Note
	for _, n := range notes {
		if strings.Contains(n.Text, "time of day dropped") {
			zoneless = append(zoneless, n)
		}
	}
	require.Len(t, zoneless, 1, "one note per message: %v", notes)
	locs := strings.Split(zoneless[0].Location, ", ")
	slices.Sort(locs)
	require.Equal(t, []string{"OBR-7", "OBX-14"}, locs, "each field once, whatever the number of OBX")
	require.Contains(t, zoneless[0].Text, "settings.timeZone")

	kabul, err := mapping.LoadZone("Asia/Kabul")
	require.NoError(t, err)
	res, notes = mapNotes(t, mapping.New(mapping.Options{Location: kabul}), raw)
	require.Equal(t, "2025-01-01T10:30:00+04:30", res["Observation"][0]["effectiveDateTime"])
	require.Equal(t, "2025-01-01T11:00:00+04:30", res["DiagnosticReport"][0]["effectiveDateTime"])
	for _, n := range notes {
		require.NotContains(t, n.Text, "time of day dropped")
	}
}

// A connector's zone (Mapper.InZone) wins over its tenant's; a tenant's applies when the
// connector has none.
func TestConnectorZoneBeforeTenantZone(t *testing.T) {
	tenants, err := mapping.LoadTenants(strings.NewReader(`{"t1": {"timeZone": "America/New_York"}}`))
	require.NoError(t, err)
	raw := "MSH|^~\\&|LAB|FAC|RCV|FAC|20250101120000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r" +
		"OBR|1||ACC1|2345-7^Glucose^LN|||20250101110000\r" +
		"OBX|1|NM|2345-7^Glucose^LN||90|mg/dL|||||F|||20250101103000\r"
	effective := func(m *mapping.Mapper) any {
		res, _ := mapNotes(t, m, raw)
		return res["Observation"][0]["effectiveDateTime"]
	}
	require.Equal(t, "2025-01-01T10:30:00-05:00", effective(tenants.ForTenant("t1")))
	kabul, err := mapping.LoadZone("Asia/Kabul")
	require.NoError(t, err)
	require.Equal(t, "2025-01-01T10:30:00+04:30", effective(tenants.ForTenant("t1").InZone(kabul)), "the connector's zone wins")
	require.Equal(t, "2025-01-01T10:30:00+04:30", effective(tenants.ForTenant("no-zone").InZone(kabul)))
	require.Equal(t, "2025-01-01T10:30:00-05:00", effective(tenants.ForTenant("t1").InZone(nil)), "no connector zone: the tenant's")
	// A written offset is kept whatever the zone.
	raw = strings.Replace(raw, "20250101103000\r", "20250101103000+0100\r", 1)
	require.Equal(t, "2025-01-01T10:30:00+01:00", effective(tenants.ForTenant("t1").InZone(kabul)))
}

func TestLoadZone(t *testing.T) {
	for _, name := range []string{"Asia/Kabul", "America/New_York", "UTC", "Europe/Berlin"} {
		loc, err := mapping.LoadZone(name)
		require.NoError(t, err, name)
		require.Equal(t, name, loc.String())
	}
	for _, name := range []string{"", "Local", "Mars/Olympus", "asia/kabul ", "../etc/passwd", "+0430"} {
		_, err := mapping.LoadZone(name)
		require.Error(t, err, "%q", name)
	}
}

func TestParseNote(t *testing.T) {
	for in, want := range map[string]mapping.Note{
		"PID-7: bad":                       {Location: "PID-7", Text: "bad"},
		"OBX(2)-5: \"abc\": not a number":  {Location: "OBX(2)-5", Text: "\"abc\": not a number"},
		"MSH-3, MSH-4, EVN-5: no sender":   {Location: "MSH-3, MSH-4, EVN-5", Text: "no sender"},
		"SPM-17.1: x":                      {Location: "SPM-17.1", Text: "x"},
		"PID-5(2).1.1: x":                  {Location: "PID-5(2).1.1", Text: "x"},
		"ZPI(3): Z-segment ignored":        {Location: "ZPI(3)", Text: "Z-segment ignored"},
		"MRG: none":                        {Location: "MRG", Text: "none"},
		"OBX-4 \"1\": vaccine information": {Text: "OBX-4 \"1\": vaccine information"},
		"no location at all":               {Text: "no location at all"},
		"Pid-7: lower case":                {Text: "Pid-7: lower case"},
		"PID-: x":                          {Text: "PID-: x"},
		"PID(1: x":                         {Text: "PID(1: x"},
	} {
		got := mapping.ParseNote(in)
		require.Equal(t, want, got, in)
		require.Equal(t, in, got.String(), "a note round-trips")
	}
}

// A refusal carries its location for tools (interop hl7 lint).
func TestRefusalLocation(t *testing.T) {
	msg, err := hl7v2.Parse([]byte(msh + "PID|1||\r"))
	require.NoError(t, err)
	_, err = mapping.New(mapping.Options{}).Map(msg)
	require.ErrorIs(t, err, mapping.ErrUnmappable)
	require.Equal(t, mapping.Note{Location: "PID-3", Text: "no identifier value"}, mapping.Refusal(err))
	require.Equal(t, "unmappable message: PID-3: no identifier value", err.Error())
}
