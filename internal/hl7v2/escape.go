package hl7v2

import (
	"strings"
)

// maxFormatRepeat bounds the newlines/spaces one \.sp n\ or \.sk n\ escape
// may expand to, so a hostile "\.sp 99999999\" cannot allocate unbounded
// memory. Layout beyond that is not meaningful in plain text anyway.
const maxFormatRepeat = 100

// escKind classifies an escape sequence.
type escKind uint8

const (
	escOK          escKind = iota // decoded
	escUnsupported                // valid HL7 but kept literally (charset switches, \Z..\)
	escInvalid                    // not valid HL7; kept literally
)

// UnescapeValue decodes the HL7 escape sequences in a leaf value (a
// subcomponent, or a component/field with no deeper structure). Apply it
// only after splitting on delimiters: \S\ decodes to the component
// separator, which must then stay data.
//
// Decoding:
//
//	\F\ \S\ \T\ \R\ \E\  field, component, subcomponent, repetition, escape character
//	\P\                  truncation character (v2.7+), when the message declares one
//	\Xhh..\              the bytes given in hex, as is (no charset conversion)
//	\.br\                "\n"
//	\.sp\, \.sp n\       "\n", or n newlines (skip vertical space)
//	\.sk\, \.sk n\       one space, or n spaces (skip horizontal space)
//	\.ce\                "\n" (centering needs a line of its own)
//	\H\ \N\              removed (highlight on/off has no plain-text form)
//	\.in n\ \.ti n\      removed (indentation)
//	\.fi\ \.nf\          removed (fill mode)
//	\Cxxyy\ \Mxxyyzz\    kept literally: ISO 2022 charset switches need MSH-18
//	\Zxx..\              kept literally: locally defined
//
// Anything else, an unterminated escape or malformed hex, is kept literally
// so no data is lost; Parse reports those as Problems.
func (d Delimiters) UnescapeValue(s string) string {
	if d.Escape == 0 || strings.IndexByte(s, d.Escape) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, d.Escape)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i+1:], d.Escape)
		if j < 0 { // unterminated: keep the rest as written
			b.WriteString(s[i:])
			return b.String()
		}
		seq := s[i+1 : i+1+j]
		if decodeEscape(&b, seq, d) != escOK {
			b.WriteByte(d.Escape)
			b.WriteString(seq)
			b.WriteByte(d.Escape)
		}
		s = s[i+j+2:]
	}
}

// decodeEscape writes the decoding of one escape sequence body (without the
// surrounding escape characters) to b, which may be nil to only classify.
// Nothing is written unless the result is escOK.
func decodeEscape(b *strings.Builder, seq string, d Delimiters) escKind {
	write := func(s string) {
		if b != nil {
			b.WriteString(s)
		}
	}
	writeByte := func(c byte) {
		if b != nil {
			b.WriteByte(c)
		}
	}
	if len(seq) == 1 {
		switch seq[0] {
		case 'F':
			writeByte(d.Field)
		case 'S':
			writeByte(d.Component)
		case 'T':
			writeByte(d.Subcomponent)
		case 'R':
			writeByte(d.Repetition)
		case 'E':
			writeByte(d.Escape)
		case 'P':
			if d.Truncation == 0 {
				return escInvalid
			}
			writeByte(d.Truncation)
		case 'H', 'N':
		default:
			return escInvalid
		}
		return escOK
	}
	if seq == "" {
		return escInvalid
	}
	switch seq[0] {
	case 'X', 'x':
		hex := seq[1:]
		if len(hex)%2 != 0 {
			return escInvalid
		}
		for k := 0; k < len(hex); k++ {
			if unhex(hex[k]) < 0 {
				return escInvalid
			}
		}
		for k := 0; k < len(hex); k += 2 {
			writeByte(byte(unhex(hex[k])<<4 | unhex(hex[k+1]))) //nolint:gosec // G115: both nibbles were checked to be 0..15 above
		}
		return escOK
	case 'C', 'M', 'Z':
		return escUnsupported
	case '.':
		return decodeFormat(seq[1:], write)
	}
	return escInvalid
}

