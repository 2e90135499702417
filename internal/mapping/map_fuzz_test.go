package mapping_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// FuzzMap mutates the golden messages (every family: ADT, ORU, ORM, OML, VXU, SIU, MDM):
// mapping never panics, and what it maps it maps the same way twice.
func FuzzMap(f *testing.F) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range cases {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	mp := mapping.New(mapping.Options{MessageResources: true})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := hl7v2.Parse(raw)
		if err != nil {
			return
		}
		r1, err1 := mp.Map(m)
		r2, err2 := mp.Map(m)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("two mappings disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		b1, _ := json.Marshal(r1.Bundle)
		b2, _ := json.Marshal(r2.Bundle)
		if !bytes.Equal(b1, b2) {
			t.Fatal("two mappings of one message differ")
		}
		if r1.Unmapped && len(r1.Bundle.Entry) > 0 {
			t.Fatal("an unmapped message has entries")
		}
	})
}
