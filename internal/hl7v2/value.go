package hl7v2

import (
	"iter"
	"strings"
)

// nth returns the n-th (1-based) part of s split on sep, and whether it
// exists. With sep 0 (no such delimiter) s is a single part.
func nth(s string, sep byte, n int) (string, bool) {
	if n < 1 {
		return "", false
	}
	if sep == 0 {
		return s, n == 1
	}
	for ; n > 1; n-- {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			return "", false
		}
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, sep); i >= 0 {
		s = s[:i]
	}
	return s, true
}

// count returns how many parts s has when split on sep; "" has none.
func count(s string, sep byte) int {
	switch {
	case s == "":
		return 0
	case sep == 0:
		return 1
	}
	return strings.Count(s, string(sep)) + 1
}

// parts iterates over the parts of s split on sep, numbered from 1.
func parts(s string, sep byte, yield func(int, string) bool) {
	if s == "" {
		return
	}
	for n := 1; ; n++ {
		i := -1
		if sep != 0 {
			i = strings.IndexByte(s, sep)
		}
		if i < 0 {
			yield(n, s)
			return
		}
		if !yield(n, s[:i]) {
			return
		}
		s = s[i+1:]
	}
}

// Null is HL7's explicit null, `""`: the sender asks the receiver to delete
// the stored value, which differs from an empty field (leave it unchanged).
// Values keep it verbatim; compare against Null or use IsNull.
const Null = `""`

// Field is one field of a segment, possibly with repetitions. It is a small
// value (the encoded text plus delimiters) and costs nothing to copy.
type Field struct {
	raw string
	d   Delimiters
}

// Raw returns the encoded field, repetitions and escapes intact.
func (f Field) Raw() string { return f.raw }

// Value returns the decoded first subcomponent of the first component of
// the first repetition — the whole value for simple types like ST or ID.
func (f Field) Value() string { return f.Repetition(1).Value() }

// IsEmpty reports whether the field has no content.
func (f Field) IsEmpty() bool { return f.raw == "" }

// IsNull reports whether the field is the explicit null `""`.
func (f Field) IsNull() bool { return f.raw == Null }

// NumRepetitions returns the number of repetitions; 0 for an empty field.
func (f Field) NumRepetitions() int { return count(f.raw, f.d.Repetition) }

// Repetition returns repetition n (1-based), or the zero value.
func (f Field) Repetition(n int) Repetition {
	v, _ := nth(f.raw, f.d.Repetition, n)
	return Repetition{raw: v, d: f.d}
}

// Component returns component n of the first repetition, a shortcut for
// fields that do not repeat.
func (f Field) Component(n int) Component { return f.Repetition(1).Component(n) }

// Repetitions iterates over the repetitions, numbered from 1.
func (f Field) Repetitions() iter.Seq2[int, Repetition] {
	return func(yield func(int, Repetition) bool) {
		parts(f.raw, f.d.Repetition, func(n int, s string) bool { return yield(n, Repetition{raw: s, d: f.d}) })
	}
}

// Repetition is one occurrence of a repeating field.
type Repetition struct {
	raw string
	d   Delimiters
}

// Raw returns the encoded repetition.
func (r Repetition) Raw() string { return r.raw }

// Value returns the decoded first subcomponent of the first component.
func (r Repetition) Value() string { return r.Component(1).Value() }

// IsEmpty reports whether the repetition has no content.
func (r Repetition) IsEmpty() bool { return r.raw == "" }

// NumComponents returns the number of components; 0 when empty.
func (r Repetition) NumComponents() int { return count(r.raw, r.d.Component) }

// Component returns component n (1-based), or the zero value.
func (r Repetition) Component(n int) Component {
	v, _ := nth(r.raw, r.d.Component, n)
	return Component{raw: v, d: r.d}
}

// Components iterates over the components, numbered from 1.
func (r Repetition) Components() iter.Seq2[int, Component] {
	return func(yield func(int, Component) bool) {
		parts(r.raw, r.d.Component, func(n int, s string) bool { return yield(n, Component{raw: s, d: r.d}) })
	}
}

// Component is one component of a repetition.
type Component struct {
	raw string
	d   Delimiters
}

// Raw returns the encoded component, subcomponent separators included.
func (c Component) Raw() string { return c.raw }

// Value returns the decoded first subcomponent.
func (c Component) Value() string { return c.Subcomponent(1) }

// IsEmpty reports whether the component has no content.
func (c Component) IsEmpty() bool { return c.raw == "" }

// NumSubcomponents returns the number of subcomponents; 0 when empty.
func (c Component) NumSubcomponents() int { return count(c.raw, c.d.Subcomponent) }

// Subcomponent returns subcomponent n (1-based), decoded, or "".
func (c Component) Subcomponent(n int) string {
	v, _ := nth(c.raw, c.d.Subcomponent, n)
	return c.d.UnescapeValue(v)
}

// Subcomponents iterates over the decoded subcomponents, numbered from 1.
func (c Component) Subcomponents() iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		parts(c.raw, c.d.Subcomponent, func(n int, s string) bool { return yield(n, c.d.UnescapeValue(s)) })
	}
}
