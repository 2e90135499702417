package hl7v2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AckError describes one error reported in an ERR segment.
type AckError struct {
	Location    Location  // ERR-2, error location (ERL); zero when not tied to a place
	Code        ErrorCode // ERR-3.1, table 0357
	CodeText    string    // ERR-3.2; empty means Code.Text()
	Severity    Severity  // ERR-4, table 0516; 0 means SeverityError
	Diagnostic  string    // ERR-7, diagnostic information for support staff
	UserMessage string    // ERR-8, message for the sending user
}

// AckInput is what BuildAck needs besides the original header.
type AckInput struct {
	Code      AckCode    // MSA-1
	Text      string     // MSA-3; deprecated in HL7 since v2.4 but still widely read
	Errors    []AckError // one ERR segment each
	ControlID string     // MSH-10 of the ACK itself; required
	Now       time.Time  // MSH-7; zero means time.Now()
	// Application and Facility, when set, override the ACK's MSH-3 and
	// MSH-4, which otherwise echo the original MSH-5 and MSH-6.
	Application HD
	Facility    HD
}

// NewAck builds the acknowledgment for the message described by h:
//
//   - MSH with the original's delimiters and version (MSH-12), sending and
//     receiving application/facility swapped, MSH-9 ACK^<trigger>^ACK (the
//     structure component only from v2.3.1, where MSH-9.3 appeared),
//     in.ControlID as MSH-10, processing ID (MSH-11) and character sets
//     (MSH-18) copied so the sender reads the reply like its own message;
//   - MSA: in.Code, the original control ID, in.Text;
//   - one ERR per in.Errors: ERR-2 location, ERR-3 code, ERR-4 severity,
//     ERR-7 diagnostic, ERR-8 user message; for versions before 2.5, whose
//     ERR has only ERR-1, the location and code also go into ERR-1 (ELD).
func NewAck(h Header, in AckInput) (*Message, error) {
	if !in.Code.Valid() {
		return nil, fmt.Errorf("new ack: code %q: %w", in.Code, ErrBadAckCode)
	}
	if in.ControlID == "" {
		return nil, fmt.Errorf("new ack: %w", ErrNoControlID)
	}
	app, fac := in.Application, in.Facility
	if app.IsZero() {
		app = h.ReceivingApplication
	}
	if fac.IsZero() {
		fac = h.ReceivingFacility
	}
	return buildAck(Header{
		Delimiters:           h.Delimiters,
		SendingApplication:   app,
		SendingFacility:      fac,
		ReceivingApplication: h.SendingApplication,
		ReceivingFacility:    h.SendingFacility,
		Type:                 ackType(h.Type.Trigger, h.Version),
		ControlID:            in.ControlID,
		ProcessingID:         h.ProcessingID,
		ProcessingMode:       h.ProcessingMode,
		Version:              h.Version,
		CharacterSets:        h.CharacterSets,
	}, in.Now, in.Code, h.ControlID, in.Text, in.Errors)
}

// BuildAck is NewAck followed by Encode.
func BuildAck(h Header, in AckInput) ([]byte, error) {
	m, err := NewAck(h, in)
	if err != nil {
		return nil, err
	}
	return m.Encode(), nil
}

// NakInput is what BuildNak needs to reject input without a readable MSH.
type NakInput struct {
	Cause     error  // why the input could not be read; selects ERR-3 via ErrorCodeFor
	Text      string // MSA-3 and ERR-8; defaults to the table 0357 text
	ControlID string // MSH-10 of the NAK; required
	Now       time.Time
	// Version is MSH-12; default "2.5". The sender's version is unknown,
	// and 2.5 is old enough to be read by nearly everything while having
	// the modern ERR layout.
	Version string
	// ProcessingID is MSH-11; default "P".
	ProcessingID string
	Application  HD // MSH-3, the receiver's own identity
	Facility     HD // MSH-4
}

// BuildNak answers input that has no readable MSH, so nothing can be
// echoed: default delimiters, MSH-9 ACK (no trigger is known), MSA|AR with
// an empty MSA-2, and one ERR whose code ErrorCodeFor derives from the
// cause (100 when there is no MSH, 101/102 when its delimiters are missing
// or invalid). ERR-7 carries the cause's text for the sender's support
// staff.
func BuildNak(in NakInput) ([]byte, error) {
	if in.ControlID == "" {
		return nil, fmt.Errorf("build nak: %w", ErrNoControlID)
	}
	version := in.Version
	if version == "" {
		version = "2.5"
	}
	pid := in.ProcessingID
	if pid == "" {
		pid = "P"
	}
	code := ErrorCodeFor(in.Cause)
	loc := Location{Segment: "MSH", SegmentIndex: 1}
	var pe *ParseError
	if errors.As(in.Cause, &pe) && pe.Location.Segment != "" {
		loc = pe.Location
		loc.SegmentIndex = max(loc.SegmentIndex, 1)
	}
	text := in.Text
	if text == "" {
		text = code.Text()
	}
	e := AckError{Location: loc, Code: code, Severity: SeverityError, UserMessage: text}
	if in.Cause != nil {
		e.Diagnostic = in.Cause.Error()
	}
	m, err := buildAck(Header{
		SendingApplication: in.Application,
		SendingFacility:    in.Facility,
		Type:               ackType("", version),
		ControlID:          in.ControlID,
		ProcessingID:       pid,
		Version:            version,
	}, in.Now, AppReject, "", text, []AckError{e})
	if err != nil {
		return nil, err
	}
	return m.Encode(), nil
}

