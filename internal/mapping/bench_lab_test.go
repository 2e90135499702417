package mapping_test

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkMapORUR01Lab measures parse + map + serialise (Bundle.AppendJSON, which TestAppendJSONIsMarshal holds equal to json.Marshal) of an ORU^R01 with 10 OBX in one
// OBR (bench_test.go's BenchmarkMapORUR01 has 2 OBR): the first 10
// results of the hamaluik CBC: NM values, units, ranges, interpretations, performer
// organisation). The target is ≥ 10,000 msg/s on one core (-cpu 1).
func BenchmarkMapORUR01Lab(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "oru_r01_hamaluik_lab.hl7"))
	if err != nil {
		b.Fatal(err)
	}
	raw = firstOBX(raw, 10)
	benchRaw(b, "Observation", raw)
}

// firstOBX keeps the segments of raw up to its n-th OBX and drops the later OBX.
func firstOBX(raw []byte, n int) []byte {
	var out []byte
	seen := 0
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\r' {
			i++
		}
		seg := raw[:min(i+1, len(raw))]
		raw = raw[min(i+1, len(raw)):]
		if len(seg) >= 3 && string(seg[:3]) == "OBX" {
			if seen++; seen > n {
				continue
			}
		}
		out = append(out, seg...)
	}
	return out
}
