package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestParseDateRange(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return v.UTC()
	}
	tests := []struct {
		in     string
		lo, hi time.Time
	}{
		{"2024", d("2024-01-01T00:00:00Z"), d("2025-01-01T00:00:00Z")},
		{"2024-02", d("2024-02-01T00:00:00Z"), d("2024-03-01T00:00:00Z")},
		{"2024-02-29", d("2024-02-29T00:00:00Z"), d("2024-03-01T00:00:00Z")},
		{"2024-02-29T10:30", d("2024-02-29T10:30:00Z"), d("2024-02-29T10:31:00Z")},
		{"2024-02-29T10:30:05Z", d("2024-02-29T10:30:05Z"), d("2024-02-29T10:30:06Z")},
		{"2024-02-29T10:30:05+01:00", d("2024-02-29T09:30:05Z"), d("2024-02-29T09:30:06Z")},
		{"2024-02-29T10:30:05 01:00", d("2024-02-29T09:30:05Z"), d("2024-02-29T09:30:06Z")}, // unescaped '+'
		{"2024-02-29T10:30:05.5Z", d("2024-02-29T10:30:05.5Z"), d("2024-02-29T10:30:05.6Z")},
		{"2024-02-29T10:30:05.123-05:00", d("2024-02-29T15:30:05.123Z"), d("2024-02-29T15:30:05.124Z")},
	}
	for _, tt := range tests {
		lo, hi, err := parseDateRange(tt.in)
		require.NoError(t, err, tt.in)
		if diff := cmp.Diff([]time.Time{tt.lo, tt.hi}, []time.Time{lo, hi}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, bad := range []string{"", "24", "2024-13", "2024-02-30", "2024-02-29T25:00", "yesterday", "2024-02-29 10:30", "2024-02-29T10:30:05.1234567891Z", "0000"} {
		_, _, err := parseDateRange(bad)
		require.Error(t, err, bad)
	}
}

func TestExtractIndex(t *testing.T) {
	t.Parallel()
	idx, err := extractIndex("Observation", []byte(`{"resourceType":"Observation","status":"final",
		"identifier":[{"system":"urn:a","value":"1"},{"value":"2"}],
		"subject":{"reference":"https://x/fhir/Patient/p1/_history/3"},
		"encounter":{"reference":"#contained"},
		"category":[{"coding":[{"system":"s","code":"vital-signs"},{"code":"x"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}],"text":"HR"},
		"effectivePeriod":{"start":"2024-01-01"}}`))
	require.NoError(t, err)
	require.ElementsMatch(t, []tokenValue{
		{"identifier", "urn:a", "1"}, {"identifier", "", "2"}, {"status", "", "final"},
		{"category", "s", "vital-signs"}, {"category", "", "x"}, {"code", "http://loinc.org", "8867-4"},
	}, idx.tokens)
	require.ElementsMatch(t, []refValue{{"subject", "Patient", "p1"}, {"patient", "Patient", "p1"}}, idx.refs)
	require.Equal(t, []dateValue{{"date", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), maxDate}}, idx.dates)
	require.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), idx.sortDate)

	idx, err = extractIndex("Observation", []byte(`{"resourceType":"Observation","subject":{"reference":"Group/g1"},"effectiveDateTime":"not a date"}`))
	require.NoError(t, err)
	require.Equal(t, []refValue{{"subject", "Group", "g1"}}, idx.refs, "patient indexes Patient targets only")
	require.Empty(t, idx.dates, "unreadable values are skipped")
	require.Equal(t, minDate, idx.sortDate)
}

func TestSplitEscaped(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{`a\,b`, "c"}, splitEscaped(`a\,b,c`, ','))
	require.Equal(t, []string{`s`, `v\|w`}, splitEscaped(`s|v\|w`, '|'))
	require.Equal(t, "v|w", unescape(`v\|w`))
	require.Equal(t, `a\,b\|c\\`, escape(`a,b|c\`))
}

func TestCompartmentPatients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, body string
		want      []string
		err       error
	}{
		{"Patient", `{"resourceType":"Patient","id":"p1"}`, []string{"p1"}, nil},
		{"Observation", `{"resourceType":"Observation","subject":{"reference":"Patient/p1"}}`, []string{"p1"}, nil},
		{"Observation", `{"resourceType":"Observation","subject":{"reference":"https://other.example/fhir/Patient/p2/_history/3"}}`, []string{"p2"}, nil},
		{"Observation", `{"resourceType":"Observation","subject":{"reference":"Group/g1"}}`, nil, nil},
		{"Observation", `{"resourceType":"Observation","subject":{"reference":"p1"}}`, nil, nil},
		{"Observation", `{"resourceType":"Observation"}`, nil, nil},
		{"Immunization", `{"resourceType":"Immunization","patient":{"reference":"Patient/p3"}}`, []string{"p3"}, nil},
		{"Group", `{"resourceType":"Group"}`, nil, ErrNotInCompartment},
	}
	for _, tt := range tests {
		got, err := CompartmentPatients(tt.typ, []byte(tt.body))
		if tt.err != nil {
			require.ErrorIs(t, err, tt.err, tt.body)
			continue
		}
		require.NoError(t, err, tt.body)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tt.body, diff)
		}
	}
}
