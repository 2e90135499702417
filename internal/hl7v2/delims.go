package hl7v2

import "fmt"

// Delimiters are the separator characters a message declares in MSH-1 and
// MSH-2. Every message carries its own set; nothing in this package assumes
// the defaults once a message has been read.
type Delimiters struct {
	Field        byte // MSH-1, usually '|'
	Component    byte // MSH-2[0], usually '^'
	Repetition   byte // MSH-2[1], usually '~'
	Escape       byte // MSH-2[2], usually '\'
	Subcomponent byte // MSH-2[3], usually '&'
	// Truncation is MSH-2[4], introduced in v2.7 (usually '#'); 0 when
	// MSH-2 has only four characters.
	Truncation byte
}

// DefaultDelimiters is the set HL7 recommends (`|^~\&`); it is used for
// messages built without explicit delimiters and to fill in characters a
// short MSH-2 leaves out.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingCharacters returns MSH-2 for these delimiters: four characters,
// or five when a truncation character is set.
func (d Delimiters) EncodingCharacters() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// Validate reports whether the delimiters can encode a message unambiguously:
// each must be printable ASCII punctuation (so it can never appear inside a
// UTF-8 multi-byte sequence or be confused with data letters) and all must
// differ. Truncation may be 0. The error wraps ErrBadDelimiters.
func (d Delimiters) Validate() error {
	if why := d.invalid(); why != "" {
		return fmt.Errorf("%s: %w", why, ErrBadDelimiters)
	}
	return nil
}

// invalid returns why the delimiters are unusable, or "".
func (d Delimiters) invalid() string {
	seps := [...]struct {
		c    byte
		name string
	}{
		{d.Field, "field"}, {d.Component, "component"}, {d.Repetition, "repetition"},
		{d.Escape, "escape"}, {d.Subcomponent, "subcomponent"}, {d.Truncation, "truncation"},
	}
	for i, s := range seps {
		if s.c == 0 && i == len(seps)-1 {
			continue
		}
		if !isDelimiterChar(s.c) {
			return fmt.Sprintf("%s separator %q is not printable ASCII punctuation", s.name, s.c)
		}
		for _, prev := range seps[:i] {
			if prev.c == s.c {
				return fmt.Sprintf("%s and %s separators are both %q", prev.name, s.name, s.c)
			}
		}
	}
	return ""
}

func isDelimiterChar(c byte) bool {
	return c > ' ' && c < 0x7f && !isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// isSpecial reports whether c must be escaped in a value.
func (d Delimiters) isSpecial(c byte) bool {
	return c == d.Field || c == d.Component || c == d.Repetition || c == d.Escape ||
		c == d.Subcomponent || (c == d.Truncation && c != 0) || c == '\r' || c == '\n'
}

// readDelimiters reads MSH-1 and MSH-2 from a header segment line ("MSH",
// "FHS" or "BHS" followed by the field separator) found at offset base of
// the input. It returns the delimiters and the problems found, or a
// *ParseError when no usable delimiters can be read.
func readDelimiters(line string, base int) (Delimiters, []Problem, *ParseError) {
	name := line[:3]
	if len(line) < 4 {
		return Delimiters{}, nil, &ParseError{Err: ErrShortMSH, Location: Location{Segment: name, Field: 1}, Offset: base + len(line)}
	}
	d := DefaultDelimiters
	d.Field = line[3]
	enc := line[4:]
	for i := 0; i < len(enc); i++ {
		if enc[i] == d.Field || enc[i] == '\r' || enc[i] == '\n' {
			enc = enc[:i]
			break
		}
	}
	var probs []Problem
	loc := Location{Segment: name, Field: 2}
	// `^~\\&`: senders that escape backslashes in source code once too often.
	// Reading the second backslash as the subcomponent separator would make
	// escape and subcomponent equal, so drop it.
	if len(enc) >= 4 && enc[2] == enc[3] {
		probs = append(probs, Problem{Severity: SeverityWarning, Location: loc, Offset: base + 4, Code: ProblemDoubledEscape,
			Message: fmt.Sprintf("MSH-2 %q repeats the escape character; read as %q", enc, enc[:3]+enc[4:])})
		enc = enc[:3] + enc[4:]
	}
	switch {
	case len(enc) < 4:
		probs = append(probs, Problem{Severity: SeverityWarning, Location: loc, Offset: base + 4, Code: ProblemShortEncoding,
			Message: fmt.Sprintf("MSH-2 %q has %d of 4 encoding characters; defaults used for the rest", enc, len(enc))})
	case len(enc) > 5:
		probs = append(probs, Problem{Severity: SeverityWarning, Location: loc, Offset: base + 4, Code: ProblemLongEncoding,
			Message: fmt.Sprintf("MSH-2 %q has more than 5 encoding characters; extra ignored", enc)})
	}
	targets := [...]*byte{&d.Component, &d.Repetition, &d.Escape, &d.Subcomponent, &d.Truncation}
	for i := 0; i < len(enc) && i < len(targets); i++ {
		*targets[i] = enc[i]
	}
	if why := d.invalid(); why != "" {
		return Delimiters{}, probs, &ParseError{Err: ErrBadDelimiters, Location: loc, Offset: base + 3,
			Detail: fmt.Sprintf("MSH-1 %q, MSH-2 %q: %s", d.Field, truncate(enc, 12), why)}
	}
	return d, probs, nil
}
