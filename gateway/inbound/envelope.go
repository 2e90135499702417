package inbound

import (
	"errors"
	"regexp"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// The ACK path checks the envelope — what the engine itself needs of MSH to store, route and
// process a message — and refuses (AR) a message whose envelope is broken, so the sender
// learns at once. The content (PID-3, OBX values…) is the pipeline's to judge: it is stored,
// acknowledged, and dead-lettered with its reason if it cannot be mapped.
var (
	messageCodePattern = regexp.MustCompile(`^[A-Za-z0-9]{3}$`)
	versionPattern     = regexp.MustCompile(`^2\.[1-9](\.[0-9]{1,2})?$`)
)

// envelopeRefusal says why h cannot be accepted, or ok=false when it can.
func envelopeRefusal(h hl7v2.Header) (text string, e hl7v2.AckError, refused bool) {
	at := func(field int) hl7v2.Location {
		return hl7v2.Location{Segment: "MSH", SegmentIndex: 1, Field: field}
	}
	switch {
	case h.Type.Code == "":
		return "MSH-9 (message type) is required", hl7v2.AckError{Code: hl7v2.ErrorCodeRequiredFieldMissing, Location: at(9)}, true
	case !messageCodePattern.MatchString(h.Type.Code):
		return "MSH-9.1 " + quoteShort(h.Type.Code) + " is not a message type (three letters or digits, e.g. ADT)",
			hl7v2.AckError{Code: hl7v2.ErrorCodeUnsupportedMessageType, Location: at(9)}, true
	case h.Version == "":
		return "MSH-12 (version id) is required", hl7v2.AckError{Code: hl7v2.ErrorCodeRequiredFieldMissing, Location: at(12)}, true
	case !versionPattern.MatchString(h.Version):
		return "MSH-12 " + quoteShort(h.Version) + " is not an HL7 v2 version (2.1 to 2.9)",
			hl7v2.AckError{Code: hl7v2.ErrorCodeUnsupportedVersion, Location: at(12)}, true
	}
	for _, cs := range h.CharacterSets {
		if cs == "" {
			continue
		}
		if _, err := hl7v2.CanonicalCharset(cs); err != nil {
			why := "is not a character set of HL7 table 0211"
			if errors.Is(err, hl7v2.ErrUnsupportedCharset) {
				why = "is a character set this engine cannot decode (UTF-16, UTF-32 and the multi-byte Asian sets are not supported)"
			}
			return "MSH-18 " + quoteShort(cs) + " " + why, hl7v2.AckError{Code: hl7v2.ErrorCodeTableValueNotFound, Location: at(18)}, true
		}
	}
	return "", hl7v2.AckError{}, false
}

// quoteShort quotes a sender's value for an ACK text, cut to 40 characters.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}
