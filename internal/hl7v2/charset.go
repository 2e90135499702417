package hl7v2

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Character sets (MSH-18, HL7 table 0211).
//
// Parse turns the input into UTF-8 before it splits anything. That is safe
// for every charset supported here because each one is ASCII-compatible:
// the delimiters and terminators are the same bytes in all of them, and a
// decoded non-ASCII character never contains an ASCII byte, so decoding
// cannot move a field boundary.

var (
	// ErrUnknownCharset means a character set name is not one this package
	// recognises (see CanonicalCharset for the accepted spellings).
	ErrUnknownCharset = errors.New("hl7v2: unknown character set")
	// ErrUnsupportedCharset means a recognised character set that cannot be
	// decoded here: UTF-16/UTF-32 (not byte-transparent, so unusable over
	// MLLP framing) and the multi-byte Asian sets of table 0211.
	ErrUnsupportedCharset = errors.New("hl7v2: character set not supported")
)

type charsetKind uint8

const (
	charsetASCII charsetKind = iota + 1
	charsetUTF8
	charsetSingleByte
	charsetUnsupported
)

// charset is one entry of the name table.
type charset struct {
	name  string // canonical: the HL7 table 0211 code, or "WINDOWS-1252"
	kind  charsetKind
	table func() *[128]string // charsetSingleByte: UTF-8 text of bytes 0x80–0xFF
}

var (
	charsetASCIIDefault = &charset{name: "ASCII", kind: charsetASCII}
	charsetUTF8Default  = &charset{name: "UNICODE UTF-8", kind: charsetUTF8}
	// charsetWindows1252 is the default fallback for bytes that are not
	// valid UTF-8. Senders that "forgot" MSH-18 are overwhelmingly Windows
	// applications writing cp1252: it equals ISO 8859-1 on 0xA0–0xFF, so
	// true Latin-1 text decodes the same, and it gives 0x80–0x9F the
	// characters such senders mean (€, curly quotes, dashes from word
	// processors) where Latin-1 would yield invisible C1 control codes.
	charsetWindows1252 = singleByte("WINDOWS-1252", charmap.Windows1252)
)

func singleByte(name string, cm *charmap.Charmap) *charset {
	return &charset{name: name, kind: charsetSingleByte, table: sync.OnceValue(func() *[128]string {
		var t [128]string
		for i := range t {
			b := byte(0x80 + i)
			r := cm.DecodeByte(b)
			if r == utf8.RuneError && b < 0xA0 {
				// ISO 8859 leaves 0x80–0x9F to the C1 controls and
				// windows-1252 leaves five of them unassigned; x/text
				// decodes those to U+FFFD. U+0080–U+009F (what Latin-1
				// and the WHATWG decoders use) keeps the byte recoverable.
				r = rune(b)
			}
			t[i] = string(r)
		}
		return &t
	})}
}

// charsets maps compacted names (see compactCharsetName) to charsets.
var charsets = func() map[string]*charset {
	m := make(map[string]*charset)
	add := func(cs *charset, keys ...string) {
		for _, k := range keys {
			m[k] = cs
		}
	}
	add(charsetASCIIDefault, "ASCII", "USASCII", "ISOIR6")
	add(charsetUTF8Default, "UNICODEUTF8", "UTF8")
	add(charsetWindows1252, "WINDOWS1252", "CP1252", "WIN1252")
	for _, x := range []struct {
		n     string
		cm    *charmap.Charmap
		latin string
	}{
		{"1", charmap.ISO8859_1, "LATIN1"}, {"2", charmap.ISO8859_2, "LATIN2"},
		{"3", charmap.ISO8859_3, "LATIN3"}, {"4", charmap.ISO8859_4, "LATIN4"},
		{"5", charmap.ISO8859_5, ""}, {"6", charmap.ISO8859_6, ""},
		{"7", charmap.ISO8859_7, ""}, {"8", charmap.ISO8859_8, ""},
		{"9", charmap.ISO8859_9, "LATIN5"}, {"15", charmap.ISO8859_15, "LATIN9"},
	} {
		cs := singleByte("8859/"+x.n, x.cm)
		add(cs, "8859"+x.n, "ISO8859"+x.n)
		if x.latin != "" {
			add(cs, x.latin)
		}
	}
	unsupported := func(name string, keys ...string) {
		add(&charset{name: name, kind: charsetUnsupported}, keys...)
	}
	unsupported("UNICODE", "UNICODE", "UCS2")
	unsupported("UNICODE UTF-16", "UNICODEUTF16", "UTF16", "UTF16LE", "UTF16BE")
	unsupported("UNICODE UTF-32", "UNICODEUTF32", "UTF32", "UTF32LE", "UTF32BE")
	unsupported("BIG-5", "BIG5")
	unsupported("CNS 11643-1992", "CNS116431992")
	unsupported("GB 18030-2000", "GB180302000", "GB18030")
	unsupported("KS X 1001", "KSX1001")
	unsupported("ISO IR14", "ISOIR14")
	unsupported("ISO IR87", "ISOIR87")
	unsupported("ISO IR159", "ISOIR159")
	return m
}()

