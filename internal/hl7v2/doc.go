// Package hl7v2 parses, builds, encodes and acknowledges HL7 version 2
// messages. It is pure: no I/O, and no global state beyond a bounded,
// internal cache of immutable time zones (see ParseTime).
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
// for byte (with CR terminators) when its input was ASCII or UTF-8.
//
// # Character sets
//
// A Message holds UTF-8 text. Parse decodes other input before splitting
// it, which is safe because every supported charset keeps the ASCII bytes
// (delimiters, terminators) as they are. The charset comes from the first
// repetition of MSH-18 (HL7 table 0211: ASCII, 8859/1–8859/9, 8859/15,
// UNICODE UTF-8, plus common spellings such as "ISO-8859-1", "Latin1",
// "UTF8" and the non-standard "WINDOWS-1252"); see CanonicalCharset.
// Further repetitions (ISO 2022 code extensions), UTF-16/32 and the
// multi-byte Asian sets are reported and not interpreted.
//
// Real feeds often do not say what they send, so the bytes decide when
// MSH-18 cannot:
//
//   - ASCII or valid UTF-8 input is used as is. Valid UTF-8 under an
//     empty, ASCII or unknown MSH-18 is accepted with an Info problem:
//     that is what such senders mean, and legacy single-byte text almost
//     never forms valid multi-byte UTF-8 by accident. For the same reason
//     valid UTF-8 under a single-byte MSH-18 is read as UTF-8, with a
//     Warning.
//   - Otherwise a single-byte MSH-18 decodes the message; under an empty,
//     ASCII or unknown MSH-18 the connector's charset (WithCharset) does;
//     failing both, and whenever MSH-18 claims UTF-8, the bytes that are
//     not valid UTF-8 are decoded as windows-1252 (or the connector's
//     charset), with a Warning at the first of them. windows-1252 is the
//     default because it equals Latin-1 on every printable Latin-1 byte
//     and gives 0x80–0x9F the characters Windows senders mean (€, curly
//     quotes) instead of invisible C1 controls.
//
// No byte is lost silently: bytes a charset leaves undefined become U+FFFD
// with a Warning. Message.Charset tells which charset was used; problem
// offsets refer to the input bytes. Encode always produces UTF-8 and
// leaves MSH-18 as the sender wrote it (Set it to "UNICODE UTF-8" before
// forwarding the text elsewhere); re-parsing that output yields the same
// fields. ReadHeader decodes MSH exactly like Parse.
//
// # Structures and groups
//
// Message.Structure gives the message structure (MSH-9.3, or derived from
// the event with StructureFor), and Message.Groups arranges the segments
// into that structure's segment groups — PATIENT_RESULT, ORDER_OBSERVATION,
// OBSERVATION and so on — leniently: segments out of place are kept and
// reported, never dropped.
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
// ParsePath and Message.Get for what unspecified levels mean. Code that
// reads the same paths from every message compiles them once with
// CompilePath or MustPath and reads with GetPath and LookupPath, which
// skip parsing the path on each call.
//
// # Escapes
//
// Delimiters.UnescapeValue documents the decoding of each escape sequence.
// In short: delimiter escapes and \Xhh\ hex are decoded exactly; \.br\ and
// the other formatted-text commands become plain-text line breaks and
// spaces, or vanish when they only affect layout (\H\, \N\, \.in\, ...);
// charset escapes (\C\, \M\, ISO 2022 code extensions) and locally defined
// ones (\Z\) are kept as written. \Xhh\ yields the raw bytes, which are
// not converted from the message's charset.
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
