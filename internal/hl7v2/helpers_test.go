package hl7v2

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// segFields returns each segment's encoded fields, the structure tests compare.
func segFields(m *Message) [][]string {
	out := make([][]string, len(m.segs))
	for i, s := range m.segs {
		out[i] = append([]string(nil), s.fields...)
	}
	return out
}

type probSummary struct {
	Severity Severity
	Code     ProblemCode
	Location string
}

func summarize(ps []Problem) []probSummary {
	var out []probSummary
	for _, p := range ps {
		out = append(out, probSummary{p.Severity, p.Code, p.Location.String()})
	}
	return out
}

// withoutCode drops problems with the given codes, so tests about one
// topic are not coupled to unrelated warnings.
func withoutCode(ps []probSummary, codes ...ProblemCode) []probSummary {
	var out []probSummary
next:
	for _, p := range ps {
		for _, c := range codes {
			if p.Code == c {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

var (
	lineSplit = regexp.MustCompile(`\r\n|\r|\n`)
	blankLine = regexp.MustCompile(`^[ \t]*$`)
)

// normalize is an independent model of what Encode should produce for a
// well-formed input: BOM and leading whitespace dropped, any terminator
// turned into CR, blank lines dropped, CR after the last segment.
func normalize(b []byte) []byte {
	if len(b) >= 3 && string(b[:3]) == bom {
		b = b[3:]
	}
	var out []byte
	for _, l := range lineSplit.Split(string(b), -1) {
		if blankLine.MatchString(l) {
			continue
		}
		out = append(out, l...)
		out = append(out, '\r')
	}
	return out
}

func mustParse(t testing.TB, s string, opts ...Option) *Message {
	t.Helper()
	m, err := Parse([]byte(s), opts...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
