package hl7v2

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSplitBatch checks that SplitBatch never panics, fails only with
// ErrNoMSH and only when it found no message, and that its result keeps
// the invariants of checkBatchInvariants: messages start with MSH, are
// made of the input's segments in order, parse into the segments found,
// and sit in the batches that claim them.
func FuzzSplitBatch(f *testing.F) {
	files, _ := filepath.Glob("testdata/batches/*.hl7")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rBTS|1\rFTS|1\r",
		"FHS#^~\\&\nMSH|^~\\&|A\nOBX|1|TX|||a\nb\n\nBTS#x\nFTS",
		bom + " \r\nBHS|1\r\nMSH\r\nBTS|\r\nBTS|2\r\nFTS|-1\r\nFTS|1",
		"MSH|^~\\&\rFHS\rMSH|^~\\&\rBHS|^~\\&|a~b|c^d^e^f\rBHS\rFTS|1\rMSH*",
		"PID|1\r\rBTS|0\rMSH|^~\\&|A\r\nPV|x\nMSHX|\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bf, err := SplitBatch(data)
		if bf == nil {
			t.Fatal("nil BatchFile")
		}
		if err != nil {
			if !errors.Is(err, ErrNoMSH) || len(bf.Messages) != 0 {
				t.Fatalf("err %v with %d messages", err, len(bf.Messages))
			}
		} else if len(bf.Messages) == 0 {
			t.Fatal("no messages and no error")
		}
		checkBatchInvariants(t, data, bf)
		for _, p := range bf.Problems {
			_ = bf.Line(p.Offset)
			_ = p.String()
		}
	})
}
