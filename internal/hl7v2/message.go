package hl7v2

import (
	"iter"
	"strings"
	"time"
)

// Message is a parsed or built HL7 v2 message: an ordered list of segments
// sharing one set of delimiters. Field values stay encoded (escaped) in
// memory and are decoded on access, which keeps parsing cheap and lets an
// unmodified message encode back byte for byte.
//
// A Message is safe for concurrent reads; writes (Set, SetRaw, AddSegment)
// need external synchronisation.
type Message struct {
	d        Delimiters
	segs     []*Segment
	problems []Problem
	loc      *time.Location
	charset  string // canonical name of the charset Parse decoded with
}

// Delimiters returns the message's delimiters.
func (m *Message) Delimiters() Delimiters { return m.d }

// Problems returns what Parse noticed and worked around, in input order.
// The slice is shared; do not modify it.
func (m *Message) Problems() []Problem { return m.problems }

// HasErrors reports whether any problem has Error severity or worse, i.e.
// the message is not well-formed even though it could be read.
func (m *Message) HasErrors() bool {
	for _, p := range m.problems {
		if p.Severity >= SeverityError {
			return true
		}
	}
	return false
}

// Segments returns the segments with the given ID in message order, or all
// segments when name is "". The slice is fresh; the segments are shared.
func (m *Message) Segments(name string) []*Segment {
	if name == "" {
		out := make([]*Segment, len(m.segs))
		copy(out, m.segs)
		return out
	}
	var out []*Segment
	for _, s := range m.segs {
		if s.fields[0] == name {
			out = append(out, s)
		}
	}
	return out
}

// Segment returns the n-th (1-based) segment with the given ID, or nil.
func (m *Message) Segment(name string, n int) *Segment {
	for _, s := range m.segs {
		if s.fields[0] == name {
			if n--; n <= 0 {
				return s
			}
		}
	}
	return nil
}

// Get returns the decoded value at a terser path such as "PID-5",
// "PID-3(2).1", "OBX(3)-5" or "PID-5.1.2", or "" when there is none.
//
// Terser semantics: unspecified repetition, component and subcomponent mean
// the first one, so Get always yields one leaf value — Get("PID-5") is the
// family name, not "DOE^JOHN". Use Raw for the encoded text of a whole
// field or component. MSH-1 and MSH-2 return the delimiter characters as is.
// Get parses path on every call; GetPath takes a path compiled once.
func (m *Message) Get(path string) string {
	v, _ := m.Lookup(path)
	return v
}

// Lookup is Get that also reports whether the path exists. A present but
// empty value is ("", true); a segment, field, repetition or component
// beyond what the message has, or a malformed path, is ("", false).
func (m *Message) Lookup(path string) (string, bool) {
	l, err := ParsePath(path)
	if err != nil {
		return "", false
	}
	// lookup's body, repeated: the extra call cost Get ~3%. TestGetPathMatchesGet
	// keeps the two in step.
	s := m.Segment(l.Segment, max(l.SegmentIndex, 1))
	if s == nil {
		return "", false
	}
	if l.Field == 0 {
		return "", true
	}
	return s.lookup(l, true)
}

// GetPath is Get with a compiled path: the same value, without parsing
// the path again.
func (m *Message) GetPath(p Path) string {
	v, _ := m.lookup(p.l)
	return v
}

// LookupPath is Lookup with a compiled path. The zero Path gives
// ("", false).
func (m *Message) LookupPath(p Path) (string, bool) { return m.lookup(p.l) }

// lookup is Lookup on a parsed path.
func (m *Message) lookup(l Location) (string, bool) {
	if l.Segment == "" {
		return "", false // the zero Path; ParsePath never yields it
	}
	s := m.Segment(l.Segment, max(l.SegmentIndex, 1))
	if s == nil {
		return "", false
	}
	if l.Field == 0 {
		return "", true
	}
	return s.lookup(l, true)
}

// Raw returns the encoded text at a path, escapes and delimiters intact:
// "PID-3" is the whole field with every repetition, "PID-3(2)" one
// repetition, "PID-5.1" one component. A bare segment ID gives the whole
// segment. Missing paths give "".
func (m *Message) Raw(path string) string {
	l, err := ParsePath(path)
	if err != nil {
		return ""
	}
	s := m.Segment(l.Segment, max(l.SegmentIndex, 1))
	if s == nil {
		return ""
	}
	if l.Field == 0 {
		return s.Raw()
	}
	v, _ := s.lookup(l, false)
	return v
}