func buildAck(h Header, now time.Time, code AckCode, ackedID, text string, errs []AckError) (*Message, error) {
	if now.IsZero() {
		now = time.Now()
	}
	h.Timestamp = FormatTime(now, PrecisionSecond)
	m, err := NewMessage(h)
	if err != nil {
		return nil, fmt.Errorf("build ack: %w", err)
	}
	msa, _ := m.AddSegment("MSA")
	_ = msa.Set("1", string(code))
	_ = msa.Set("2", ackedID)
	_ = msa.Set("3", text)
	legacyERR := !versionAtLeast(h.Version, 2, 5, 0)
	for _, e := range errs {
		m.addERR(e, legacyERR)
	}
	return m, nil
}

func ackType(trigger, version string) MessageType {
	t := MessageType{Code: "ACK", Trigger: trigger}
	if versionAtLeast(version, 2, 3, 1) {
		t.Structure = "ACK"
	}
	return t
}

// addERR appends one ERR segment. Components are escaped individually and
// joined, so the ERR is valid with any delimiter set.
func (m *Message) addERR(e AckError, legacy bool) {
	d := m.d
	enc := func(sep byte, parts ...string) string {
		for i := range parts {
			parts[i] = d.EscapeValue(parts[i])
		}
		return joinTrim(sep, parts...)
	}
	num := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	codeText := e.CodeText
	if codeText == "" {
		codeText = e.Code.Text()
	}
	code := strconv.Itoa(int(e.Code))
	l := e.Location
	segIdx := ""
	if l.Segment != "" {
		segIdx = num(max(l.SegmentIndex, 1))
	}
	seg, _ := m.AddSegment("ERR")
	if legacy { // ELD: segment^sequence^field^code&text&HL70357
		_ = seg.SetRaw("1", joinTrim(d.Component, d.EscapeValue(l.Segment), segIdx, num(l.Field),
			enc(d.Subcomponent, code, codeText, "HL70357")))
	}
	_ = seg.SetRaw("2", enc(d.Component, l.Segment, segIdx, num(l.Field), num(l.Repetition), num(l.Component), num(l.Subcomponent)))
	_ = seg.SetRaw("3", enc(d.Component, code, codeText, "HL70357"))
	_ = seg.Set("4", e.Severity.Code())
	_ = seg.Set("7", e.Diagnostic)
	_ = seg.Set("8", e.UserMessage)
}

// versionAtLeast compares an HL7 version ID like "2.3.1" with want.
// Unparseable or empty versions count as recent: modern layouts are what
// current receivers expect.
func versionAtLeast(v string, want ...int) bool {
	parts := strings.Split(strings.TrimSpace(v), ".")
	for i, w := range want {
		n := 0
		if i < len(parts) {
			var err error
			if n, err = strconv.Atoi(parts[i]); err != nil {
				return true
			}
		}
		if n != w {
			return n > w
		}
	}
	return true
}

// AckInfo is what an acknowledgment says.
type AckInfo struct {
	Header    Header
	Code      AckCode    // MSA-1, as written (check Code.Valid)
	ControlID string     // MSA-2: control ID of the message being acknowledged
	Text      string     // MSA-3
	Errors    []AckError // from ERR segments, or MSA-6 in old messages
}

// ParseAck reads an acknowledgment received by an MLLP client. It accepts
// any message with an MSA segment (application acknowledgments are not
// always of type ACK) and reads errors from ERR-2/3/4/7/8, falling back to
// ERR-1 (ELD, before v2.5) and to MSA-6 (before v2.4) when those are all a
// receiver sent.
func ParseAck(data []byte) (AckInfo, error) {
	m, err := Parse(data)
	if err != nil {
		return AckInfo{}, fmt.Errorf("parse ack: %w", err)
	}
	msa := m.Segment("MSA", 1)
	if msa == nil {
		return AckInfo{}, fmt.Errorf("parse ack: %w", ErrNoMSA)
	}
	info := AckInfo{
		Header:    m.Header(),
		Code:      AckCode(strings.TrimSpace(msa.Get("1"))),
		ControlID: msa.Get("2"),
		Text:      msa.Get("3"),
	}
	for _, e := range m.Segments("ERR") {
		info.Errors = append(info.Errors, readERR(e))
	}
	if len(info.Errors) == 0 && !msa.Field(6).IsEmpty() {
		code, _ := strconv.Atoi(msa.Get("6.1"))
		info.Errors = append(info.Errors, AckError{Code: ErrorCode(code), CodeText: msa.Get("6.2")})
	}
	return info, nil
}

func readERR(s *Segment) AckError {
	atoi := func(v string) int { n, _ := strconv.Atoi(v); return n }
	var e AckError
	if !s.Field(2).IsEmpty() || !s.Field(3).IsEmpty() {
		e.Location = Location{
			Segment:      s.Get("2.1"),
			SegmentIndex: atoi(s.Get("2.2")),
			Field:        atoi(s.Get("2.3")),
			Repetition:   atoi(s.Get("2.4")),
			Component:    atoi(s.Get("2.5")),
			Subcomponent: atoi(s.Get("2.6")),
		}
		e.Code = ErrorCode(atoi(s.Get("3.1")))
		e.CodeText = s.Get("3.2")
	} else { // ELD
		e.Location = Location{Segment: s.Get("1.1"), SegmentIndex: atoi(s.Get("1.2")), Field: atoi(s.Get("1.3"))}
		e.Code = ErrorCode(atoi(s.Get("1.4.1")))
		e.CodeText = s.Get("1.4.2")
	}
	e.Severity = severityFromCode(s.Get("4"))
	e.Diagnostic = s.Get("7")
	e.UserMessage = s.Get("8")
	return e
}
