package hl7v2

import (
	"fmt"
	"strconv"
)

// Location addresses a position in a message, from a whole segment down to
// a subcomponent. It is both the parsed form of a terser path and the place
// a Problem or an ACK error refers to. All indexes are 1-based as in HL7;
// 0 means "not specified".
//
// In paths, an unspecified SegmentIndex means the first occurrence; an
// unspecified Repetition, Component or Subcomponent means "the first" for
// Get and Set (terser semantics) and "all of it" for Raw and SetRaw.
type Location struct {
	Segment      string // segment ID, e.g. "PID"
	SegmentIndex int    // occurrence among segments with this ID, e.g. 3 for the third OBX
	Field        int
	Repetition   int
	Component    int
	Subcomponent int
}

// String formats the location in path syntax, e.g. "OBX(3)-5(1).2.1".
// SegmentIndex 1 is omitted because it means the same as 0.
func (l Location) String() string {
	b := make([]byte, 0, 24)
	b = append(b, l.Segment...)
	if l.SegmentIndex > 1 {
		b = append(b, '(')
		b = strconv.AppendInt(b, int64(l.SegmentIndex), 10)
		b = append(b, ')')
	}
	if l.Field > 0 {
		b = l.appendFieldPart(append(b, '-'))
	}
	return string(b)
}

func (l Location) appendFieldPart(b []byte) []byte {
	b = strconv.AppendInt(b, int64(l.Field), 10)
	if l.Repetition > 0 {
		b = append(b, '(')
		b = strconv.AppendInt(b, int64(l.Repetition), 10)
		b = append(b, ')')
	}
	if l.Component > 0 || l.Subcomponent > 0 {
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(max(l.Component, 1)), 10)
	}
	if l.Subcomponent > 0 {
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(l.Subcomponent), 10)
	}
	return b
}

// ParsePath parses a terser-style path:
//
//	SEG[(n)]-F[(r)][.C[.S]]
//
// for example "PID-3", "PID-3(2).1", "OBX(3)-5", "PID-5.1.2", "MSH-9.1".
// A '-' is accepted in place of '.' between field, component and
// subcomponent ("PID-5-1"), as several other tools write it. A bare segment
// ID ("PID") is also valid and addresses the whole segment.
func ParsePath(p string) (Location, error) {
	var l Location
	i := 0
	for i < len(p) && isAlnum(p[i]) {
		i++
	}
	if i == 0 {
		return l, fmt.Errorf("path %q: missing segment ID: %w", p, ErrBadPath)
	}
	l.Segment = p[:i]
	rest := p[i:]
	var err error
	if len(rest) > 0 && rest[0] == '(' {
		if l.SegmentIndex, rest, err = parseParen(rest); err != nil {
			return l, fmt.Errorf("path %q: %w", p, err)
		}
	}
	if rest == "" {
		return l, nil
	}
	if rest[0] != '-' {
		return l, fmt.Errorf("path %q: expected '-' after segment: %w", p, ErrBadPath)
	}
	if err := parseFieldPath(rest[1:], &l); err != nil {
		return l, fmt.Errorf("path %q: %w", p, err)
	}
	return l, nil
}

// parseFieldPath parses "F[(r)][.C[.S]]" into l.
func parseFieldPath(p string, l *Location) error {
	var err error
	if l.Field, p, err = parseNum(p); err != nil {
		return err
	}
	if len(p) > 0 && p[0] == '(' {
		if l.Repetition, p, err = parseParen(p); err != nil {
			return err
		}
	}
	for _, dst := range [...]*int{&l.Component, &l.Subcomponent} {
		if p == "" {
			return nil
		}
		if p[0] != '.' && p[0] != '-' {
			return fmt.Errorf("unexpected %q: %w", p, ErrBadPath)
		}
		if *dst, p, err = parseNum(p[1:]); err != nil {
			return err
		}
	}
	if p != "" {
		return fmt.Errorf("unexpected %q: %w", p, ErrBadPath)
	}
	return nil
}

// parseParen parses "(n)" at the start of p.
func parseParen(p string) (int, string, error) {
	n, rest, err := parseNum(p[1:])
	if err != nil {
		return 0, p, err
	}
	if rest == "" || rest[0] != ')' {
		return 0, p, fmt.Errorf("missing ')': %w", ErrBadPath)
	}
	return n, rest[1:], nil
}

// parseNum parses a positive decimal index at the start of p. The bound keeps
// a hostile path from asking Set to pad a segment with a billion fields.
func parseNum(p string) (int, string, error) {
	const maxIndex = 1 << 16
	n, i := 0, 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		n = n*10 + int(p[i]-'0')
		if n > maxIndex {
			return 0, p, fmt.Errorf("index too large: %w", ErrBadPath)
		}
		i++
	}
	if i == 0 {
		return 0, p, fmt.Errorf("expected a number at %q: %w", p, ErrBadPath)
	}
	if n == 0 {
		return 0, p, fmt.Errorf("indexes are 1-based: %w", ErrBadPath)
	}
	return n, p[i:], nil
}

// Path is a compiled terser path: a Location parsed once, to be read from
// many messages with Message.GetPath and Message.LookupPath at no parsing
// cost. A mapper that reads the same fields from every message compiles
// them once, typically into package variables with MustPath.
//
// The zero Path addresses nothing: looking it up gives ("", false), like a
// malformed path given to Lookup. A Path is immutable and safe to share
// between goroutines.
type Path struct {
	l Location // l.Segment == "" only in the zero Path
}

// CompilePath parses a terser path (see ParsePath for the syntax) into a
// Path. Errors wrap ErrBadPath.
func CompilePath(s string) (Path, error) {
	l, err := ParsePath(s)
	if err != nil {
		return Path{}, err
	}
	return Path{l: l}, nil
}

// MustPath is CompilePath that panics on a malformed path, for paths
// written in the program.
func MustPath(s string) Path {
	p, err := CompilePath(s)
	if err != nil {
		panic("hl7v2: MustPath: " + err.Error())
	}
	return p
}

// Location returns the parsed location.
func (p Path) Location() Location { return p.l }

// String returns the path in canonical syntax, e.g. "OBX(3)-5(1).2";
// see Location.String.
func (p Path) String() string { return p.l.String() }
