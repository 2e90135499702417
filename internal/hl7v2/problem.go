package hl7v2

import (
	"errors"
	"fmt"
)

// Sentinel errors. Parse and ReadHeader wrap the first three in a *ParseError;
// the others are wrapped with context by the function that returns them, so
// callers test with errors.Is.
var (
	// ErrNoMSH means the input does not start with an MSH segment (after an
	// optional byte order mark and leading whitespace). Empty input and batch
	// files (FHS/BHS first) report it too.
	ErrNoMSH = errors.New("hl7v2: no MSH segment at start of message")
	// ErrShortMSH means the MSH segment ends before its field separator, so no
	// delimiter can be read.
	ErrShortMSH = errors.New("hl7v2: MSH segment too short to read delimiters")
	// ErrBadDelimiters means MSH-1/MSH-2 declare unusable delimiters: not
	// printable ASCII punctuation, or the same character used twice.
	ErrBadDelimiters = errors.New("hl7v2: invalid delimiters in MSH-1/MSH-2")

	// ErrBadPath means a terser path such as "PID-3(2).1" is malformed.
	ErrBadPath = errors.New("hl7v2: invalid path")
	// ErrNoSegment means a path names a segment occurrence the message lacks.
	ErrNoSegment = errors.New("hl7v2: no such segment")
	// ErrReadOnly means a write targeted MSH-1 or MSH-2, which are fixed when
	// the message is created because every other field depends on them.
	ErrReadOnly = errors.New("hl7v2: MSH-1 and MSH-2 are read-only")
	// ErrBadValue means a raw value passed to SetRaw or AddSegment contains a
	// segment terminator or a delimiter that does not belong at that level.
	ErrBadValue = errors.New("hl7v2: value would corrupt the encoding")

	// ErrBadTime means a DTM/TS value does not follow
	// YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
	ErrBadTime = errors.New("hl7v2: invalid date/time")

	// ErrNoMSA means an acknowledgment has no MSA segment.
	ErrNoMSA = errors.New("hl7v2: acknowledgment has no MSA segment")
	// ErrNoControlID means BuildAck/BuildNak were called without the control
	// ID (MSH-10) for the acknowledgment itself.
	ErrNoControlID = errors.New("hl7v2: acknowledgment control ID is required")
	// ErrBadAckCode means an AckCode is not one of AA, AE, AR, CA, CE, CR.
	ErrBadAckCode = errors.New("hl7v2: invalid acknowledgment code")
)

// ParseError is the error Parse and ReadHeader return when a message cannot
// be read at all. Err is one of ErrNoMSH, ErrShortMSH, ErrBadDelimiters, or,
// with WithStrict, ErrStrict.
type ParseError struct {
	Err      error    // sentinel, for errors.Is
	Location Location // where the problem is, as far as known
	Offset   int      // byte offset in the input
	Detail   string   // human-readable specifics; may be empty
}

// Error implements error.
func (e *ParseError) Error() string {
	msg := e.Err.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if loc := e.Location.String(); loc != "" {
		return fmt.Sprintf("%s (at %s, offset %d)", msg, loc, e.Offset)
	}
	return fmt.Sprintf("%s (offset %d)", msg, e.Offset)
}

// Unwrap returns the sentinel error so errors.Is works.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrStrict is wrapped by the *ParseError Parse returns under WithStrict when
// it found a problem of Error severity; Detail names the problem.
var ErrStrict = errors.New("hl7v2: message has errors")

// Severity grades a Problem and maps onto HL7 table 0516 (error severity)
// for ERR-4. The zero value means "unspecified"; AckError treats it as
// SeverityError.
type Severity uint8

// Severity values, in increasing order of gravity.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityError
	SeverityFatal
)

// String returns the lower-case name of the severity.
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	case SeverityFatal:
		return "fatal"
	}
	return "unspecified"
}

// Code returns the HL7 table 0516 code (I, W, E, F); unspecified maps to E
// because an error report with no grade is safest read as an error.
func (s Severity) Code() string {
	switch s {
	case SeverityInfo:
		return "I"
	case SeverityWarning:
		return "W"
	case SeverityFatal:
		return "F"
	}
	return "E"
}

// severityFromCode is the inverse of Severity.Code; unknown codes give 0.
func severityFromCode(c string) Severity {
	switch c {
	case "I":
		return SeverityInfo
	case "W":
		return SeverityWarning
	case "E":
		return SeverityError
	case "F":
		return SeverityFatal
	}
	return 0
}

// ProblemCode identifies the kind of a Problem; it is stable and meant for
// programs (filters, metrics), while Problem.Message is for people.
type ProblemCode string

