package mapping

import (
	"iter"

	"github.com/nhp/interop/internal/hl7v2"
)

// Value is one composite v2 value read part by part: a field repetition (parts are components)
// or a component (parts are subcomponents), so that one datatype function maps a CX whether
// it is a field (PID-3) or a component (the HD inside CX-4). It wraps hl7v2's zero-copy
// accessors; no path is parsed per read.
//
// A Value read from a segment of the message being mapped records its reads in the Builder's
// field account (accounting.go): Get and Sub mark the component they read as mapped. IsEmpty
// does not: looking is not mapping.
type Value struct {
	rep  hl7v2.Repetition
	comp hl7v2.Component
	leaf string
	kind uint8 // kindRep, kindComp or kindLeaf
	// use is the account's word of this field repetition (one bit per component), nil when
	// the value is not accounted (a test's, a derived one); bit is a component's own bit.
	use *uint64
	bit uint64
}

const (
	kindRep uint8 = iota
	kindComp
	kindLeaf
)

// Rep wraps a field repetition.
func Rep(r hl7v2.Repetition) Value { return Value{rep: r, kind: kindRep} }

// FieldValue returns the first repetition of field n of seg (the zero Value when seg is nil).
func FieldValue(seg *hl7v2.Segment, n int) Value {
	if seg == nil {
		return Value{kind: kindLeaf}
	}
	return Value{rep: seg.Field(n).Repetition(1), kind: kindRep, use: accountSlot(seg, n, 1)}
}

// Repetitions iterates over the non-empty repetitions of field n of seg.
func Repetitions(seg *hl7v2.Segment, n int) iter.Seq[Value] {
	return func(yield func(Value) bool) {
		if seg == nil {
			return
		}
		for i, r := range seg.Field(n).Repetitions() {
			if r.IsEmpty() || r.Raw() == hl7v2.Null || blank(r.Raw()) {
				continue
			}
			if !yield(Value{rep: r, kind: kindRep, use: accountSlot(seg, n, i)}) {
				return
			}
		}
	}
}

// Get returns part n decoded (the first subcomponent of a component). HL7's explicit null
// `""` reads as empty: the mapping writes whole resources and cannot express "delete". So
// does a value of whitespace only, which FHIR's string type forbids and which senders pad
// empty fields with.
func (v Value) Get(n int) string {
	var s string
	switch v.kind {
	case kindRep:
		s = v.rep.Component(n).Value()
		if v.use != nil {
			*v.use |= componentBit(n)
		}
	case kindComp:
		s = v.comp.Subcomponent(n)
		if v.use != nil {
			*v.use |= v.bit
		}
	default:
		if n == 1 {
			s = v.leaf
		}
	}
	if s == hl7v2.Null || blank(s) {
		return ""
	}
	return s
}

// blank reports whether s is non-empty and all spaces, tabs or line breaks.
func blank(s string) bool {
	if s == "" || !isSpace(s[0]) || !isSpace(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// Sub returns part n as a composite: a component of a repetition (read by subcomponent), or a
// single subcomponent of a component.
func (v Value) Sub(n int) Value {
	switch v.kind {
	case kindRep:
		return Value{comp: v.rep.Component(n), kind: kindComp, use: v.use, bit: componentBit(n)}
	case kindComp:
		if v.use != nil {
			*v.use |= v.bit
		}
		return Value{leaf: v.comp.Subcomponent(n), kind: kindLeaf}
	}
	if n == 1 {
		return v
	}
	return Value{kind: kindLeaf}
}

// IsEmpty reports whether the value has no content.
func (v Value) IsEmpty() bool {
	switch v.kind {
	case kindRep:
		return v.rep.IsEmpty() || v.rep.Raw() == hl7v2.Null || blank(v.rep.Raw())
	case kindComp:
		return v.comp.IsEmpty() || v.comp.Raw() == hl7v2.Null || blank(v.comp.Raw())
	}
	return v.leaf == "" || v.leaf == hl7v2.Null || blank(v.leaf)
}

// Leaf wraps a plain string as a one-part Value, for tests and derived values.
func Leaf(s string) Value { return Value{leaf: s, kind: kindLeaf} }

// Len returns the number of parts (components of a repetition, subcomponents of a component),
// 0 when empty, so a datatype of open length (NA, MA, text with stray separators) can be read
// whole.
func (v Value) Len() int {
	switch v.kind {
	case kindRep:
		return v.rep.NumComponents()
	case kindComp:
		return v.comp.NumSubcomponents()
	}
	if v.leaf == "" {
		return 0
	}
	return 1
}
