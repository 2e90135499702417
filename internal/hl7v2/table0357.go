package hl7v2

import "errors"

// ErrorCode is an HL7 table 0357 message error condition code, for ERR-3.
type ErrorCode int

// Table 0357 codes.
const (
	ErrorCodeAccepted               ErrorCode = 0   // Message accepted
	ErrorCodeSegmentSequence        ErrorCode = 100 // Segment sequence error
	ErrorCodeRequiredFieldMissing   ErrorCode = 101 // Required field missing
	ErrorCodeDataType               ErrorCode = 102 // Data type error
	ErrorCodeTableValueNotFound     ErrorCode = 103 // Table value not found
	ErrorCodeValueTooLong           ErrorCode = 104 // Value too long (v2.6+)
	ErrorCodeUnsupportedMessageType ErrorCode = 200 // Unsupported message type
	ErrorCodeUnsupportedEventCode   ErrorCode = 201 // Unsupported event code
	ErrorCodeUnsupportedProcessing  ErrorCode = 202 // Unsupported processing id
	ErrorCodeUnsupportedVersion     ErrorCode = 203 // Unsupported version id
	ErrorCodeUnknownKey             ErrorCode = 204 // Unknown key identifier
	ErrorCodeDuplicateKey           ErrorCode = 205 // Duplicate key identifier
	ErrorCodeRecordLocked           ErrorCode = 206 // Application record locked
	ErrorCodeInternal               ErrorCode = 207 // Application internal error
)

var errorCodeText = map[ErrorCode]string{
	ErrorCodeAccepted:               "Message accepted",
	ErrorCodeSegmentSequence:        "Segment sequence error",
	ErrorCodeRequiredFieldMissing:   "Required field missing",
	ErrorCodeDataType:               "Data type error",
	ErrorCodeTableValueNotFound:     "Table value not found",
	ErrorCodeValueTooLong:           "Value too long",
	ErrorCodeUnsupportedMessageType: "Unsupported message type",
	ErrorCodeUnsupportedEventCode:   "Unsupported event code",
	ErrorCodeUnsupportedProcessing:  "Unsupported processing id",
	ErrorCodeUnsupportedVersion:     "Unsupported version id",
	ErrorCodeUnknownKey:             "Unknown key identifier",
	ErrorCodeDuplicateKey:           "Duplicate key identifier",
	ErrorCodeRecordLocked:           "Application record locked",
	ErrorCodeInternal:               "Application internal error",
}

// Text returns the table 0357 description, or "" for codes outside the table.
func (c ErrorCode) Text() string { return errorCodeText[c] }

// ErrorCodeFor maps an error from Parse or ReadHeader to the table 0357 code
// a NAK should carry:
//
//   - ErrNoMSH → 100 Segment sequence error: the first segment must be MSH.
//   - ErrShortMSH → 101 Required field missing: MSH-1/MSH-2 are absent.
//   - ErrBadDelimiters → 102 Data type error: MSH-1/MSH-2 are present but
//     not valid delimiter characters.
//   - anything else → 207 Application internal error; nil → 0.
func ErrorCodeFor(err error) ErrorCode {
	switch {
	case err == nil:
		return ErrorCodeAccepted
	case errors.Is(err, ErrNoMSH):
		return ErrorCodeSegmentSequence
	case errors.Is(err, ErrShortMSH):
		return ErrorCodeRequiredFieldMissing
	case errors.Is(err, ErrBadDelimiters):
		return ErrorCodeDataType
	}
	return ErrorCodeInternal
}
