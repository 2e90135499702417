package mapping_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// BenchmarkMapADTA01 and BenchmarkMapORUR01 measure what the Map activity does per message:
// parse, map, and serialise the Bundle (with AppendJSON, as MapMessage should). Targets on one
// core (-cpu 1): ≥ 20,000 ADT^A01/s and ≥ 10,000 ORU^R01 (10 OBX)/s.
func BenchmarkMapADTA01(b *testing.B) {
	benchMap(b, "Encounter", "adt_a01_full.hl7", "adt_a01_raster.hl7")
}

// The ORU^R01 case is a real lab result with 2 OBR and 10 OBX, kept in testdata/bench, outside
// the golden glob (microsoft/FHIR-Converter SampleData-Hl7v2/LAB-ORU-1.hl7, MIT, BOM removed).
func BenchmarkMapORUR01(b *testing.B) { benchMap(b, "Observation", "bench/oru_r01_10obx.hl7") }

// benchMap runs each message in its own sub-benchmark.
func benchMap(b *testing.B, want string, files ...string) {
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(file), ".hl7"), func(b *testing.B) { benchRaw(b, want, raw) })
	}
}

// benchRaw measures parse + map + AppendJSON of raw, whose Bundle must hold a want entry (a
// message that lost its family's mapping would measure nothing worth reporting).
func benchRaw(b *testing.B, want string, raw []byte) {
	if !maps(b, raw, want) {
		b.Fatalf("no %s mapped", want)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	var out []byte
	for b.Loop() {
		m, err := hl7v2.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		bundle, err := mapping.Map(m)
		if err != nil {
			b.Fatal(err)
		}
		if out, err = bundle.AppendJSON(out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func maps(b *testing.B, raw []byte, typ string) bool {
	m, err := hl7v2.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := mapping.Map(m)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range bundle.Entry {
		if e.Request != nil && strings.HasPrefix(e.Request.URL, typ) {
			return true
		}
	}
	return false
}

// TestAppendJSONIsMarshal checks, on every golden message, that the fast serialisation the
// benchmark measures writes the same bytes as json.Marshal.
func TestAppendJSONIsMarshal(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "*.hl7"))
	require.NoError(t, err)
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hl7"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			bundle := mapFile(t, raw)
			want, err := json.Marshal(bundle)
			require.NoError(t, err)
			got, err := bundle.AppendJSON(nil)
			require.NoError(t, err)
			if !bytes.Equal(want, got) {
				require.Equal(t, string(want), string(got))
			}
		})
	}
}
