package fhir

import "fmt"

// MaxDepth bounds the nesting of objects and arrays in a resource a client sends. The
// deepest real FHIR content (a Questionnaire's nested items, extensions within extensions)
// stays well under it; what goes past it is an attack on the parsers, the indexer and the
// database, not data.
const MaxDepth = 64

// CheckDepth refuses JSON nested deeper than MaxDepth, in one pass over the bytes (strings are
// skipped whole, so brackets inside them do not count). It does not validate the JSON.
func CheckDepth(body []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("the JSON is nested more than %d levels deep", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
