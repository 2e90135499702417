package hl7v2

// Tagged returns a shallow copy of m whose segments carry tag and their position in the
// message (Segment.Tag, Segment.Position). Field values are shared, not copied. A reader that
// must attribute what it reads to one pass over the message (the mapping's field accounting)
// tags its own copy, so that two passes over the same parsed Message, even concurrent ones,
// never see each other's tag; m itself is not modified.
func (m *Message) Tagged(tag any) *Message {
	segs := make([]Segment, len(m.segs))
	ptrs := make([]*Segment, len(m.segs))
	for i, s := range m.segs {
		segs[i] = *s
		segs[i].tag, segs[i].pos = tag, i
		ptrs[i] = &segs[i]
	}
	c := *m
	c.segs = ptrs
	return &c
}

// Tag returns the tag of a segment of a Tagged message, or nil.
func (s *Segment) Tag() any {
	if s == nil {
		return nil
	}
	return s.tag
}

// Position returns the segment's 0-based position among all segments of a Tagged message
// (0 for a message that was not tagged).
func (s *Segment) Position() int { return s.pos }

// RawField returns field n (1-based) as encoded, "" when absent: Field(n).Raw() without
// building the Field, for a reader that scans every field of every segment.
func (s *Segment) RawField(n int) string {
	if n < 1 || n >= len(s.fields) {
		return ""
	}
	return s.fields[n]
}
