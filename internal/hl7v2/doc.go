// Package hl7v2 parses, builds, encodes and acknowledges HL7 version 2
// messages. It is pure: no I/O, no global state.
//
// # Model
//
// A Message is a list of Segments; a segment has numbered Fields; a field
// has Repetitions, a repetition Components, a component Subcomponents.
// Numbering follows HL7 (1-based) including the MSH quirk: MSH-1 is the
// field separator itself, MSH-2 the encoding characters, MSH-3 the first
// field after them. FHS and BHS are numbered the same way. Z-segments are
// ordinary segments.
//
// Values are kept encoded, as slices of one copy of the input, and decoded
// (unescaped) when read: splitting happens before unescaping, so an escaped
// delimiter such as \S\ stays data. Raw accessors return the encoded text;
// Value/Get return decoded leaves. An unmodified message encodes back byte
// for byte (with CR terminators).
//
// # Leniency and problems
//
// Parse accepts what real feeds send — CR, LF or CRLF terminators, a UTF-8
// BOM, whitespace before MSH, blank lines, a short or doubled MSH-2,
// unknown escapes — and records each deviation as a Problem (severity,
// location, stable code) on the message. It refuses input only when there
// is no MSH or its delimiters cannot be read; that error is a *ParseError
// (use errors.As, or errors.Is with ErrNoMSH, ErrShortMSH, ErrBadDelimiters).
//
// # Paths
//
// Get, Lookup, Raw, Set and SetRaw take terser-style paths with HL7's
// 1-based indexes: "PID-3", "PID-3(2).1" (second repetition, first
// component), "OBX(3)-5" (third OBX), "PID-5.1.2" (subcomponent). See
// ParsePath and Message.Get for what unspecified levels mean.
//
// # Escapes
//
// Delimiters.UnescapeValue documents the decoding of each escape sequence.
// In short: delimiter escapes and \Xhh\ hex are decoded exactly; \.br\ and
// the other formatted-text commands become plain-text line breaks and
// spaces, or vanish when they only affect layout (\H\, \N\, \.in\, ...);
// charset escapes (\C\, \M\) and locally defined ones (\Z\) are kept as
// written until MSH-18 support lands. Text is handled as bytes; no charset
// conversion happens here.
//
// # Acknowledgments
//
// ReadHeader reads just MSH, for a listener that must store and answer
// quickly. ChooseAck picks the code per the original/enhanced mode rules,
// BuildAck builds the ACK (swapped routing, same delimiters and version,
// MSA, ERR with table 0357 codes), BuildNak answers input with no usable
// MSH, and ParseAck reads an acknowledgment on the sending side. IsAck
// guards against acknowledging acknowledgments.
package hl7v2
