package hl7v2

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// batchCases holds, for every file of CDCgov/hl7-pet's batchFiles
// directory, how many messages SplitBatch finds and the codes of the
// envelope problems (Info ones left out: they are layout, such as blank
// lines). noMSH marks files with no message at all.
var batchCases = []struct {
	file  string
	msgs  int
	codes []ProblemCode
	noMSH bool
}{
	{file: "FileBatchSingleMessage.hl7", msgs: 1},
	{file: "FileBatchSingleMessageNoBHS.hl7", msgs: 1},
	{file: "FileBatchSingleMessageNoFHS.hl7", msgs: 1},
	{file: "FileBatchSingleMessageLargeFields.hl7", msgs: 1},
	{file: "FileBatchMultipleMessages.hl7", msgs: 24},
	{file: "FileBatchMultipleMessagesnoFHS.hl7", msgs: 2},
	{file: "FileBatchMultipleBHS.hl7", msgs: 2}, // two complete batches: valid grammar
	{file: "MultipleMSHWithoutBHS.hl7", msgs: 5},
	{file: "TwoMSH.hl7", msgs: 2},
	{file: "MSHNoOBR.hl7", msgs: 1},
	{file: "InvalidFHS.hl7", msgs: 1},
	{file: "InvalidBHS.hl7", msgs: 1},
	{file: "FileBatchEmptyLines.hl7", msgs: 4,
		codes: []ProblemCode{ProblemLeadingJunk, ProblemEmptySegment, ProblemEmptySegment}},
	{file: "FileBatchExtraSegs.hl7", msgs: 6,
		codes: []ProblemCode{ProblemLeadingJunk, ProblemBatchDelimiters, ProblemBatchDelimiters,
			ProblemEmptySegment, ProblemEmptySegment, ProblemEmptySegment, ProblemEmptySegment, ProblemBatchCountMismatch}},
	{file: "FileBatchExtraFHSFields.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchExtraField}},
	{file: "FileBatchInvalidBTSCount.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchCountMismatch}},
	{file: "FileBatchInvalidFTSCount.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchFileCountMismatch}},
	{file: "FileBatchInvalidRepeatBHS3.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchRepeatedField, ProblemBatchCountMismatch}},
	{file: "FileBatchMultipleBTS.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchUnpairedBTS}},
	{file: "FileBatchMultipleFHS.hl7", msgs: 2, codes: []ProblemCode{ProblemBatchRepeatedFHS}},
	{file: "FileBatchMultipleFTS.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchRepeatedFTS}},
	{file: "FileBatchMultipleMessagesMSHAfterBTS.hl7", msgs: 3, codes: []ProblemCode{ProblemBatchMSHAfterBTS}},
	{file: "FileBatchMultipleMessagesMSHBeforeBHS.hl7", msgs: 5, codes: []ProblemCode{ProblemBatchMSHBeforeBHS, ProblemBatchUnpairedFTS}},
	{file: "FileBatchNoBTS.hl7", msgs: 2, codes: []ProblemCode{ProblemBatchMissingBTS}},
	{file: "FileBatchNoFTS.hl7", msgs: 2, codes: []ProblemCode{ProblemBatchMissingFTS}},
	{file: "FileFTSONLY.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchMissingBTS}},
	{file: "InvalidBTS.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchCountMissing}},
	{file: "InvalidFTS.hl7", msgs: 1, codes: []ProblemCode{ProblemBatchCountMissing}},
	{file: "MultipleBHSandBTS.hl7", msgs: 5, codes: []ProblemCode{ProblemBatchMissingBTS, ProblemBatchCountMismatch,
		ProblemBatchMSHAfterBTS, ProblemBatchUnpairedBTS, ProblemBatchFileCountMismatch}},
	{file: "FileBatchMissingMSH.hl7", noMSH: true, codes: []ProblemCode{ProblemBatchStraySegment}},
	{file: "emptyBHS.hl7", noMSH: true, codes: []ProblemCode{ProblemBatchEmpty}},
	{file: "emptyFHS.hl7", noMSH: true, codes: []ProblemCode{ProblemBatchFileCountMismatch}},
	{file: "emptyFHSBHS.hl7", noMSH: true, codes: []ProblemCode{ProblemBatchEmpty}},
}

// sharedReferenceDir returns the shared reference collection, or "" when this
// checkout does not have it.
func sharedReferenceDir() string {
	dir := os.Getenv("HL7V2_REFERENCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "reference")
	}
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func TestSplitBatchCorpus(t *testing.T) {
	dirs := []string{filepath.Join("testdata", "batches")}
	if ref := sharedReferenceDir(); ref != "" {
		dirs = append(dirs, filepath.Join(ref, "CDCgov-hl7-pet", "test-resources", "batchFiles"))
	} else {
		t.Log("reference corpus not available; checking the copies in testdata/batches only")
	}
	for _, dir := range dirs {
		ran := 0
		for _, tc := range batchCases {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if errors.Is(err, os.ErrNotExist) {
				continue // testdata holds a subset
			}
			if err != nil {
				t.Fatal(err)
			}
			ran++
			t.Run(filepath.Base(dir)+"/"+tc.file, func(t *testing.T) {
				f, err := SplitBatch(data)
				if tc.noMSH != errors.Is(err, ErrNoMSH) {
					t.Fatalf("err = %v, want ErrNoMSH: %v", err, tc.noMSH)
				}
				if len(f.Messages) != tc.msgs {
					t.Errorf("%d messages, want %d", len(f.Messages), tc.msgs)
				}
				var codes []ProblemCode
				for _, p := range f.Problems {
					if p.Severity > SeverityInfo {
						codes = append(codes, p.Code)
					}
				}
				if diff := cmp.Diff(tc.codes, codes); diff != "" {
					t.Errorf("problem codes (-want +got):\n%s\nall: %v", diff, f.Problems)
				}
				checkBatchInvariants(t, data, f)
				for i, m := range f.Messages {
					if _, err := Parse(m.Data); err != nil {
						t.Errorf("message %d does not parse: %v", i+1, err)
					}
				}
			})
		}
		if ran == 0 {
			t.Errorf("%s: no batch file found", dir)
		}
	}
}

// checkBatchInvariants checks what must hold for any input: every message
// starts with MSH, its segments are segments of the input in order, they
// parse into the same segments, and the batches partition the messages
// they claim.
func checkBatchInvariants(t *testing.T, data []byte, f *BatchFile) {
	t.Helper()
	pos := 0
	for i, m := range f.Messages {
		if !bytes.HasPrefix(m.Data, []byte("MSH")) {
			t.Fatalf("message %d does not start with MSH: %q", i+1, truncate(string(m.Data), 40))
		}
		if len(m.Data) == 0 || m.Data[len(m.Data)-1] != '\r' {
			t.Fatalf("message %d is not CR-terminated", i+1)
		}
		if cap(m.Data) != len(m.Data) {
			t.Fatalf("message %d: capacity %d exceeds length %d (appends would write into the input)", i+1, cap(m.Data), len(m.Data))
		}
		if m.Offset < pos || !bytes.HasPrefix(data[m.Offset:], []byte("MSH")) {
			t.Fatalf("message %d: offset %d does not point at its MSH after %d", i+1, m.Offset, pos)
		}
		segs := bytes.Split(m.Data[:len(m.Data)-1], []byte("\r"))
		for _, seg := range segs {
			k := bytes.Index(data[pos:], seg)
			if k < 0 {
				t.Fatalf("message %d: segment %q is not in the input after offset %d", i+1, truncate(string(seg), 40), pos)
			}
			pos += k + len(seg)
		}
		if msg, err := Parse(m.Data); err == nil && len(msg.segs) != len(segs) {
			t.Fatalf("message %d: Parse found %d segments, SplitBatch %d", i+1, len(msg.segs), len(segs))
		}
		if m.Batch >= len(f.Batches) || m.Batch >= 0 && (i < f.Batches[m.Batch].Start || i >= f.Batches[m.Batch].End) {
			t.Fatalf("message %d: batch %d does not hold it", i+1, m.Batch)
		}
	}
	for i, b := range f.Batches {
		if b.BHS == nil || b.Start > b.End || b.End > len(f.Messages) {
			t.Fatalf("batch %d: BHS %v, messages [%d, %d) of %d", i, b.BHS, b.Start, b.End, len(f.Messages))
		}
		for j := b.Start; j < b.End; j++ {
			if f.Messages[j].Batch != i {
				t.Fatalf("batch %d claims message %d, which says batch %d", i, j+1, f.Messages[j].Batch)
			}
		}
	}
	for _, p := range f.Problems {
		if p.Code == "" || p.Severity == 0 || p.Offset < 0 || p.Offset > len(data) {
			t.Fatalf("malformed problem %+v", p)
		}
	}
	if !slices.IsSortedFunc(f.Problems, func(a, b Problem) int { return a.Offset - b.Offset }) {
		t.Fatalf("problems not in input order: %v", f.Problems)
	}
}

func TestSplitBatchEnvelope(t *testing.T) {
	in := "FHS|^~\\&|APP|FAC|||20250101||file1\r" +
		"BHS|^~\\&|APP|FAC\r" +
		"MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\rPID|1||42\r" +
		"MSH|^~\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\rPID|1||43\r" +
		"BTS|2|two\r" +
		"FTS|1\r"
	f, err := SplitBatch([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Problems) != 0 {
		t.Errorf("problems: %v", f.Problems)
	}
	if f.FHS == nil || f.FHS.Get("9") != "file1" || f.FHS.Get("2") != "^~\\&" || f.FTS == nil {
		t.Fatalf("FHS %v, FTS %v", f.FHS, f.FTS)
	}
	if n, ok := f.DeclaredBatchCount(); n != 1 || !ok {
		t.Errorf("DeclaredBatchCount = %d, %v", n, ok)
	}
	if len(f.Batches) != 1 {
		t.Fatalf("%d batches", len(f.Batches))
	}
	b := f.Batches[0]
	if n, ok := b.DeclaredCount(); n != 2 || !ok || b.BTS.Get("2") != "two" || b.BHS.Get("3") != "APP" {
		t.Errorf("batch %+v: count %d %v", b, n, ok)
	}
	if b.Start != 0 || b.End != 2 || f.Messages[1].Batch != 0 {
		t.Errorf("batch holds [%d, %d)", b.Start, b.End)
	}
	want := "MSH|^~\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\rPID|1||43\r"
	if got := string(f.Messages[1].Data); got != want {
		t.Errorf("message 2 = %q, want %q", got, want)
	}
	checkBatchInvariants(t, []byte(in), f)
}

func TestSplitBatchSlicesInput(t *testing.T) {
	in := []byte("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rPID|2\r")
	f, err := SplitBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	if &f.Messages[0].Data[0] != &in[0] || &f.Messages[1].Data[0] != &in[17] {
		t.Error("CR-terminated messages were copied instead of sliced")
	}
	_ = append(f.Messages[0].Data, 'X') // must not overwrite message 2
	if in[17] != 'M' {
		t.Error("appending to a message wrote into the input")
	}
}

func TestSplitBatchLineEnds(t *testing.T) {
	for name, in := range map[string]string{
		"LF":    "MSH|^~\\&|A\nPID|1\nMSH|^~\\&|B\nPID|2\n",
		"CRLF":  "MSH|^~\\&|A\r\nPID|1\r\nMSH|^~\\&|B\r\nPID|2\r\n",
		"mixed": "MSH|^~\\&|A\r\nPID|1\nMSH|^~\\&|B\rPID|2",
		"BOM":   bom + "MSH|^~\\&|A\nPID|1\nMSH|^~\\&|B\nPID|2",
	} {
		t.Run(name, func(t *testing.T) {
			f, err := SplitBatch([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range f.Messages {
				got = append(got, string(m.Data))
			}
			want := []string{"MSH|^~\\&|A\rPID|1\r", "MSH|^~\\&|B\rPID|2\r"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			for _, p := range f.Problems {
				if p.Severity > SeverityInfo {
					t.Errorf("problem %v", p)
				}
			}
		})
	}
}

// A bare LF inside OBX-5 text stays in the field, as in Parse: it must not
// start a new segment, let alone a new message.
func TestSplitBatchEmbeddedNewline(t *testing.T) {
	in := "MSH|^~\\&|A\nOBX|1|TX|||line one\nline two\nMSH|^~\\&|B\nPID|2\n"
	f, err := SplitBatch([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Messages) != 2 || string(f.Messages[0].Data) != "MSH|^~\\&|A\rOBX|1|TX|||line one\nline two\r" {
		t.Fatalf("messages: %+v", f.Messages)
	}
	m, err := Parse(f.Messages[0].Data)
	if err != nil || m.Get("OBX-5") != "line one\nline two" {
		t.Fatalf("OBX-5 = %q, %v", m.Get("OBX-5"), err)
	}
}

func TestSplitBatchProblems(t *testing.T) {
	const msh = "MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\r"
	tests := []struct {
		name  string
		in    string
		msgs  int
		codes []ProblemCode
		locs  []string
		lines []int
	}{
		{"fhs not first", msh + "FHS|^~\\&\r" + msh + "FTS|1\r", 2,
			[]ProblemCode{ProblemBatchFHSNotFirst}, []string{"FHS"}, []int{2}},
		{"stray between batches", "BHS|^~\\&\r" + msh + "BTS|1\rNTE|1|x\rNTE|2|y\rBHS|^~\\&\r" + msh + "BTS|1\r", 2,
			[]ProblemCode{ProblemBatchStraySegment}, []string{"NTE"}, []int{4}},
		{"after fts", "FHS|^~\\&\r" + msh + "FTS|1\r" + msh + msh, 3,
			[]ProblemCode{ProblemBatchAfterFTS}, []string{"MSH(2)"}, []int{4}},
		{"empty batch among others", "BHS|^~\\&\rBTS|0\rBHS|^~\\&\r" + msh + "BTS|1\r", 1,
			[]ProblemCode{ProblemBatchEmpty}, []string{"BHS"}, []int{2}},
		{"count not a number", "BHS|^~\\&\r" + msh + "BTS|one\r", 1,
			[]ProblemCode{ProblemBatchCountInvalid}, []string{"BTS-1"}, []int{3}},
		{"missing bts at end", "BHS|^~\\&\r" + msh + "PID|1\r", 1,
			[]ProblemCode{ProblemBatchMissingBTS}, []string{"BHS"}, []int{4}},
		{"implicit batch counts one", "FHS|^~\\&\r" + msh + msh + "FTS|1\r", 2, nil, nil, nil},
		{"extra BTS field", "BHS|^~\\&\r" + msh + "BTS|1|c|3|four\r", 1,
			[]ProblemCode{ProblemBatchExtraField}, []string{"BTS-4"}, []int{3}},
		{"FHS fields by version", "FHS|^~\\&|||||||||||13\r" + msh + "FTS|1\r", 1,
			[]ProblemCode{ProblemBatchExtraField}, []string{"FHS-13"}, []int{1}},
		{"FHS 13 fields in v2.9", "FHS|^~\\&|||||||||||13\r" + "MSH|^~\\&|A||||||ADT^A01|1|P|2.9\r" + "FTS|1\r", 1, nil, nil, nil},
		{"unusable FHS delimiters", "FHS|1|CDC\r" + msh + "FTS|1\r", 1,
			[]ProblemCode{ProblemBatchDelimiters}, []string{"FHS-2"}, []int{1}},
		{"message delimiters differ", "FHS#^~\\&\r" + msh + "FTS#1\r", 1,
			[]ProblemCode{ProblemBatchDelimiters}, []string{"MSH-2"}, []int{2}},
		{"blank line inside message", "MSH|^~\\&|A\r\rPID|1\r", 1,
			[]ProblemCode{ProblemEmptySegment}, []string{""}, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := SplitBatch([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Messages) != tc.msgs {
				t.Errorf("%d messages, want %d", len(f.Messages), tc.msgs)
			}
			var codes []ProblemCode
			var locs []string
			var lines []int
			for _, p := range f.Problems {
				codes = append(codes, p.Code)
				locs = append(locs, p.Location.String())
				lines = append(lines, f.Line(p.Offset))
			}
			if diff := cmp.Diff(tc.codes, codes); diff != "" {
				t.Errorf("codes (-want +got):\n%s\n%v", diff, f.Problems)
			}
			if diff := cmp.Diff(tc.locs, locs); diff != "" {
				t.Errorf("locations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.lines, lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			checkBatchInvariants(t, []byte(tc.in), f)
		})
	}
}

func TestSplitBatchDelimiters(t *testing.T) {
	// The envelope's delimiters come from FHS, then BHS, then MSH.
	for in, want := range map[string]string{
		"FHS#^~\\&\rBHS|!~\\&\rMSH*^~\\&\r": "#^~\\&",
		"BHS|!~\\&\rMSH*^~\\&\r":            "|!~\\&",
		"MSH*^~\\&\r":                       "*^~\\&",
		"FHS|1\rMSH*^~\\&\r":                "*^~\\&",
	} {
		f, err := SplitBatch([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := envelopeDelimText(f.Delimiters); got != want {
			t.Errorf("%q: delimiters %s, want %s", in, got, want)
		}
	}
	// BTS is split with its batch's field separator.
	f, err := SplitBatch([]byte("BHS#^~\\&\rMSH#^~\\&\rBTS#1#comment\r"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := f.Batches[0].DeclaredCount(); n != 1 || !ok || f.Batches[0].BTS.Get("2") != "comment" || len(f.Problems) != 0 {
		t.Errorf("count %d %v, BTS-2 %q, problems %v", n, ok, f.Batches[0].BTS.Get("2"), f.Problems)
	}
}

func TestSplitBatchNoMSH(t *testing.T) {
	for _, in := range []string{"", "\r\n \n", bom, "FHS|^~\\&\rFTS|0\r", "PID|1\r"} {
		f, err := SplitBatch([]byte(in))
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrNoMSH) || pe.Location.Segment != "MSH" {
			t.Errorf("%q: err = %v, want a *ParseError wrapping ErrNoMSH", in, err)
		}
		if f == nil || len(f.Messages) != 0 {
			t.Errorf("%q: BatchFile %v", in, f)
		}
	}
}

func TestBatchFileLine(t *testing.T) {
	f, _ := SplitBatch([]byte("MSH|^~\\&\r\nPID|1\rOBX|1\n\nNTE|1"))
	for off, want := range map[int]int{0: 1, 9: 1, 10: 2, 11: 2, 16: 3, 22: 4, 23: 5, 27: 5, 100: 5} {
		if got := f.Line(off); got != want {
			t.Errorf("Line(%d) = %d, want %d", off, got, want)
		}
	}
}

func TestSplitBatchBlankLineNamesMessage(t *testing.T) {
	f, _ := SplitBatch([]byte("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r\rPID|2\r"))
	if len(f.Problems) != 1 || f.Problems[0].Message != "blank line inside message 2 skipped" || f.Line(f.Problems[0].Offset) != 4 {
		t.Errorf("problems %v", f.Problems)
	}
}