// lookupCharset finds a charset by any accepted spelling, or returns nil.
// Matching ignores case, spaces, '-', '_' and '/', so "8859/1",
// "ISO-8859-1", "iso_8859-1" and "ISO8859-1" are the same name. The
// stack buffer keeps the lookup allocation-free: Parse calls it for
// every message.
func lookupCharset(name string) *charset {
	var buf [24]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == ' ' || c == '\t' || c == '-' || c == '_' || c == '/':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if n == len(buf) {
			return nil
		}
		buf[n] = c
		n++
	}
	return charsets[string(buf[:n])]
}

// CanonicalCharset returns the name this package uses for a character set
// given in any accepted spelling: the HL7 table 0211 code ("ASCII",
// "8859/1" … "8859/9", "8859/15", "UNICODE UTF-8") or "WINDOWS-1252".
// Matching ignores case, spaces, '-', '_' and '/', and knows the usual
// non-standard spellings ("UTF-8", "UTF8", "ISO-8859-1", "ISO_8859-1",
// "Latin1", "LATIN-1", "CP1252", ...). The error wraps ErrUnknownCharset
// or ErrUnsupportedCharset.
//
// Connector configuration should call it when it is loaded, so that a
// typo in a WithCharset name fails there and not on every message.
func CanonicalCharset(name string) (string, error) {
	cs := lookupCharset(name)
	switch {
	case cs == nil:
		return "", fmt.Errorf("character set %q: %w", name, ErrUnknownCharset)
	case cs.kind == charsetUnsupported:
		return "", fmt.Errorf("character set %q (%s): %w", name, cs.name, ErrUnsupportedCharset)
	}
	return cs.name, nil
}

// WithCharset sets the connector's character set: the one Parse and
// ReadHeader assume when MSH-18 is empty, ASCII or unrecognised, and use
// for bytes that are not valid UTF-8 where MSH-18 claims UTF-8. Without
// it they assume UTF-8 and decode invalid bytes as windows-1252.
//
// A single-byte charset ("8859/15", "WINDOWS-1252", ...) applies to the
// whole message when it is not valid UTF-8; valid UTF-8 is still read as
// UTF-8, with a warning, because legacy text almost never forms valid
// multi-byte UTF-8 by accident. "UNICODE UTF-8" only silences the
// informational problem about undeclared UTF-8. An unknown or unsupported
// name is ignored and reported as a Problem on every message; check it
// beforehand with CanonicalCharset.
func WithCharset(name string) Option {
	cs := lookupCharset(name)
	return func(c *config) { c.charsetName, c.charset = name, cs }
}

// Charset returns the character set Parse read the message with, by its
// canonical name: "ASCII" for pure ASCII input without MSH-18, "UNICODE
// UTF-8" whenever the text was valid UTF-8 with non-ASCII characters, the
// MSH-18 or connector charset it decoded, or the fallback charset (see
// WithCharset) whose decoding replaced bytes that were not valid UTF-8.
// It is "" for messages built with NewMessage.
func (m *Message) Charset() string { return m.charset }
