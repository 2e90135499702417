package mapping

import (
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
