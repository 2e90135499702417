package mapping

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// fullURL computes uuid.NewSHA1 by hand to save allocations; it must give the same ids, or
// every fullUrl (and MessageHeader and Provenance id) would change.
func TestFullURLIsNewSHA1(t *testing.T) {
	long := string(make([]byte, 300)) // longer than fullURL's stack buffer
	for _, tc := range []struct {
		control, typ string
		key          Identifier
	}{
		{"MSG00001", "Patient", Identifier{System: "urn:id:A", Value: "1"}},
		{"", "Encounter", Identifier{}},
		{"é\x00|", "MessageHeader", Identifier{System: "ADT^|FAC^", Value: "message"}},
		{long, "Observation", Identifier{System: long, Value: long}},
	} {
		b := &Builder{controlID: tc.control}
		want := "urn:uuid:" + uuid.NewSHA1(urnNamespace, []byte(tc.control+"\x00"+tc.typ+"\x00"+tc.key.System+"|"+tc.key.Value)).String()
		require.Equal(t, want, b.fullURL(tc.typ, tc.key))
	}
}

// conditionURL escapes by hand to save allocations; it must escape exactly as
// url.QueryEscape, or every conditional request URL would change.
func TestConditionURLIsQueryEscape(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for _, tc := range []Identifier{
		{System: "urn:oid:2.16.840.1.113883.19.5", Value: "12345"},
		{System: "http://example.org/fhir/sid/mrn?x=1&y=2", Value: "A B+C/D;E=F@G$H,I:J~K_L.M-N"},
		{System: "", Value: ""},
		{System: "é ü 中", Value: "\x00\x7f\xff%"},
		{System: string(all), Value: strings.Repeat("x|", 200)}, // longer than the stack buffer
	} {
		want := "Patient?identifier=" + url.QueryEscape(tc.System+"|"+tc.Value)
		require.Equal(t, want, conditionURL("Patient?identifier=", tc))
	}
}
