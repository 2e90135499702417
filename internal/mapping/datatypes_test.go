package mapping_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// field parses a one-segment message and returns the first repetition of ZZZ-1 holding raw.
func field(t *testing.T, raw string) mapping.Value {
	t.Helper()
	m, err := hl7v2.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rZZZ|" + raw + "\r"))
	require.NoError(t, err)
	return mapping.FieldValue(m.Segment("ZZZ", 1), 1)
}

func TestDateTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		loc  *time.Location
		want string
	}{
		{"2024", nil, "2024"},
		{"202402", nil, "2024-02"},
		{"20240207", nil, "2024-02-07"},
		{"202402071230+0215", nil, "2024-02-07T12:30:00+02:15"},
		{"20240207123015.12-0500", nil, "2024-02-07T12:30:15.12-05:00"},
		{"20240207123015", nil, "2024-02-07"}, // no offset, no zone configured: only the date is true
		{"20240207123015", time.FixedZone("", 3600*4+1800), "2024-02-07T12:30:15+04:30"},
		{"2024020712", time.UTC, "2024-02-07T12:00:00+00:00"},
		{"not a date", nil, ""},
		{`""`, nil, ""},
	} {
		require.Equal(t, tc.want, mapping.DateTime(tc.in, tc.loc), "%q", tc.in)
	}
}

