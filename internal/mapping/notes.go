package mapping

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// Note is one mapping note split into where it applies and what happened, for tools that
// place it (interop hl7 lint, the admin message view).
type Note struct {
	// Location is the segment and field the note is about, in the terser syntax of
	// hl7v2.Location ("PID-7", "OBX(2)-5", "SPM-17.1"), or several joined by ", "; empty for
	// notes about the whole message.
	Location string
	// Text is the note without its location.
	Text string
}

// String formats the note as the mapping stores it: "LOCATION: TEXT".
func (n Note) String() string {
	if n.Location == "" {
		return n.Text
	}
	return n.Location + ": " + n.Text
}

// NoteAt records a note about location (see Note.Location). It is Notef with the location
// separated from the text, so that ParseNote gives them back whatever the text says.
func (b *Builder) NoteAt(location, format string, args ...any) {
	b.notes = append(b.notes, Note{Location: location, Text: fmt.Sprintf(format, args...)}.String())
}

// ParseNote splits a stored note into its location and text. Notes are stored as strings
// (Result.Notes, the attempt's mapping_notes); every note of this package starts with the
// location it is about, as NoteAt writes it. A note whose prefix is not a location has none.
func ParseNote(s string) Note {
	loc, text, ok := strings.Cut(s, ": ")
	if !ok || !isLocationList(loc) {
		return Note{Text: s}
	}
	return Note{Location: loc, Text: text}
}

// isLocationList reports whether s is one or more locations joined by ", ".
func isLocationList(s string) bool {
	for part := range strings.SplitSeq(s, ", ") {
		if !isLocation(part) {
			return false
		}
	}
	return true
}

// isLocation reports whether s is SEG[(n)][-F[(r)][.C[.S]]]: a segment ID (three upper-case
// letters or digits, starting with a letter), an optional occurrence and a field path.
func isLocation(s string) bool {
	if len(s) < 3 || s[0] < 'A' || s[0] > 'Z' || !isIDChar(s[1]) || !isIDChar(s[2]) {
		return false
	}
	s = s[3:]
	s, ok := skipIndex(s)
	if !ok {
		return false
	}
	if s == "" {
		return true
	}
	if s[0] != '-' {
		return false
	}
	s, ok = skipDigits(s[1:])
	if !ok {
		return false
	}
	if s, ok = skipIndex(s); !ok {
		return false
	}
	for range 2 {
		if s == "" {
			return true
		}
		if s[0] != '.' {
			return false
		}
		if s, ok = skipDigits(s[1:]); !ok {
			return false
		}
	}
	return s == ""
}

func isIDChar(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// skipIndex skips an optional "(digits)".
func skipIndex(s string) (string, bool) {
	if s == "" || s[0] != '(' {
		return s, true
	}
	rest, ok := skipDigits(s[1:])
	if !ok || rest == "" || rest[0] != ')' {
		return s, false
	}
	return rest[1:], true
}

// skipDigits skips one or more digits.
func skipDigits(s string) (string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[i:], i > 0
}

// UnmappableError is the error of a message that can never map, with the field that decided
// it. It wraps ErrUnmappable.
type UnmappableError struct {
	// Location is the segment or field at fault (e.g. "PID-3", "MRG").
	Location string
	// Reason says what is wrong with it.
	Reason string
}

// Error formats the error as "unmappable message: LOCATION: REASON".
func (e *UnmappableError) Error() string {
	return ErrUnmappable.Error() + ": " + e.Location + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrUnmappable) hold.
func (e *UnmappableError) Unwrap() error { return ErrUnmappable }

// Refusal returns the location and reason of a mapping error: those of an UnmappableError,
// else no location and the error's text.
func Refusal(err error) Note {
	if ue, ok := errors.AsType[*UnmappableError](err); ok {
		return Note{Location: ue.Location, Text: ue.Reason}
	}
	return Note{Text: err.Error()}
}

// segLocation names field n of seg as notes do: "OBX(2)-14", or "PID-7" for a segment that
// occurs once.
func segLocation(seg *hl7v2.Segment, n int) string {
	l := seg.Location()
	l.Field = n
	return l.String()
}
