package hl7v2

import (
	"bytes"
	"testing"
)

// BenchmarkSplitBatch splits a batch of 24 ELR messages (13 KB,
// CR-terminated) and, for comparison, the same with LF line ends.
func BenchmarkSplitBatch(b *testing.B) {
	cr := readFixture(b, "batches/FileBatchMultipleMessages.hl7")
	for name, data := range map[string][]byte{"CR": cr, "LF": bytes.ReplaceAll(cr, []byte("\r"), []byte("\n"))} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SplitBatch(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
