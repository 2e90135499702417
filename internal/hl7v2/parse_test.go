package hl7v2

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mshStd = `MSH|^~\&|APP|FAC|RAPP|RFAC|20240102030405||ADT^A01^ADT_A01|CTRL1|P|2.5`

func TestParseStructure(t *testing.T) {
	msh := []string{"MSH", "|", `^~\&`, "APP", "FAC", "RAPP", "RFAC", "20240102030405", "", "ADT^A01^ADT_A01", "CTRL1", "P", "2.5"}
	pid := []string{"PID", "1", "", "123^^^MRN", "", "DOE^JOHN"}
	tests := []struct {
		name  string
		in    string
		want  [][]string
		probs []probSummary
	}{
		{"cr", mshStd + "\rPID|1||123^^^MRN||DOE^JOHN\r", [][]string{msh, pid}, nil},
		{"cr no final terminator", mshStd + "\rPID|1||123^^^MRN||DOE^JOHN", [][]string{msh, pid}, nil},
		{"lf", mshStd + "\nPID|1||123^^^MRN||DOE^JOHN\n", [][]string{msh, pid}, nil},
		{"crlf", mshStd + "\r\nPID|1||123^^^MRN||DOE^JOHN\r\n", [][]string{msh, pid}, nil},
		{"mixed", mshStd + "\r\nPID|1||123^^^MRN||DOE^JOHN\nZZ1|a\rZZ2|b", [][]string{msh, pid, {"ZZ1", "a"}, {"ZZ2", "b"}}, nil},
		{"trailing empty lines", mshStd + "\rPID|1||123^^^MRN||DOE^JOHN\r\n\r\n\n  \n", [][]string{msh, pid}, nil},
		{"bom", bom + mshStd + "\rPID|1||123^^^MRN||DOE^JOHN\r", [][]string{msh, pid},
			[]probSummary{{SeverityInfo, ProblemBOM, ""}}},
		{"leading junk", " \r\n\t" + mshStd + "\rPID|1||123^^^MRN||DOE^JOHN\r", [][]string{msh, pid},
			[]probSummary{{SeverityWarning, ProblemLeadingJunk, ""}}},
		{"blank line inside", mshStd + "\r\rPID|1||123^^^MRN||DOE^JOHN\r", [][]string{msh, pid},
			[]probSummary{{SeverityWarning, ProblemEmptySegment, ""}}},
		{"trailing empty fields kept", mshStd + "\rPID|1|||\r", [][]string{msh, {"PID", "1", "", "", ""}}, nil},
		{"segment without fields", mshStd + "\rZPV\rPID|1||123^^^MRN||DOE^JOHN", [][]string{msh, {"ZPV"}, pid}, nil},
		{"z segments", mshStd + "\rZVN|1|X^Y\rZPD|1", [][]string{msh, {"ZVN", "1", "X^Y"}, {"ZPD", "1"}}, nil},
		{"bad segment ids kept", mshStd + "\rPIDX|1\rPV|1\rpid|1", [][]string{msh, {"PIDX", "1"}, {"PV", "1"}, {"pid", "1"}},
			[]probSummary{{SeverityError, ProblemSegmentName, "PIDX"}, {SeverityError, ProblemSegmentName, "PV"}, {SeverityError, ProblemSegmentName, "pid"}}},
		{"second msh", mshStd + "\r" + mshStd + "\r", [][]string{msh, msh},
			[]probSummary{{SeverityWarning, ProblemRepeatedMSH, "MSH(2)"}}},
		{"embedded LF kept in field", mshStd + "\nOBX|1|TX|||line one\nline two, still OBX-5|F\nPID|1",
			[][]string{msh, {"OBX", "1", "TX", "", "", "line one\nline two, still OBX-5", "F"}, {"PID", "1"}},
			[]probSummary{{SeverityWarning, ProblemEmbeddedNewline, "OBX-5(1).1.1"}}},
		{"CR always terminates", mshStd + "\rOBX|1|TX|||line one\rline two|F",
			[][]string{msh, {"OBX", "1", "TX", "", "", "line one"}, {"line two", "F"}},
			[]probSummary{{SeverityError, ProblemSegmentName, "line two"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.in)
			if diff := cmp.Diff(tt.want, segFields(m)); diff != "" {
				t.Errorf("segments (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.probs, summarize(m.Problems())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDelimiters(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Delimiters
		pid   string // PID-5.1.2 decoded
		probs []probSummary
	}{
		{"standard", "MSH|^~\\&|A\rPID|1||||DOE&X^JOHN", DefaultDelimiters, "X", nil},
		{"custom", "MSH*%$!&*A\rPID*1****DOE&X%JOHN", Delimiters{'*', '%', '$', '!', '&', 0}, "X", nil},
		{"rethink custom", "MSH#!@%*#A\rPID#1####DOE*X!JOHN", Delimiters{'#', '!', '@', '%', '*', 0}, "X", nil},
		{"truncation v2.7", "MSH|^~\\&#|A\rPID|1||||DOE&X^JOHN", Delimiters{'|', '^', '~', '\\', '&', '#'}, "X", nil},
		{"short msh-2", "MSH|^~|A\rPID|1||||DOE&X^JOHN", DefaultDelimiters, "X",
			[]probSummary{{SeverityWarning, ProblemShortEncoding, "MSH-2"}}},
		{"empty msh-2", "MSH||A\rPID|1||||DOE&X^JOHN", DefaultDelimiters, "X",
			[]probSummary{{SeverityWarning, ProblemShortEncoding, "MSH-2"}}},
		{"doubled escape", "MSH|^~\\\\&|A\rPID|1||||DOE&X^JOHN", DefaultDelimiters, "X",
			[]probSummary{{SeverityWarning, ProblemDoubledEscape, "MSH-2"}}},
		{"long msh-2", "MSH|^~\\&#!|A\rPID|1||||DOE&X^JOHN", Delimiters{'|', '^', '~', '\\', '&', '#'}, "X",
			[]probSummary{{SeverityWarning, ProblemLongEncoding, "MSH-2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.in)
			if diff := cmp.Diff(tt.want, m.Delimiters()); diff != "" {
				t.Errorf("delimiters (-want +got):\n%s", diff)
			}
			if got := m.Get("PID-5.1.2"); got != tt.pid {
				t.Errorf("PID-5.1.2 = %q, want %q", got, tt.pid)
			}
			if got := m.Get("MSH-3"); got != "A" {
				t.Errorf("MSH-3 = %q, want A", got)
			}
			got := withoutCode(summarize(m.Problems()), ProblemMissingHeaderField)
			if diff := cmp.Diff(tt.probs, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if string(m.Encode()) != tt.in+"\r" {
				t.Errorf("Encode = %q, want input back", m.Encode())
			}
		})
	}
}

func TestParseFatal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    error
		loc     Location
		offset  int
		nakCode ErrorCode
	}{
		{"empty", "", ErrNoMSH, Location{Segment: "MSH"}, 0, ErrorCodeSegmentSequence},
		{"whitespace only", " \r\n", ErrNoMSH, Location{Segment: "MSH"}, 3, ErrorCodeSegmentSequence},
		{"pid first", "PID|1||123", ErrNoMSH, Location{Segment: "MSH"}, 0, ErrorCodeSegmentSequence},
		{"batch", "FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A", ErrNoMSH, Location{Segment: "MSH"}, 0, ErrorCodeSegmentSequence},
		{"lowercase msh", "msh|^~\\&|A", ErrNoMSH, Location{Segment: "MSH"}, 0, ErrorCodeSegmentSequence},
		{"msh only", "MSH", ErrShortMSH, Location{Segment: "MSH", Field: 1}, 3, ErrorCodeRequiredFieldMissing},
		{"msh then cr", bom + "MSH\rPID|1", ErrShortMSH, Location{Segment: "MSH", Field: 1}, 6, ErrorCodeRequiredFieldMissing},
		{"alnum field separator", "MSHA^~\\&A", ErrBadDelimiters, Location{Segment: "MSH", Field: 2}, 3, ErrorCodeDataType},
		{"duplicate delimiter", "MSH|^^\\&|A", ErrBadDelimiters, Location{Segment: "MSH", Field: 2}, 3, ErrorCodeDataType},
		{"space delimiter", "MSH|^ \\&|A", ErrBadDelimiters, Location{Segment: "MSH", Field: 2}, 3, ErrorCodeDataType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, fn := range []struct {
				name string
				call func([]byte) error
			}{
				{"Parse", func(b []byte) error { _, err := Parse(b); return err }},
				{"ReadHeader", func(b []byte) error { _, err := ReadHeader(b); return err }},
			} {
				err := fn.call([]byte(tt.in))
				if !errors.Is(err, tt.want) {
					t.Fatalf("%s error = %v, want %v", fn.name, err, tt.want)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("%s error %T is not a *ParseError", fn.name, err)
				}
				if diff := cmp.Diff(tt.loc, pe.Location); diff != "" {
					t.Errorf("%s location (-want +got):\n%s", fn.name, diff)
				}
				if pe.Offset != tt.offset {
					t.Errorf("%s offset = %d, want %d", fn.name, pe.Offset, tt.offset)
				}
				if got := ErrorCodeFor(err); got != tt.nakCode {
					t.Errorf("ErrorCodeFor = %d, want %d", got, tt.nakCode)
				}
			}
		})
	}
}

func TestParseStrict(t *testing.T) {
	in := mshStd + "\rPIDX|1"
	if _, err := Parse([]byte(in)); err != nil {
		t.Fatalf("lenient Parse: %v", err)
	}
	_, err := Parse([]byte(in), WithStrict())
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrStrict) {
		t.Fatalf("strict Parse error = %v, want ErrStrict", err)
	}
	if pe.Location.Segment != "PIDX" {
		t.Errorf("location = %v, want PIDX", pe.Location)
	}
	if _, err := Parse([]byte(mshStd+"\rPID|1"), WithStrict()); err != nil {
		t.Errorf("strict Parse of clean message: %v", err)
	}
}

func TestParseEscapeProblems(t *testing.T) {
	m := mustParse(t, mshStd+"\rOBX|1|TX|||ok \\T\\ \\Q\\^x\\X0\\&\\C2842\\~tail\\|F")
	want := []probSummary{
		{SeverityWarning, ProblemBadEscape, "OBX-5(1).1.1"},
		{SeverityWarning, ProblemBadEscape, "OBX-5(1).2.1"},
		{SeverityInfo, ProblemUnsupportedEscape, "OBX-5(1).2.2"},
		{SeverityWarning, ProblemBadEscape, "OBX-5(2).1.1"},
	}
	if diff := cmp.Diff(want, summarize(m.Problems())); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	// Nothing is lost: bad sequences decode to themselves.
	if got, want := m.Get("OBX-5"), "ok & \\Q\\"; got != want {
		t.Errorf("OBX-5 = %q, want %q", got, want)
	}
	if got, want := m.Get("OBX-5(2)"), "tail\\"; got != want {
		t.Errorf("OBX-5(2) = %q, want %q", got, want)
	}
}

func TestParseMissingHeaderFields(t *testing.T) {
	m := mustParse(t, "MSH|^~\\&|A||||||ADT^A01||P")
	want := []probSummary{
		{SeverityWarning, ProblemMissingHeaderField, "MSH-10"},
		{SeverityWarning, ProblemMissingHeaderField, "MSH-12"},
	}
	if diff := cmp.Diff(want, summarize(m.Problems())); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if m.HasErrors() {
		t.Error("HasErrors = true for warnings only")
	}
}

func TestParseProblemOffsets(t *testing.T) {
	in := bom + mshStd + "\rPID|1||\\Q\\"
	m := mustParse(t, in)
	for _, p := range m.Problems() {
		if p.Code == ProblemBadEscape {
			if got := in[p.Offset : p.Offset+3]; got != "\\Q\\" {
				t.Errorf("offset %d points at %q", p.Offset, got)
			}
			return
		}
	}
	t.Fatal("no bad-escape problem")
}

func TestParseDoesNotAliasInput(t *testing.T) {
	in := []byte(mshStd + "\rPID|1||123")
	m, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	if got := m.Get("PID-3"); got != "123" {
		t.Errorf("PID-3 after reusing the input buffer = %q", got)
	}
}

// TestParseManySegmentIDs crosses the fixed array that counts segment
// occurrences without allocating.
func TestParseManySegmentIDs(t *testing.T) {
	var b strings.Builder
	b.WriteString("MSH|^~\\&|A||||||ADT^A01|1|P|2.5")
	for round := 1; round <= 3; round++ {
		for i := range 40 {
			fmt.Fprintf(&b, "\rZ%02d|%d", i, round)
		}
	}
	m := mustParse(t, b.String())
	for i := range 40 {
		name := fmt.Sprintf("Z%02d", i)
		segs := m.Segments(name)
		if len(segs) != 3 {
			t.Fatalf("%s: %d segments", name, len(segs))
		}
		for k, s := range segs {
			if s.Index() != k+1 || s.Get("1") != fmt.Sprint(k+1) {
				t.Errorf("%s occurrence %d: Index %d, %s-1 %q", name, k+1, s.Index(), name, s.Get("1"))
			}
			if got := m.Get(fmt.Sprintf("%s(%d)-1", name, k+1)); got != fmt.Sprint(k+1) {
				t.Errorf("Get(%s(%d)-1) = %q", name, k+1, got)
			}
		}
	}
	if m.Segment("MSH", 1).Index() != 1 {
		t.Error("MSH index")
	}
}
