package hl7v2

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// mshCS is mshStd with MSH-18 set to cs.
func mshCS(cs string) string { return mshStd + "||||||" + cs }

// charsetProblems keeps the problems about character sets.
func charsetProblems(ps []Problem) []probSummary {
	var out []probSummary
	for _, p := range summarize(ps) {
		if strings.HasPrefix(string(p.Code), "charset-") {
			out = append(out, p)
		}
	}
	return out
}

func TestParseCharsets(t *testing.T) {
	const at = "PID-5(1).1.1" // where the name below starts
	tests := []struct {
		name    string
		msh18   string
		opts    []Option
		family  string // PID-5.1 as sent (raw bytes)
		want    string // PID-5.1 decoded
		charset string // Message.Charset
		probs   []probSummary
	}{
		{"latin-1 declared", "8859/1", nil, "M\xfcller", "Müller", "8859/1", nil},
		{"latin-1 undeclared falls back to windows-1252", "", nil, "M\xfcller", "Müller", "WINDOWS-1252",
			[]probSummary{{SeverityWarning, ProblemCharsetFallback, at}}},
		{"utf-8 declared", "UNICODE UTF-8", nil, "Müller", "Müller", "UNICODE UTF-8", nil},
		{"utf-8 undeclared is accepted", "", nil, "Müller", "Müller", "UNICODE UTF-8",
			[]probSummary{{SeverityInfo, ProblemCharsetAssumed, at}}},
		{"utf-8 under ASCII is accepted", "ASCII", nil, "Müller", "Müller", "UNICODE UTF-8",
			[]probSummary{{SeverityInfo, ProblemCharsetAssumed, at}}},
		{"utf-8 undeclared, connector says utf-8", "", []Option{WithCharset("UTF-8")}, "Müller", "Müller", "UNICODE UTF-8", nil},
		{"ascii only", "", nil, "Muller", "Muller", "ASCII", nil},
		{"ascii only, declared", "8859/1", nil, "Muller", "Muller", "8859/1", nil},
		{"windows-1252 euro undeclared", "", nil, "Caf\xe9 \x80", "Café €", "WINDOWS-1252",
			[]probSummary{{SeverityWarning, ProblemCharsetFallback, at}}},
		{"windows-1252 declared non-standard", "cp1252", nil, "\x93x\x94 \x80", "“x” €", "WINDOWS-1252", nil},
		{"windows-1252 unassigned byte kept as C1", "WINDOWS-1252", nil, "a\x81b", "a\u0081b", "WINDOWS-1252", nil},
		{"latin-1 C1 range kept as C1", "8859/1", nil, "a\x80b", "a\u0080b", "8859/1", nil},
		{"connector 8859/15", "", []Option{WithCharset("ISO-8859-15")}, "\xa4 5", "€ 5", "8859/15",
			[]probSummary{{SeverityInfo, ProblemCharsetAssumed, at}}},
		{"connector 8859/15 under ASCII", "ASCII", []Option{WithCharset("latin9")}, "\xa4 5", "€ 5", "8859/15",
			[]probSummary{{SeverityInfo, ProblemCharsetAssumed, at}}},
		{"declared charset beats connector", "8859/1", []Option{WithCharset("8859/15")}, "\xa4 5", "¤ 5", "8859/1", nil},
		{"connector 8859/15 but text is utf-8", "", []Option{WithCharset("8859/15")}, "Müller", "Müller", "UNICODE UTF-8",
			[]probSummary{{SeverityWarning, ProblemCharsetUTF8, at}}},
		{"declared latin-1 but text is utf-8", "8859/1", nil, "Müller", "Müller", "UNICODE UTF-8",
			[]probSummary{{SeverityWarning, ProblemCharsetUTF8, at}}},
		{"declared utf-8 with a latin-1 byte: repaired", "UNICODE UTF-8", nil, "M\xfcller Müller", "Müller Müller", "WINDOWS-1252",
			[]probSummary{{SeverityWarning, ProblemCharsetFallback, at}}},
		{"declared utf-8, connector fallback used for repair", "UTF8", []Option{WithCharset("8859/15")}, "\xa4 €", "€ €", "8859/15",
			[]probSummary{{SeverityWarning, ProblemCharsetFallback, at}}},
		{"unknown MSH-18", "KLINGON", nil, "M\xfcller", "Müller", "WINDOWS-1252",
			[]probSummary{{SeverityWarning, ProblemCharsetUnknown, "MSH-18"}, {SeverityWarning, ProblemCharsetFallback, at}}},
		{"unknown MSH-18, connector charset used", "KLINGON", []Option{WithCharset("8859/2")}, "\xb9", "š", "8859/2",
			[]probSummary{{SeverityWarning, ProblemCharsetUnknown, "MSH-18"}, {SeverityInfo, ProblemCharsetAssumed, at}}},
		{"utf-16 unsupported", "UNICODE UTF-16", nil, "Muller", "Muller", "ASCII",
			[]probSummary{{SeverityWarning, ProblemCharsetUnsupported, "MSH-18"}}},
		{"code extensions declared", "ISO IR6~ISO IR87", nil, "Muller", "Muller", "ASCII",
			[]probSummary{{SeverityInfo, ProblemCharsetCodeExtension, "MSH-18(2)"}}},
		{"code extensions used", "ISO IR6~ISO IR87", nil, "\x1b$B8=\x1b(B", "\x1b$B8=\x1b(B", "ASCII",
			[]probSummary{{SeverityWarning, ProblemCharsetCodeExtension, "MSH-18(2)"}}},
		{"first repetition selects", "8859/1~ISO IR87", nil, "M\xfcller", "Müller", "8859/1",
			[]probSummary{{SeverityInfo, ProblemCharsetCodeExtension, "MSH-18(2)"}}},
		{"empty extra repetition ignored", "8859/1~", nil, "M\xfcller", "Müller", "8859/1", nil},
		{"MSH-18 with spaces and case", " unicode utf-8 ", nil, "Müller", "Müller", "UNICODE UTF-8", nil},
		{"undefined byte", "8859/3", nil, "a\xa5b", "a\ufffdb", "8859/3",
			[]probSummary{{SeverityWarning, ProblemCharsetUndefined, "PID-5(1).1.1"}}},
		{"bad connector charset", "", []Option{WithCharset("EBCDIC")}, "Muller", "Muller", "ASCII",
			[]probSummary{{SeverityWarning, ProblemCharsetUnknown, "MSH-18"}}},
		{"unsupported connector charset", "", []Option{WithCharset("UTF-16")}, "M\xfcller", "Müller", "WINDOWS-1252",
			[]probSummary{{SeverityWarning, ProblemCharsetUnsupported, "MSH-18"}, {SeverityWarning, ProblemCharsetFallback, at}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mshCS(tt.msh18) + "\rPID|1||123^^^MRN||" + tt.family + "^JOHN\r"
			m := mustParse(t, in, tt.opts...)
			if got := m.Get("PID-5.1"); got != tt.want {
				t.Errorf("PID-5.1 = %q, want %q", got, tt.want)
			}
			if got := m.Charset(); got != tt.charset {
				t.Errorf("Charset = %q, want %q", got, tt.charset)
			}
			if diff := cmp.Diff(tt.probs, charsetProblems(m.Problems())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			enc := m.Encode()
			if !utf8.Valid(enc) {
				t.Errorf("Encode is not UTF-8: %q", enc)
			}
			// UTF-8 and ASCII input is used as is; everything else is
			// re-encoded as UTF-8 with MSH-18 as the sender wrote it.
			if utf8.ValidString(in) && string(enc) != in {
				t.Errorf("valid UTF-8 did not round-trip:\n%q\n%q", in, enc)
			}
			if got := m.Get("MSH-18"); got != strings.TrimSpace(strings.Split(tt.msh18, "~")[0]) && got != strings.Split(tt.msh18, "~")[0] {
				t.Errorf("MSH-18 = %q, want it as sent (%q)", got, tt.msh18)
			}
			h, err := ReadHeader([]byte(in), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m.Header(), h); diff != "" {
				t.Errorf("ReadHeader differs from Parse (-Parse +ReadHeader):\n%s", diff)
			}
		})
	}
}

// TestParseCharsetReencodes checks that decoded input encodes as UTF-8
// and that the UTF-8 reads back the same despite MSH-18 still naming the
// original charset.
func TestParseCharsetReencodes(t *testing.T) {
	in := mshCS("8859/1") + "\rPID|1||123||M\xfcller^J\xfcrgen\r"
	m := mustParse(t, in)
	want := mshCS("8859/1") + "\rPID|1||123||Müller^Jürgen\r"
	if got := string(m.Encode()); got != want {
		t.Fatalf("Encode = %q, want %q", got, want)
	}
	m2 := mustParse(t, want)
	if diff := cmp.Diff(segFields(m), segFields(m2)); diff != "" {
		t.Errorf("fields changed on re-parse (-first +second):\n%s", diff)
	}
	if got := charsetProblems(m2.Problems()); len(got) != 1 || got[0].Code != ProblemCharsetUTF8 {
		t.Errorf("re-parse problems = %v, want one %s", got, ProblemCharsetUTF8)
	}
}

// TestParseCharsetOffsets checks that problem offsets point into the input
// even when decoding changed the length of the text before them.
func TestParseCharsetOffsets(t *testing.T) {
	in := bom + mshCS("") + "\rPID|1||123||M\xfcller \x80\x80||\\Q\\|x\ny\rNTE|1|\xe9\\Q\\"
	m := mustParse(t, in)
	var seen []string
	for _, p := range m.Problems() {
		switch p.Code {
		case ProblemCharsetFallback:
			if in[p.Offset] != 0xfc {
				t.Errorf("fallback offset %d points at %q", p.Offset, in[p.Offset])
			}
		case ProblemBadEscape, ProblemEmbeddedNewline:
			n := 3
			if p.Code == ProblemEmbeddedNewline {
				n = 1
			}
			seen = append(seen, p.Location.String()+"="+in[p.Offset:p.Offset+n])
		}
	}
	want := []string{"PID-7(1).1.1=\\Q\\", "PID-8(1).1.1=\n", "NTE-2(1).1.1=\\Q\\"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("problem offsets (-want +got):\n%s", diff)
	}
}

// TestReadHeaderCharset covers non-ASCII in MSH itself: ReadHeader decodes
// the MSH line the way Parse decodes the whole message.
func TestReadHeaderCharset(t *testing.T) {
	const tail = "|HIS|H\xf4pital|LAB|FAC|20240102||ADT^A01|1|P|2.5||||||"
	tests := []struct {
		name string
		in   string
		opts []Option
		want string // MSH-4.1
	}{
		{"declared latin-1", "MSH|^~\\&" + tail + "8859/1\rPID|1", nil, "Hôpital"},
		{"undeclared latin-1", "MSH|^~\\&" + tail + "\rPID|1", nil, "Hôpital"},
		{"connector charset", "MSH|^~\\&" + tail + "\rPID|1", []Option{WithCharset("8859/2")}, "Hôpital"},
		// MSH is valid UTF-8 but the body is not: the whole message is
		// Latin-1 as declared, so MSH's bytes are decoded as Latin-1 too.
		{"decision depends on the body", "MSH|^~\\&|HIS|Hôpital|LAB|FAC|20240102||ADT^A01|1|P|2.5||||||8859/1\rPID|1||M\xfcller",
			nil, "HÃ´pital"},
		// Repair keeps valid UTF-8 where it is.
		{"repair keeps utf-8 in MSH", "MSH|^~\\&|HIS|Hôpital|LAB|FAC|20240102||ADT^A01|1|P|2.5\rPID|1||M\xfcller", nil, "Hôpital"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadHeader([]byte(tt.in), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if h.SendingFacility.NamespaceID != tt.want {
				t.Errorf("MSH-4 = %q, want %q", h.SendingFacility.NamespaceID, tt.want)
			}
			m := mustParse(t, tt.in, tt.opts...)
			if diff := cmp.Diff(m.Header(), h); diff != "" {
				t.Errorf("ReadHeader differs from Parse (-Parse +ReadHeader):\n%s", diff)
			}
		})
	}
}

func TestParseCharsetStrict(t *testing.T) {
	in := mshCS("KLINGON") + "\rPID|1||M\xfcller"
	if _, err := Parse([]byte(in), WithStrict()); err != nil {
		t.Errorf("charset warnings must not fail strict parsing: %v", err)
	}
}

func TestCanonicalCharset(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"ASCII", "ASCII", nil},
		{"ISO IR6", "ASCII", nil},
		{"US-ASCII", "ASCII", nil},
		{"UNICODE UTF-8", "UNICODE UTF-8", nil},
		{"UTF-8", "UNICODE UTF-8", nil},
		{"utf8", "UNICODE UTF-8", nil},
		{"8859/1", "8859/1", nil},
		{"ISO-8859-1", "8859/1", nil},
		{"ISO_8859-1", "8859/1", nil},
		{"ISO8859-1", "8859/1", nil},
		{"iso 8859-1", "8859/1", nil},
		{"Latin1", "8859/1", nil},
		{"LATIN-1", "8859/1", nil},
		{"8859/2", "8859/2", nil},
		{"8859/5", "8859/5", nil},
		{"8859/9", "8859/9", nil},
		{"Latin5", "8859/9", nil},
		{"8859/15", "8859/15", nil},
		{"ISO-8859-15", "8859/15", nil},
		{"WINDOWS-1252", "WINDOWS-1252", nil},
		{"windows1252", "WINDOWS-1252", nil},
		{"CP1252", "WINDOWS-1252", nil},
		{"UNICODE UTF-16", "", ErrUnsupportedCharset},
		{"UTF-16", "", ErrUnsupportedCharset},
		{"UNICODE", "", ErrUnsupportedCharset},
		{"GB 18030-2000", "", ErrUnsupportedCharset},
		{"8859/10", "", ErrUnknownCharset},
		{"EBCDIC", "", ErrUnknownCharset},
		{"", "", ErrUnknownCharset},
		{strings.Repeat("A", 100), "", ErrUnknownCharset},
	}
	for _, tt := range tests {
		got, err := CanonicalCharset(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("CanonicalCharset(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestCharsetTablesAreUTF8 checks every supported single-byte table: each
// byte decodes to valid UTF-8 without ASCII bytes (so decoding cannot
// create delimiters or terminators), and U+FFFD only where the charset
// truly leaves a printable position undefined.
func TestCharsetTablesAreUTF8(t *testing.T) {
	seen := map[*charset]bool{}
	for _, cs := range charsets {
		if cs.kind != charsetSingleByte || seen[cs] {
			continue
		}
		seen[cs] = true
		for i, s := range cs.table() {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) != 1 || s[0] < 0x80 {
				t.Errorf("%s: byte 0x%02X decodes to %q", cs.name, 0x80+i, s)
			}
			if s == "\ufffd" && 0x80+i < 0xa0 {
				t.Errorf("%s: C1 byte 0x%02X decodes to U+FFFD", cs.name, 0x80+i)
			}
		}
	}
	if len(seen) != 11 {
		t.Errorf("%d single-byte charsets, want 11 (8859/1-9, 8859/15, windows-1252)", len(seen))
	}
}

func TestIndexNonASCII(t *testing.T) {
	for n := 0; n < 40; n++ {
		for k := -1; k < n; k++ {
			b := bytes.Repeat([]byte{'a'}, n)
			if k >= 0 {
				b[k] = 0x80
			}
			for from := 0; from <= n; from++ {
				want := -1
				if k >= from {
					want = k
				}
				if got := indexNonASCII(b, from); got != want {
					t.Fatalf("indexNonASCII(len %d, bad at %d, from %d) = %d, want %d", n, k, from, got, want)
				}
			}
		}
	}
}

// TestParseDecodeAllocations checks what decoding costs: nothing for ASCII
// input (no new allocations compared to before charsets were handled is
// checked by BenchmarkParse), exactly one more allocation for declared
// Latin-1 (the decoded text), and a few more when a problem is reported.
func TestParseDecodeAllocations(t *testing.T) {
	ascii := readFixture(t, "bench/oru_r01_cbc.hl7")
	declared := latin1Fixture(t)
	undeclared := bytes.Replace(declared, []byte("|8859/1|"), []byte("||"), 1)
	a := testing.AllocsPerRun(20, func() { _, _ = Parse(ascii) })
	d := testing.AllocsPerRun(20, func() { _, _ = Parse(declared) })
	u := testing.AllocsPerRun(20, func() { _, _ = Parse(undeclared) })
	if !raceEnabled && (d != a+1 || u > a+10) {
		t.Errorf("allocations: ASCII %v, declared Latin-1 %v (want %v), undeclared %v (want <= %v)", a, d, a+1, u, a+10)
	}
	m, err := Parse(undeclared)
	if err != nil || m.Charset() != "WINDOWS-1252" || m.Get("PID-5.1") != "Jönes" {
		t.Errorf("undeclared fixture: %v %q %q", err, m.Charset(), m.Get("PID-5.1"))
	}
}

// latin1Fixture is the 10 KB ORU with MSH-18 8859/1 and Latin-1 letters
// in names and observation text (about 2% of the bytes).
func latin1Fixture(t testing.TB) []byte {
	b := readFixture(t, "bench/oru_r01_cbc.hl7")
	b = bytes.Replace(b, []byte("|AL|NE|||||"), []byte("|AL|NE||8859/1|||"), 1)
	for _, r := range [][2]string{{"Jones", "J\xf6nes"}, {"William", "Guillaume"}, {"in ", "\xefn "}, {"ea", "\xe9a"}, {"ou", "o\xf9"}} {
		b = bytes.ReplaceAll(b, []byte(r[0]), []byte(r[1]))
	}
	return b
}
