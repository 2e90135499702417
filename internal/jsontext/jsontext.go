// Package jsontext checks that request text can be stored by PostgreSQL: JSON bodies that
// become jsonb, and strings that become text. PostgreSQL refuses bytes that are not UTF-8
// (SQLSTATE 22021), a UTF-16 surrogate escape without its pair (`"\ud800"`, 22P02) and NUL,
// escaped in jsonb (`\u0000`, 22P05) or raw in text (22021). Checked where a request comes in,
// such input is the client's error (400) that names the problem, not a database failure.
package jsontext

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every *Error.
var ErrInvalid = errors.New("text PostgreSQL cannot store")

// Error is the first problem found, and where.
type Error struct {
	// Offset is the byte offset of the problem in the checked text.
	Offset int
	// Problem says what is wrong, e.g. "invalid UTF-8".
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("%s at byte %d", e.Problem, e.Offset) }

// Unwrap makes every Error an ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Problems Check and CheckString report.
const (
	problemUTF8 = "invalid UTF-8 (the text must be UTF-8)"
	problemNUL  = "NUL (\\u0000) in a string, which cannot be stored"
)

// Check reports the first thing in JSON text b that PostgreSQL's jsonb cannot hold: bytes
// that are not UTF-8 (anywhere), NUL (raw, or escaped as \u0000 in a string), or a lone
// surrogate escape in a string (a high one not followed by a low one, or a low one alone). It
// does not check the JSON syntax otherwise: the parser that reads b does.
func Check(b []byte) error {
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return &Error{Offset: i, Problem: problemUTF8}
			}
			i += n
			continue
		}
		if c == 0 {
			return &Error{Offset: i, Problem: problemNUL}
		}
		if !inString {
			inString = c == '"'
			i++
			continue
		}
		switch c {
		case '"':
			inString = false
			i++
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				if r, ok := hex4(b[i+2:]); ok {
					if err := checkEscape(b, i, r); err != nil {
						return err
					}
					if isHighSurrogate(r) {
						i += 12 // the pair, checked
					} else {
						i += 6
					}
					continue
				}
			}
			i += 2 // another escape, or a malformed one the parser refuses
		default:
			i++
		}
	}
	return nil
}

// checkEscape checks the \uXXXX escape of r at b[i:].
func checkEscape(b []byte, i int, r rune) error {
	switch {
	case r == 0:
		return &Error{Offset: i, Problem: problemNUL}
	case isHighSurrogate(r):
		if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
			if lo, ok := hex4(b[i+8:]); ok && isLowSurrogate(lo) {
				return nil
			}
		}
		return &Error{Offset: i, Problem: fmt.Sprintf("lone surrogate \\u%04x in a string (a high surrogate must be followed by a low one)", r)}
	case isLowSurrogate(r):
		return &Error{Offset: i, Problem: fmt.Sprintf("lone surrogate \\u%04x in a string (a low surrogate must follow a high one)", r)}
	}
	return nil
}

func isHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func isLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// CheckString reports the first thing in s that PostgreSQL's text cannot hold: bytes that are
// not UTF-8, or NUL. (A query parameter, a form value: decoded text, not JSON.)
func CheckString(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0 {
			return &Error{Offset: i, Problem: "NUL (a zero byte), which cannot be stored"}
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return &Error{Offset: i, Problem: problemUTF8}
		}
		i += n
	}
	return nil
}