// Problem codes reported by Parse.
const (
	// ProblemBOM: a UTF-8 byte order mark preceded MSH and was skipped (Info).
	ProblemBOM ProblemCode = "bom"
	// ProblemLeadingJunk: whitespace preceded MSH and was skipped (Warning).
	ProblemLeadingJunk ProblemCode = "leading-junk"
	// ProblemDoubledEscape: MSH-2 repeated the escape character, as in
	// `^~\\&` (a common double-escaping bug); the duplicate is ignored (Warning).
	ProblemDoubledEscape ProblemCode = "msh2-doubled-escape"
	// ProblemShortEncoding: MSH-2 has fewer than four characters; defaults
	// fill the missing ones (Warning).
	ProblemShortEncoding ProblemCode = "msh2-short"
	// ProblemLongEncoding: MSH-2 has more than five characters; the extra
	// ones are ignored (Warning).
	ProblemLongEncoding ProblemCode = "msh2-long"
	// ProblemMissingHeaderField: MSH-9, -10, -11 or -12 is empty (Warning).
	ProblemMissingHeaderField ProblemCode = "msh-missing-field"
	// ProblemEmptySegment: a blank line between segments was skipped (Warning).
	ProblemEmptySegment ProblemCode = "empty-segment"
	// ProblemSegmentName: a segment ID is not three characters [A-Z][A-Z0-9]{2}
	// (Error). The segment is kept as written.
	ProblemSegmentName ProblemCode = "bad-segment-name"
	// ProblemRepeatedMSH: an MSH segment appears after the first one, usually
	// two messages glued together (Warning).
	ProblemRepeatedMSH ProblemCode = "repeated-msh"
	// ProblemEmbeddedNewline: a bare LF not followed by something that looks
	// like a segment was kept inside a field value (Warning).
	ProblemEmbeddedNewline ProblemCode = "embedded-newline"
	// ProblemBadEscape: an escape sequence is unterminated, unknown or has bad
	// hex; it is kept literally (Warning).
	ProblemBadEscape ProblemCode = "bad-escape"
	// ProblemUnsupportedEscape: a charset (\C..\, \M..\) or locally defined
	// (\Z..\) escape; kept literally for now (Info).
	ProblemUnsupportedEscape ProblemCode = "unsupported-escape"

	// ProblemCharsetUnknown: MSH-18, or the connector's WithCharset, names
	// a character set this package does not know; it is ignored (Warning).
	ProblemCharsetUnknown ProblemCode = "charset-unknown"
	// ProblemCharsetUnsupported: MSH-18 or WithCharset names a known
	// character set that cannot be decoded here, such as UTF-16 (Warning).
	ProblemCharsetUnsupported ProblemCode = "charset-unsupported"
	// ProblemCharsetCodeExtension: MSH-18 repeats, declaring ISO 2022 code
	// extensions, which are not interpreted (Info; Warning when the text
	// contains ESC bytes).
	ProblemCharsetCodeExtension ProblemCode = "charset-code-extension"
	// ProblemCharsetAssumed: MSH-18 does not name the character set the
	// non-ASCII text is in; it was read as valid UTF-8 or decoded with the
	// connector's charset (Info). The location is the first non-ASCII
	// character.
	ProblemCharsetAssumed ProblemCode = "charset-assumed"
	// ProblemCharsetUTF8: MSH-18 or the connector names a single-byte
	// character set but the text is valid UTF-8, so it was read as UTF-8
	// (Warning). The location is the first non-ASCII character.
	ProblemCharsetUTF8 ProblemCode = "charset-utf8"
	// ProblemCharsetFallback: the text is not valid UTF-8 although MSH-18
	// is empty, ASCII or UTF-8; the invalid bytes were decoded with the
	// fallback charset (Warning). The location is the first invalid byte.
	ProblemCharsetFallback ProblemCode = "charset-fallback"
	// ProblemCharsetUndefined: bytes the character set leaves undefined
	// were replaced by U+FFFD (Warning). The location is the first one.
	ProblemCharsetUndefined ProblemCode = "charset-undefined"
)

// Problem is one irregularity the lenient parser noticed and worked around.
// Nothing is dropped silently: anything skipped or reinterpreted shows up here.
type Problem struct {
	Severity Severity
	Location Location
	Offset   int // byte offset in the input, or -1 when not tied to one
	Code     ProblemCode
	Message  string
}

// String formats the problem for logs, e.g. "warning PID-5: ...".
func (p Problem) String() string {
	return fmt.Sprintf("%s %s [%s]: %s", p.Severity, p.Location, p.Code, p.Message)
}