// decodeFormat handles the formatted-text (FT) commands after the dot.
func decodeFormat(cmd string, write func(string)) escKind {
	if len(cmd) < 2 {
		return escInvalid
	}
	name, arg := cmd[:2], strings.TrimLeft(cmd[2:], " ")
	n, signed, ok := parseFormatArg(arg)
	if !ok {
		return escInvalid
	}
	switch name {
	case "br", "ce", "fi", "nf":
		if arg != "" {
			return escInvalid
		}
		if name == "br" || name == "ce" {
			write("\n")
		}
	case "sp", "sk":
		if signed {
			return escInvalid
		}
		if arg == "" {
			n = 1
		}
		unit := "\n"
		if name == "sk" {
			unit = " "
		}
		write(strings.Repeat(unit, min(n, maxFormatRepeat)))
	case "in", "ti":
		// indentation has no plain-text rendering
	default:
		return escInvalid
	}
	return escOK
}

// parseFormatArg parses the optional [+|-]digits argument of a formatting
// command; an empty argument is valid.
func parseFormatArg(arg string) (n int, signed, ok bool) {
	if arg == "" {
		return 0, false, true
	}
	if arg[0] == '+' || arg[0] == '-' {
		signed = true
		arg = arg[1:]
	}
	if arg == "" || len(arg) > 6 {
		return 0, signed, false
	}
	for i := 0; i < len(arg); i++ {
		if arg[i] < '0' || arg[i] > '9' {
			return 0, signed, false
		}
		n = n*10 + int(arg[i]-'0')
	}
	return n, signed, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}

// EscapeValue encodes s so it can be stored as a leaf value: delimiters become
// \F\ \S\ \T\ \R\ \E\ (and \P\ for a declared truncation character), and CR
// and LF become \X0D\ and \X0A\ because a raw CR would end the segment.
// UnescapeValue(EscapeValue(s)) == s for every s.
func (d Delimiters) EscapeValue(s string) string {
	i := 0
	for i < len(s) && !d.isSpecial(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		var code string
		switch {
		case c == d.Field:
			code = "F"
		case c == d.Component:
			code = "S"
		case c == d.Subcomponent:
			code = "T"
		case c == d.Repetition:
			code = "R"
		case c == d.Escape:
			code = "E"
		case c == d.Truncation && c != 0:
			code = "P"
		case c == '\r':
			code = "X0D"
		case c == '\n':
			code = "X0A"
		default:
			b.WriteByte(c)
			continue
		}
		b.WriteByte(d.Escape)
		b.WriteString(code)
		b.WriteByte(d.Escape)
	}
	return b.String()
}

// escapeIssue is an escape-sequence problem found by checkEscapes.
type escapeIssue struct {
	offset int // of the opening escape character, within the checked text
	kind   escKind
	seq    string // the sequence including escape characters, or the unterminated tail
}

// checkEscapes classifies every escape sequence in a raw field value,
// reporting those that will not decode. Escapes never span delimiters, so a
// sequence cut by one counts as unterminated.
func checkEscapes(field string, d Delimiters, report func(escapeIssue)) {
	for off := 0; off < len(field); {
		i := strings.IndexByte(field[off:], d.Escape)
		if i < 0 {
			return
		}
		start := off + i
		end := start + 1
		for end < len(field) && field[end] != d.Escape && field[end] != d.Component &&
			field[end] != d.Repetition && field[end] != d.Subcomponent {
			end++
		}
		if end == len(field) || field[end] != d.Escape {
			report(escapeIssue{offset: start, kind: escInvalid, seq: field[start:end]})
			off = end
			continue
		}
		if k := decodeEscape(nil, field[start+1:end], d); k != escOK {
			report(escapeIssue{offset: start, kind: k, seq: field[start : end+1]})
		}
		off = end + 1
	}
}
