package hl7v2

import "strings"

// AckCode is MSA-1, the acknowledgment code (HL7 table 0008).
type AckCode string

// Acknowledgment codes. The A* codes answer in original mode and at the
// application level of enhanced mode; the C* codes are enhanced mode's
// accept ("commit") acknowledgments: the receiver has safely stored the
// message, nothing more.
const (
	AppAccept    AckCode = "AA" // application accept
	AppError     AckCode = "AE" // application error: processing failed, sender may fix and resend
	AppReject    AckCode = "AR" // application reject: message unacceptable (type, version, structure)
	CommitAccept AckCode = "CA" // commit accept: stored
	CommitError  AckCode = "CE" // commit error: could not store, try again
	CommitReject AckCode = "CR" // commit reject: will not store (e.g. unsupported type or version)
)

// Valid reports whether c is one of the six table 0008 codes.
func (c AckCode) Valid() bool {
	switch c {
	case AppAccept, AppError, AppReject, CommitAccept, CommitError, CommitReject:
		return true
	}
	return false
}

// Accepted reports whether c is positive (AA or CA).
func (c AckCode) Accepted() bool { return c == AppAccept || c == CommitAccept }

// Outcome is what the receiver did with a message, independent of the
// acknowledgment mode; ChooseAck turns it into an AckCode.
type Outcome uint8

// Outcomes. The zero value is deliberately not "accepted": an outcome left
// unset must never acknowledge a message positively.
const (
	OutcomeAccepted Outcome = iota + 1 // stored or processed
	OutcomeError                       // failed for a reason that may go away (e.g. storage down)
	OutcomeRejected                    // will never be accepted as sent
)

// AckMode is the acknowledgment protocol a message asks for.
type AckMode uint8

// Acknowledgment modes.
const (
	// AckModeOriginal: MSH-15 and MSH-16 both empty; one application-level
	// acknowledgment (AA/AE/AR) answers each message.
	AckModeOriginal AckMode = iota + 1
	// AckModeEnhanced: MSH-15 or MSH-16 valued; an accept acknowledgment
	// (CA/CE/CR) as MSH-15 asks, an application acknowledgment as MSH-16 asks.
	AckModeEnhanced
)

// ModeOf returns the acknowledgment mode h asks for. HL7 v2 (chapter 2,
// acknowledgment rules): enhanced mode as soon as either MSH-15 or MSH-16
// is valued; original mode when both are empty.
func ModeOf(h Header) AckMode {
	if h.AcceptAckType != "" || h.ApplicationAckType != "" {
		return AckModeEnhanced
	}
	return AckModeOriginal
}

// IsAck reports whether h describes an acknowledgment (MSH-9.1 "ACK").
// Acknowledgments are never acknowledged: two engines doing so would ping-pong
// forever.
func IsAck(h Header) bool { return strings.EqualFold(strings.TrimSpace(h.Type.Code), "ACK") }

// ChooseAck picks the acknowledgment a receiver that has just stored (or
// failed to store) a message should send at once, and whether to send one:
//
//   - MSH-15 valued (enhanced mode, accept level): CA, CE or CR, sent when
//     MSH-15 asks for it — AL always, NE never, ER only on error or
//     reject, SU only on success.
//   - MSH-15 empty: the message gets the application-level code AA, AE or
//     AR. In original mode (MSH-16 empty too) it is always sent; in
//     enhanced mode with only MSH-16 valued, MSH-16 decides as above — the
//     receiver acts as the application, since it has no accept step to
//     report.
//
// Unknown MSH-15/16 values are treated as AL: a sender waiting for an ACK
// that never comes is worse than one receiving an ACK it did not ask for.
// An acknowledgment is never acknowledged (send is false). An unknown
// Outcome is treated as OutcomeError.
func ChooseAck(h Header, o Outcome) (code AckCode, send bool) {
	if IsAck(h) {
		return "", false
	}
	if h.AcceptAckType != "" {
		return pick(o, CommitAccept, CommitError, CommitReject), wanted(h.AcceptAckType, o)
	}
	code = pick(o, AppAccept, AppError, AppReject)
	if h.ApplicationAckType == "" {
		return code, true
	}
	return code, wanted(h.ApplicationAckType, o)
}

func pick(o Outcome, accept, errCode, reject AckCode) AckCode {
	switch o {
	case OutcomeAccepted:
		return accept
	case OutcomeRejected:
		return reject
	}
	return errCode
}

// wanted applies HL7 table 0155 (accept/application acknowledgment
// conditions).
func wanted(condition string, o Outcome) bool {
	switch strings.ToUpper(strings.TrimSpace(condition)) {
	case "NE":
		return false
	case "ER":
		return o != OutcomeAccepted
	case "SU":
		return o == OutcomeAccepted
	}
	return true
}
