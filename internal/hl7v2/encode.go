package hl7v2

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Encode serialises the message with a CR after every segment, the
// standard terminator. Unmodified segments come out exactly as they were
// read, so a well-formed CR-terminated message round-trips byte for byte;
// other inputs are normalised (CR terminators, no BOM, no blank lines).
func (m *Message) Encode() []byte { return m.AppendEncode(nil) }

// AppendEncode appends the encoded message to dst, for callers that reuse
// buffers.
func (m *Message) AppendEncode(dst []byte) []byte {
	n := 0
	for _, s := range m.segs {
		n += s.encodedLen() + 1
	}
	dst = slices.Grow(dst, n)
	for _, s := range m.segs {
		dst = append(s.appendTo(dst), '\r')
	}
	return dst
}

func (s *Segment) encodedLen() int {
	n := 0
	for _, f := range s.fields {
		n += len(f) + 1
	}
	return n
}

func (s *Segment) appendTo(b []byte) []byte {
	b = append(b, s.fields[0]...)
	for i := 1; i < len(s.fields); i++ {
		if !s.header || i > 2 { // MSH-1 is the separator itself
			b = append(b, s.d.Field)
		}
		b = append(b, s.fields[i]...)
	}
	return b
}

// NewMessage starts a message whose MSH is built from h: delimiters
// (DefaultDelimiters when zero), MSH-3 to -7, -9 to -12, -15, -16 and -18.
// Values are escaped as needed; trailing empty fields are left out. Add
// further segments with AddSegment and fill them with Set.
func NewMessage(h Header) (*Message, error) {
	d := h.Delimiters
	if d == (Delimiters{}) {
		d = DefaultDelimiters
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("new message: %w", err)
	}
	enc := func(parts ...string) string {
		for i := range parts {
			parts[i] = d.EscapeValue(parts[i])
		}
		return joinTrim(d.Component, parts...)
	}
	hd := func(v HD) string { return enc(v.NamespaceID, v.UniversalID, v.UniversalIDType) }
	charsets := make([]string, len(h.CharacterSets))
	for i, cs := range h.CharacterSets {
		charsets[i] = d.EscapeValue(cs)
	}
	fields := []string{
		"MSH", string(d.Field), d.EncodingCharacters(),
		hd(h.SendingApplication), hd(h.SendingFacility), hd(h.ReceivingApplication), hd(h.ReceivingFacility),
		enc(h.Timestamp), "",
		enc(h.Type.Code, h.Type.Trigger, h.Type.Structure),
		enc(h.ControlID),
		enc(h.ProcessingID, h.ProcessingMode),
		enc(h.Version), "", "",
		enc(h.AcceptAckType), enc(h.ApplicationAckType), "",
		joinTrim(d.Repetition, charsets...),
	}
	n := len(fields)
	for n > 3 && fields[n-1] == "" {
		n--
	}
	msh := &Segment{fields: fields[:n:n], d: d, header: true, seq: 1}
	return &Message{d: d, segs: []*Segment{msh}, loc: time.UTC}, nil
}

// AddSegment appends an empty segment with the given ID, which must be
// three characters [A-Z][A-Z0-9][A-Z0-9] (ErrBadValue otherwise).
func (m *Message) AddSegment(name string) (*Segment, error) {
	if !validSegmentName(name) {
		return nil, fmt.Errorf("add segment %q: %w", name, ErrBadValue)
	}
	if len(m.segs) == 0 {
		return nil, fmt.Errorf("add segment %q: use NewMessage first: %w", name, ErrNoMSH)
	}
	seq := 1
	for _, s := range m.segs {
		if s.fields[0] == name {
			seq++
		}
	}
	s := &Segment{fields: []string{name}, d: m.d, seq: seq}
	if isHeaderName(name) {
		s.header = true
		s.fields = append(s.fields, string(m.d.Field), m.d.EncodingCharacters())
	}
	m.segs = append(m.segs, s)
	return s, nil
}

// Set stores value, escaped, at a terser path. As with Get, unspecified
// levels mean the first, so Set("PID-5", "Smith") replaces the family name
// and keeps the given name. Missing fields, repetitions and components are
// created; a missing segment is ErrNoSegment (use AddSegment). Setting ""
// where nothing exists is a no-op, so no empty delimiters are appended.
func (m *Message) Set(path, value string) error {
	s, l, err := m.target(path)
	if err != nil {
		return err
	}
	if err := s.set(l, m.d.EscapeValue(value), true); err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	return nil
}