func TestCWE(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want mapping.CodeableConcept
	}{
		{"8867-4^Heart rate^LN", mapping.CodeableConcept{Coding: []mapping.Coding{{System: "http://loinc.org", Code: "8867-4", Display: "Heart rate"}}}},
		{"I21.9^AMI^I10^410.9^AMI^I9C^^^Acute MI", mapping.CodeableConcept{Coding: []mapping.Coding{
			{System: "http://hl7.org/fhir/sid/icd-10-cm", Code: "I21.9", Display: "AMI"},
			{System: "http://hl7.org/fhir/sid/icd-9-cm", Code: "410.9", Display: "AMI"},
		}, Text: "Acute MI"}},
		{"F^Female^HL70001", mapping.CodeableConcept{Coding: []mapping.Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0001", Code: "F", Display: "Female"}}}},
		{"X1^Local^99LOC", mapping.CodeableConcept{Coding: []mapping.Coding{{System: "urn:id:99LOC", Code: "X1", Display: "Local"}}}},
		{"X1^No system", mapping.CodeableConcept{Coding: []mapping.Coding{{Code: "X1", Display: "No system"}}}},
		{"^Penicillin allergy", mapping.CodeableConcept{Text: "Penicillin allergy"}},
	} {
		got, ok := mapping.CWE(field(t, tc.raw))
		require.True(t, ok, tc.raw)
		require.Empty(t, cmp.Diff(tc.want, got), tc.raw)
	}
	_, ok := mapping.CWE(field(t, ""))
	require.False(t, ok)
}

func TestXTN(t *testing.T) {
	for _, tc := range []struct {
		raw, defUse string
		want        mapping.ContactPoint
	}{
		{"(617)555-1234^PRN^PH^^^617^5551234", "", mapping.ContactPoint{System: "phone", Value: "617 5551234", Use: "home"}},
		{"^NET^Internet^jo@example.org", "", mapping.ContactPoint{System: "email", Value: "jo@example.org"}},
		{"^PRN^CP^^1^555^1234567^89", "", mapping.ContactPoint{System: "phone", Value: "+1 555 1234567 X89", Use: "mobile"}},
		{"8885551212", "work", mapping.ContactPoint{System: "phone", Value: "8885551212", Use: "work"}},
	} {
		got, ok := mapping.XTN(field(t, tc.raw), tc.defUse)
		require.True(t, ok, tc.raw)
		require.Empty(t, cmp.Diff(tc.want, got), tc.raw)
	}
}

func TestXAD(t *testing.T) {
	got, ok := mapping.XAD(field(t, "123 Main Street^Apt 4B^Boston^MA^02101^USA^H^^Suffolk"))
	require.True(t, ok)
	require.Empty(t, cmp.Diff(mapping.Address{Use: "home", Line: []string{"123 Main Street", "Apt 4B"}, City: "Boston", District: "Suffolk", State: "MA", PostalCode: "02101", Country: "USA"}, got))

	// SAD subcomponents (street, street name, dwelling number) each become a line, then XAD-2.
	got, ok = mapping.XAD(field(t, "1000&Hospital Lane&7^Ste. 123^Ann Arbor^MI^99999^USA"))
	require.True(t, ok)
	require.Equal(t, []string{"1000", "Hospital Lane", "7", "Ste. 123"}, got.Line)
}

func TestQuantities(t *testing.T) {
	for in, want := range map[string]string{"7.10": "7.10", "+5": "5", ".5": "0.5", "-0": "0", "007": "7", "-3.2": "-3.2"} {
		d, ok := mapping.ParseDecimal(in)
		require.True(t, ok, in)
		require.Equal(t, mapping.Decimal(want), d, in)
	}
	for _, bad := range []string{"", "abc", "1e5", "1.2.3", "-"} {
		_, ok := mapping.ParseDecimal(bad)
		require.False(t, ok, bad)
	}
	sn, ok := mapping.SN(field(t, ">^100"), mapping.Leaf(""))
	require.True(t, ok)
	require.Equal(t, ">", sn.Quantity.Comparator)
	sn, ok = mapping.SN(field(t, "^10^-^20"), mapping.Leaf(""))
	require.True(t, ok)
	require.Equal(t, mapping.Decimal("20"), sn.Range.High.Value)
	sn, ok = mapping.SN(field(t, "^1^:^128"), mapping.Leaf(""))
	require.True(t, ok)
	require.Equal(t, mapping.Decimal("128"), sn.Ratio.Denominator.Value)
}

func TestED(t *testing.T) {
	a, ok := mapping.ED(field(t, "^AP^pdf^Base64^SGVsbG8="))
	require.True(t, ok)
	require.Equal(t, mapping.Attachment{ContentType: "application/pdf", Data: "SGVsbG8="}, a)
	a, ok = mapping.ED(field(t, "^TX^^A^Hello"))
	require.True(t, ok)
	require.Equal(t, "SGVsbG8=", a.Data)
	_, ok = mapping.ED(field(t, "^AP^pdf^Base64^!!!"))
	require.False(t, ok)
}

func TestTenantIdentifierSystems(t *testing.T) {
	ps := &mapping.ProfileSet{
		Name:               "AFG-Core",
		NationalIdentifier: mapping.NationalIdentifier{Authority: "MOPH", System: "http://moph.gov.af/fhir/sid/nid"},
		IdentifierSystems:  map[string]string{"HOSP": "https://hosp.example.af/mrn"},
		Profiles:           map[string][]string{"Patient": {"http://moph.gov.af/fhir/StructureDefinition/afg-patient"}},
	}
	id, ok := mapping.CX(field(t, "123^^^MOPH^NI"), ps)
	require.True(t, ok)
	require.Equal(t, "http://moph.gov.af/fhir/sid/nid", id.System)
	id, _ = mapping.CX(field(t, "9^^^HOSP^MR"), ps)
	require.Equal(t, "https://hosp.example.af/mrn", id.System)

	m, err := hl7v2.Parse([]byte(msh + "PID|1||9^^^HOSP^MR~123^^^MOPH^NI||DOE^JO||19700101|F\r"))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{Profiles: ps}).Map(m)
	require.NoError(t, err)
	require.Contains(t, string(r.Bundle.Entry[0].Resource), `"http://moph.gov.af/fhir/StructureDefinition/afg-patient"`)
	require.Contains(t, r.Bundle.Entry[0].Request.URL, "hosp.example.af")
}

func TestZSegmentsAreNotedNotFailed(t *testing.T) {
	m, err := hl7v2.Parse([]byte(msh + "PID|1||1^^^H^MR||DOE^JO\rZPD|1|X\r"))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	require.Equal(t, "ZPD(1): Z-segment ignored", r.Notes[0])
	for _, n := range r.Notes[1:] {
		require.NotContains(t, n, "ZPD", "one note per Z-segment")
	}
}
