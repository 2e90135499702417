package hl7v2

import (
	"strings"
	"testing"
)

func TestUnescapeValue(t *testing.T) {
	d := DefaultDelimiters
	d7 := Delimiters{'|', '^', '~', '\\', '&', '#'}
	custom := Delimiters{'*', '%', '$', '!', '&', 0}
	tests := []struct {
		name string
		d    Delimiters
		in   string
		want string
	}{
		{"plain", d, "DOE", "DOE"},
		{"empty", d, "", ""},
		{"field", d, `a\F\b`, "a|b"},
		{"component", d, `a\S\b`, "a^b"},
		{"subcomponent", d, `a\T\b`, "a&b"},
		{"repetition", d, `a\R\b`, "a~b"},
		{"escape", d, `a\E\b`, `a\b`},
		{"all in a row", d, `\F\\S\\T\\R\\E\`, `|^&~\`},
		{"custom delimiters", custom, `a!F!b!S!c!E!`, "a*b%c!"},
		{"truncation declared", d7, `a\P\b`, "a#b"},
		{"truncation undeclared kept", d, `a\P\b`, `a\P\b`},
		{"hex", d, `\X48656C6C6F\`, "Hello"},
		{"hex lowercase digits", d, `\X0d0a\`, "\r\n"},
		{"hex latin1 bytes kept", d, `M\XFC\ller`, "M\xfcller"},
		{"hex odd length kept", d, `\X123\`, `\X123\`},
		{"hex bad digit kept", d, `\XZZ\`, `\XZZ\`},
		{"line break", d, `one\.br\two`, "one\ntwo"},
		{"skip lines", d, `a\.sp\b\.sp 2\c\.sp3\d`, "a\nb\n\nc\n\n\nd"},
		{"skip spaces", d, `a\.sk\b\.sk 3\c`, "a b   c"},
		{"center", d, `a\.ce\TITLE`, "a\nTITLE"},
		{"layout only", d, `\.in +4\\.ti -2\\.fi\\.nf\x`, "x"},
		{"highlight removed", d, `\H\IMPORTANT\N\ text`, "IMPORTANT text"},
		{"overlong argument kept", d, `\.sp 9999999\`, `\.sp 9999999\`},
		{"large skip capped", d, `\.sp 500\`, strings.Repeat("\n", maxFormatRepeat)},
		{"bad format kept", d, `\.xx\`, `\.xx\`},
		{"br with argument kept", d, `\.br 2\`, `\.br 2\`},
		{"charset kept", d, `\C2842\abc\C2B42\`, `\C2842\abc\C2B42\`},
		{"multibyte charset kept", d, `\M2442\`, `\M2442\`},
		{"local kept", d, `\Zfoo\`, `\Zfoo\`},
		{"unknown kept", d, `\Q\`, `\Q\`},
		{"empty sequence kept", d, `a\\b`, `a\\b`},
		{"unterminated kept", d, `50\`, `50\`},
		{"unterminated after valid", d, `\T\x\y`, `&x\y`},
		{"utf8 untouched", d, "Müller\\T\\Søn", "Müller&Søn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.UnescapeValue(tt.in); got != tt.want {
				t.Errorf("UnescapeValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeValue(t *testing.T) {
	d := DefaultDelimiters
	d7 := Delimiters{'|', '^', '~', '\\', '&', '#'}
	tests := []struct {
		name string
		d    Delimiters
		in   string
		want string
	}{
		{"plain", d, "Smith", "Smith"},
		{"delimiters", d, `a|b^c&d~e\f`, `a\F\b\S\c\T\d\R\e\E\f`},
		{"newlines", d, "one\r\ntwo\nthree", `one\X0D\\X0A\two\X0A\three`},
		{"hash without truncation", d, "#1", "#1"},
		{"hash with truncation", d7, "#1", `\P\1`},
		{"custom", Delimiters{'*', '%', '$', '!', '&', 0}, "a*b!c|d", "a!F!b!E!c|d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.EscapeValue(tt.in)
			if got != tt.want {
				t.Errorf("EscapeValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if back := tt.d.UnescapeValue(got); back != tt.in {
				t.Errorf("UnescapeValue(EscapeValue(%q)) = %q", tt.in, back)
			}
		})
	}
}

func TestUnescapeDoesNotAllocateWithoutEscapes(t *testing.T) {
	s := strings.Repeat("plain text ", 10)
	if n := testing.AllocsPerRun(100, func() { _ = DefaultDelimiters.UnescapeValue(s) }); n != 0 {
		t.Errorf("allocs = %v, want 0", n)
	}
}

func TestDelimitersValidate(t *testing.T) {
	tests := []struct {
		d  Delimiters
		ok bool
	}{
		{DefaultDelimiters, true},
		{Delimiters{'|', '^', '~', '\\', '&', '#'}, true},
		{Delimiters{'*', '%', '$', '!', '&', 0}, true},
		{Delimiters{}, false},
		{Delimiters{'|', '^', '~', '\\', '&', '|'}, false},
		{Delimiters{'|', 'A', '~', '\\', '&', 0}, false},
		{Delimiters{'|', '^', '~', '\\', '\r', 0}, false},
		{Delimiters{'|', '^', '~', '\\', 0xC3, 0}, false},
	}
	for _, tt := range tests {
		if err := tt.d.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", []byte{tt.d.Field, tt.d.Component, tt.d.Repetition, tt.d.Escape, tt.d.Subcomponent, tt.d.Truncation}, err, tt.ok)
		}
	}
	if got := (Delimiters{'|', '^', '~', '\\', '&', '#'}).EncodingCharacters(); got != `^~\&#` {
		t.Errorf("EncodingCharacters = %q", got)
	}
}