// Segment is one segment of a Message. Field numbers are HL7's: for
// MSH (and FHS/BHS) field 1 is the field separator itself and field 2 the
// encoding characters.
type Segment struct {
	fields []string // fields[0] is the segment ID; fields[n] is field n, encoded
	d      Delimiters
	header bool // MSH/FHS/BHS numbering
	seq    int  // occurrence among segments with the same ID, 1-based
	tag    any  // set on the segments of a Tagged copy only
	pos    int  // position in the message, set by Tagged
}

// Name returns the segment ID, e.g. "PID".
func (s *Segment) Name() string { return s.fields[0] }

// Index returns the segment's occurrence number among segments with the
// same ID (1 for the first OBX, 3 for the third).
func (s *Segment) Index() int { return s.seq }

// Location returns the segment's location, for problems and ACK errors.
func (s *Segment) Location() Location { return Location{Segment: s.fields[0], SegmentIndex: s.seq} }

// NumFields returns the number of the last field present (trailing empty
// fields included, as written).
func (s *Segment) NumFields() int { return len(s.fields) - 1 }

// Field returns field n (1-based); a missing field is the zero Field.
func (s *Segment) Field(n int) Field {
	if n < 1 || n >= len(s.fields) {
		return Field{}
	}
	if s.header && n <= 2 {
		return Field{raw: s.fields[n]} // no delimiters: never split or unescaped
	}
	return Field{raw: s.fields[n], d: s.d}
}

// Fields iterates over the fields with their 1-based numbers.
func (s *Segment) Fields() iter.Seq2[int, Field] {
	return func(yield func(int, Field) bool) {
		for n := 1; n < len(s.fields); n++ {
			if !yield(n, s.Field(n)) {
				return
			}
		}
	}
}

// Get returns the decoded value at a path relative to the segment, such as
// "5", "5.1", "3(2).1" or "5.1.2", with the terser semantics of Message.Get.
func (s *Segment) Get(path string) string {
	v, _ := s.Lookup(path)
	return v
}

// Lookup is Get that also reports whether the path exists.
func (s *Segment) Lookup(path string) (string, bool) {
	var l Location
	if parseFieldPath(path, &l) != nil {
		return "", false
	}
	return s.lookup(l, true)
}

// Raw returns the encoded segment, without terminator.
func (s *Segment) Raw() string { return string(s.appendTo(nil)) }

// lookup resolves l's field part. leaf selects terser semantics (descend to
// the first leaf and unescape); otherwise the encoded text at the deepest
// level named is returned.
func (s *Segment) lookup(l Location, leaf bool) (string, bool) {
	if l.Field < 1 || l.Field >= len(s.fields) {
		return "", false
	}
	f := s.Field(l.Field)
	r, c, sc := levels(l, leaf)
	v, ok := f.raw, true
	if r > 0 {
		v, ok = nth(v, f.d.Repetition, r)
	}
	if ok && c > 0 {
		v, ok = nth(v, f.d.Component, c)
	}
	if ok && sc > 0 {
		v, ok = nth(v, f.d.Subcomponent, sc)
	}
	if !ok {
		return "", false
	}
	if leaf {
		v = f.d.UnescapeValue(v)
	}
	return v, true
}

// levels fills in the repetition, component and subcomponent a path means:
// for leaf access every unspecified level is the first; for raw access only
// the levels above the deepest one named are.
func levels(l Location, leaf bool) (r, c, sc int) {
	r, c, sc = l.Repetition, l.Component, l.Subcomponent
	if leaf {
		return max(r, 1), max(c, 1), max(sc, 1)
	}
	if sc > 0 && c == 0 {
		c = 1
	}
	if c > 0 && r == 0 {
		r = 1
	}
	return r, c, sc
}

// fieldOffset returns the byte offset of field n within the encoded segment.
func (s *Segment) fieldOffset(n int) int {
	off := len(s.fields[0])
	for i := 1; i <= n && i < len(s.fields); i++ {
		if !s.header || i > 2 {
			off++ // separator before field i
		}
		if i < n {
			off += len(s.fields[i])
		}
	}
	return off
}

// String implements fmt.Stringer for debugging: segments joined by "\n".
func (m *Message) String() string {
	var b strings.Builder
	for i, s := range m.segs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.Write(s.appendTo(nil))
	}
	return b.String()
}
