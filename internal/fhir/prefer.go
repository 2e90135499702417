package fhir

import "strings"

// Prefer is what a request's Prefer headers (RFC 7240) ask of a FHIR server.
type Prefer struct {
	// Return is return=minimal|representation|OperationOutcome, "" when not given.
	Return string
	// Lenient is handling=lenient: unknown parameters are ignored instead of refused.
	Lenient bool
	// RespondAsync is respond-async, which a Bulk Data kick-off requires.
	RespondAsync bool
}

// ParsePrefer reads Prefer header values: preferences are separated by commas (within a
// header or across several), each with optional ;-parameters, and matched without case.
func ParsePrefer(values []string) Prefer {
	var p Prefer
	for _, v := range values {
		for _, pref := range strings.Split(v, ",") {
			token, _, _ := strings.Cut(pref, ";")
			k, val, _ := strings.Cut(strings.TrimSpace(token), "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "return":
				p.Return = val
			case "handling":
				p.Lenient = strings.EqualFold(val, "lenient")
			case "respond-async":
				p.RespondAsync = true
			}
		}
	}
	return p
}
