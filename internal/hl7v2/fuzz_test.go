package hl7v2

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/messages/*.hl7")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"MSH|^~\\&|A\rPID|1||x\\T\\y^z~w&v",
		"MSH*%$!&*A\nPID*1",
		"MSH|^~\\\\&|A\r\nOBX|1|TX|||a\nb\n\nPID|1",
		bom + " \nMSH|^~\\&#|A|\\P\\|\\X41\\|\\.sp 3\\",
		"MSH|",
		"MSH|^",
		// Character sets: declared, undeclared, mislabelled, extended.
		"MSH|^~\\&|A|H\xf4p||||||||2.5||||||8859/1\rPID|1||M\xfcller",
		"MSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\rPID|1||M\xfcller \x80\x81\\X\\|",
		"MSH|^~\\&|A|Hôp||||||||2.5||||||8859/1\rPID|1||M\xfcller",
		"MSH|^~\\&|A||||||||2.5||||||ISO IR6~ISO IR87\rPID|1||\x1b$B8=\x1b(B",
		"MSH|^~\\&|A||||||||2.5||||||8859/3\rPID|1||\xa5\xc3\xa9",
		// Groups: recovery and unexpected segments.
		"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\rPID|1\rPV1|1\rNK1|1\rOBX|1\rZZZ|1\rSPM|1\rPID|2\rORC|1",
		"MSH|^~\\&|A||||||SIU^S12|1|P|2.5\rSCH|1\rAIG|1\rAIS|1\rRGS|1\rNTE|1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		h, herr := ReadHeader(data)
		if (err == nil) != (herr == nil) {
			t.Fatalf("Parse err %v, ReadHeader err %v", err, herr)
		}
		if err != nil {
			return
		}
		// Parse and ReadHeader share mshEnd's IndexByte shortcut; it must
		// agree with the general line rule.
		if start, _, err := findMSH(data); err == nil {
			want, _, _ := lineEnd(data, start, data[min(start+3, len(data)-1)])
			if got := mshEnd(data, start); got != want {
				t.Fatalf("mshEnd = %d, lineEnd = %d", got, want)
			}
		}
		if diff := cmp.Diff(m.Header(), h); diff != "" {
			t.Fatalf("ReadHeader differs from Parse (-Parse +ReadHeader):\n%s", diff)
		}
		// The same holds with a connector charset, which changes decoding.
		opt := WithCharset("8859/15")
		if m15, err := Parse(data, opt); err != nil {
			t.Fatalf("Parse with WithCharset: %v", err)
		} else if h15, _ := ReadHeader(data, opt); !cmp.Equal(m15.Header(), h15) {
			t.Fatalf("with WithCharset, ReadHeader differs from Parse:\n%s", cmp.Diff(m15.Header(), h15))
		}
		if m.Charset() == "" {
			t.Fatal("Parse left Charset empty")
		}
		for _, p := range m.Problems() {
			if p.Offset > len(data) {
				t.Fatalf("problem offset %d beyond input (%d bytes): %v", p.Offset, len(data), p)
			}
		}
		g, _ := m.Groups()
		if msg := checkGroupTree(m, g); msg != "" {
			t.Fatalf("Groups: %s\n%s", msg, g)
		}
		// Whatever the input charset, the message holds UTF-8, and
		// encoding and re-parsing keep it (MSH-18 may still name a
		// single-byte charset: valid UTF-8 is read as UTF-8 then).
		enc := m.Encode()
		if !utf8.Valid(enc) {
			t.Fatalf("Encode is not UTF-8: %q", enc)
		}
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if diff := cmp.Diff(segFields(m), segFields(m2)); diff != "" {
			t.Fatalf("fields changed across Encode/Parse (-first +second):\n%s", diff)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%q\n%q", enc, enc2)
		}
		// Every accessor must cope with whatever was parsed.
		for _, s := range m.Segments("") {
			for n, fl := range s.Fields() {
				for _, rep := range fl.Repetitions() {
					for _, c := range rep.Components() {
						for range c.Subcomponents() {
						}
					}
				}
				l := s.Location()
				l.Field = n
				_, _ = m.Lookup(l.String())
			}
		}
		// A value set anywhere survives encoding, escaped.
		last := m.segs[len(m.segs)-1]
		if last.header {
			return
		}
		const v = "v^|&~\\\r\n#x"
		if err := last.Set("2(2).3.2", v); err != nil {
			t.Fatalf("Set: %v", err)
		}
		m3, err := Parse(m.Encode())
		if err != nil {
			t.Fatalf("re-parse after Set: %v", err)
		}
		got := m3.segs[len(m3.segs)-1].Get("2(2).3.2")
		if got != v {
			t.Fatalf("after Set, Get = %q, want %q (segment %q)", got, v, m3.segs[len(m3.segs)-1].Raw())
		}
	})
}

func FuzzEscape(f *testing.F) {
	f.Add("plain", []byte(`|^~\&`))
	f.Add("a|b^c&d~e\\f\r\n#", []byte(`|^~\&#`))
	f.Add("x*y", []byte(`*%$!&`))
	f.Fuzz(func(t *testing.T, s string, delims []byte) {
		if len(delims) < 5 {
			return
		}
		d := Delimiters{delims[0], delims[1], delims[2], delims[3], delims[4], 0}
		if len(delims) > 5 {
			d.Truncation = delims[5]
		}
		if d.Validate() != nil {
			return
		}
		e := d.EscapeValue(s)
		for i := 0; i < len(e); i++ {
			if c := e[i]; c != d.Escape && d.isSpecial(c) {
				t.Fatalf("EscapeValue(%q) = %q contains special %q", s, e, c)
			}
		}
		if got := d.UnescapeValue(e); got != s {
			t.Fatalf("UnescapeValue(EscapeValue(%q)) = %q via %q", s, got, e)
		}
		_ = d.UnescapeValue(s) // arbitrary input must not panic
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024", "20240229130759.1234-0530", "20240101+0200", "202402291307"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, p, err := ParseTime(s)
		if err != nil {
			return
		}
		out := FormatTime(ts, p)
		ts2, p2, err := ParseTime(out)
		if err != nil || p2 != p || FormatTime(ts2, p2) != out {
			t.Fatalf("ParseTime(%q) -> %q -> %v %v %v", s, out, ts2, p2, err)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"PID-3(2).1", "OBX(3)-5", "PID-5.1.2", "MSH-9-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParsePath(s)
		if err != nil {
			return
		}
		l2, err := ParsePath(l.String())
		if err != nil || l2.String() != l.String() {
			t.Fatalf("ParsePath(%q) = %+v -> %q -> %+v, %v", s, l, l.String(), l2, err)
		}
	})
}