// SetRaw stores already-encoded text at a path, replacing exactly the
// level the path names: SetRaw("PID-5", "DOE^JOHN") sets the whole field,
// SetRaw("PID-3(2)", ...) one repetition. The text must not contain CR, LF
// or delimiters of that level or above (ErrBadValue).
func (m *Message) SetRaw(path, raw string) error {
	s, l, err := m.target(path)
	if err != nil {
		return err
	}
	if err := s.set(l, raw, false); err != nil {
		return fmt.Errorf("set raw %s: %w", path, err)
	}
	return nil
}

func (m *Message) target(path string) (*Segment, Location, error) {
	l, err := ParsePath(path)
	if err != nil {
		return nil, l, err
	}
	s := m.Segment(l.Segment, max(l.SegmentIndex, 1))
	if s == nil {
		return nil, l, fmt.Errorf("set %s: %w", path, ErrNoSegment)
	}
	return s, l, nil
}

// Set stores value, escaped, at a field path relative to the segment
// ("5.1", "3(2).1"); see Message.Set.
func (s *Segment) Set(path, value string) error {
	var l Location
	if err := parseFieldPath(path, &l); err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	if err := s.set(l, s.d.EscapeValue(value), true); err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	return nil
}

// SetRaw stores encoded text at a field path relative to the segment; see
// Message.SetRaw.
func (s *Segment) SetRaw(path, raw string) error {
	var l Location
	if err := parseFieldPath(path, &l); err != nil {
		return fmt.Errorf("set raw %s: %w", path, err)
	}
	if err := s.set(l, raw, false); err != nil {
		return fmt.Errorf("set raw %s: %w", path, err)
	}
	return nil
}

func (s *Segment) set(l Location, raw string, leaf bool) error {
	if l.Field < 1 {
		return ErrBadPath
	}
	if s.header && l.Field <= 2 {
		return ErrReadOnly
	}
	r, c, sc := levels(l, leaf)
	if bad := s.forbidden(r, c, sc); strings.ContainsAny(raw, bad) {
		return ErrBadValue
	}
	if raw == "" {
		if _, ok := s.lookup(Location{Field: l.Field, Repetition: r, Component: c, Subcomponent: sc}, false); !ok {
			return nil
		}
	}
	if s.header && len(s.fields) < 3 { // MSH-1 and MSH-2 are never empty
		s.fields = append(s.fields[:1], string(s.d.Field), s.d.EncodingCharacters())
	}
	for len(s.fields) <= l.Field {
		s.fields = append(s.fields, "")
	}
	d := s.d
	s.fields[l.Field] = replacePart(s.fields[l.Field], d.Repetition, r, func(rep string) string {
		return replacePart(rep, d.Component, c, func(comp string) string {
			return replacePart(comp, d.Subcomponent, sc, func(string) string { return raw })
		})
	})
	return nil
}

// forbidden lists the characters a raw value may not contain at the level
// given by r, c, sc (0 = whole): terminators and the delimiters of that
// level and above, which would shift the structure around it.
func (s *Segment) forbidden(r, c, sc int) string {
	b := []byte{'\r', '\n', s.d.Field}
	if r > 0 {
		b = append(b, s.d.Repetition)
	}
	if c > 0 {
		b = append(b, s.d.Component)
	}
	if sc > 0 {
		b = append(b, s.d.Subcomponent)
	}
	return string(b)
}

// replacePart replaces part n (1-based) of s split on sep with fn(part),
// padding with separators when s has fewer parts. n == 0 replaces all of s.
func replacePart(s string, sep byte, n int, fn func(string) string) string {
	if n == 0 {
		return fn(s)
	}
	start := 0
	for k := 1; k < n; k++ {
		i := strings.IndexByte(s[start:], sep)
		if i < 0 {
			return s + strings.Repeat(string(sep), n-k) + fn("")
		}
		start += i + 1
	}
	end := len(s)
	if i := strings.IndexByte(s[start:], sep); i >= 0 {
		end = start + i
	}
	return s[:start] + fn(s[start:end]) + s[end:]
}
