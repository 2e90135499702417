package mapping

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
)

// The Builder encodes resources with a faster encoder than encoding/json; it must write the
// very bytes encoding/json writes. TestGolden cannot show a difference in escaping (its
// MarshalIndent re-escapes every RawMessage), so these tests compare each resource's bytes
// with encoding/json's directly.

// TestEncoderMatchesStdlib compares, for every golden message, each entry's Resource with
// encoding/json's encoding of the same resource value.
func TestEncoderMatchesStdlib(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hl7"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			m, err := hl7v2.Parse(raw)
			require.NoError(t, err)
			b := newBuilder(m, &defaultMapper.opts)
			b.noteZSegments()
			if _, h, ok := handlerFor(m); ok {
				if h(b) != nil {
					t.Skip("unmappable")
				}
			} else if mapPatient(b) != nil {
				t.Skip("unmappable")
			}
			trailer := b.messageResources()
			bundle, err := b.bundle(trailer)
			require.NoError(t, err)
			var all []*entry
			for _, list := range [][]*entry{b.shared, b.main, trailer} {
				all = append(all, list...)
			}
			require.Len(t, bundle.Entry, len(all))
			for i, e := range all {
				want, err := stdjson.Marshal(e.resource)
				require.NoError(t, err)
				want = dropEmptyMeta(want, 0) // the Builder's one edit of the encoding
				if !bytes.Equal(want, bundle.Entry[i].Resource) {
					require.Equal(t, string(want), string(bundle.Entry[i].Resource), "entry %d (%s)", i, e.typ)
				}
			}
		})
	}
}

// TestEncoderMatchesStdlibStrings covers what the goldens may lack: HTML characters, control
// characters, invalid UTF-8, U+2028/U+2029 and non-ASCII text, in strings and decimals.
func TestEncoderMatchesStdlibStrings(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "<b>&amp;</b>", "tab\tnl\ncr\r\x00\x01\x1f\x7f",
		"bad \xff\xfe utf-8 \xc3", "sep \u2028 \u2029", "é ü ß ﬁ 😀 中文", "\ufffd", strings.Repeat("x<", 300),
	} {
		v := &patient{
			ResourceType: "Patient",
			Name:         []HumanName{{Family: s, Given: []string{s, s}, Text: s}},
			Identifier:   []Identifier{{System: s, Value: s, Type: &CodeableConcept{Text: s, Coding: []Coding{{Code: s, Display: s}}}}},
			Extension:    []Extension{{URL: s, ValueString: s, ValueBoolean: boolPtr(true), ValueCoding: &Coding{System: s}}},
		}
		q := &Quantity{Value: "-12.50", Unit: s, Code: s}
		for _, x := range []any{v, q, Range{Low: q}, []any{s, 1, 2.5, true, nil}} {
			want, err := stdjson.Marshal(x)
			require.NoError(t, err)
			got, err := json.Marshal(x)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "%q", s)
		}
	}
}
