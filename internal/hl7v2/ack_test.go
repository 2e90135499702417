package hl7v2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var ackNow = time.Date(2024, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))

func TestBuildAck(t *testing.T) {
	h, err := ReadHeader(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   AckInput
		want string
	}{
		{"accept", AckInput{Code: CommitAccept, ControlID: "ACK-1", Now: ackNow},
			"MSH|^~\\&|LAB|LABFAC|EPIC^1.2.3^ISO|HOSP|20240304050607+0100||ACK^R01^ACK|ACK-1|P^T|2.5.1||||||UNICODE UTF-8~8859/1\r" +
				"MSA|CA|CTRL-42\r"},
		{"errors", AckInput{Code: AppError, ControlID: "ACK-2", Now: ackNow, Text: "PID-3 missing | see ERR",
			Errors: []AckError{
				{Location: Location{Segment: "PID", Field: 3}, Code: ErrorCodeRequiredFieldMissing, UserMessage: "Patient ID ^ required"},
				{Location: Location{Segment: "OBX", SegmentIndex: 2, Field: 5, Repetition: 1, Component: 2}, Code: ErrorCodeDataType,
					Severity: SeverityWarning, Diagnostic: "not numeric"},
				{Code: ErrorCodeInternal, Severity: SeverityFatal},
			}},
			"MSH|^~\\&|LAB|LABFAC|EPIC^1.2.3^ISO|HOSP|20240304050607+0100||ACK^R01^ACK|ACK-2|P^T|2.5.1||||||UNICODE UTF-8~8859/1\r" +
				"MSA|AE|CTRL-42|PID-3 missing \\F\\ see ERR\r" +
				"ERR||PID^1^3|101^Required field missing^HL70357|E||||Patient ID \\S\\ required\r" +
				"ERR||OBX^2^5^1^2|102^Data type error^HL70357|W|||not numeric\r" +
				"ERR|||207^Application internal error^HL70357|F\r"},
		{"own identity", AckInput{Code: AppReject, ControlID: "ACK-3", Now: ackNow, Application: HD{NamespaceID: "NHP"},
			Errors: []AckError{{Code: ErrorCodeUnsupportedMessageType, Location: Location{Segment: "MSH", Field: 9}}}},
			"MSH|^~\\&|NHP|LABFAC|EPIC^1.2.3^ISO|HOSP|20240304050607+0100||ACK^R01^ACK|ACK-3|P^T|2.5.1||||||UNICODE UTF-8~8859/1\r" +
				"MSA|AR|CTRL-42\r" +
				"ERR||MSH^1^9|200^Unsupported message type^HL70357|E\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildAck(h, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.Split(tt.want, "\r"), strings.Split(string(got), "\r")); diff != "" {
				t.Errorf("BuildAck (-want +got):\n%s", diff)
			}
			info, err := ParseAck(got)
			if err != nil {
				t.Fatal(err)
			}
			if info.Code != tt.in.Code || info.ControlID != "CTRL-42" || info.Text != tt.in.Text {
				t.Errorf("ParseAck = %+v", info)
			}
			if len(info.Errors) != len(tt.in.Errors) {
				t.Fatalf("ParseAck errors = %d, want %d", len(info.Errors), len(tt.in.Errors))
			}
			for i, e := range tt.in.Errors {
				want := e
				if want.Location.Segment != "" {
					want.Location.SegmentIndex = max(want.Location.SegmentIndex, 1)
				}
				if want.Severity == 0 {
					want.Severity = SeverityError
				}
				want.CodeText = e.Code.Text()
				if diff := cmp.Diff(want, info.Errors[i]); diff != "" {
					t.Errorf("ParseAck error %d (-want +got):\n%s", i, diff)
				}
			}
			if !IsAck(info.Header) {
				t.Error("IsAck(ack header) = false")
			}
		})
	}
}

func TestBuildAckKeepsDelimitersAndVersion(t *testing.T) {
	orig := "MSH*%$!&*APP%1.2%ISO*FAC*ME*MYFAC*20240101**ADT%A01*C!F!1*T*2.3\rPID*1"
	h, err := ReadHeader([]byte(orig))
	if err != nil {
		t.Fatal(err)
	}
	got, err := BuildAck(h, AckInput{Code: AppError, ControlID: "A*1", Now: ackNow, Text: "bad %",
		Errors: []AckError{{Location: Location{Segment: "PID", Field: 3}, Code: ErrorCodeRequiredFieldMissing, UserMessage: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	// v2.3: no MSH-9.3, and ERR-1 (ELD) carries location and code.
	want := "MSH*%$!&*ME*MYFAC*APP%1.2%ISO*FAC*20240304050607+0100**ACK%A01*A!F!1*T*2.3\r" +
		"MSA*AE*C!F!1*bad !S!\r" +
		"ERR*PID%1%3%101&Required field missing&HL70357*PID%1%3*101%Required field missing%HL70357*E****x\r"
	if diff := cmp.Diff(strings.Split(want, "\r"), strings.Split(string(got), "\r")); diff != "" {
		t.Errorf("BuildAck (-want +got):\n%s", diff)
	}
	info, err := ParseAck(got)
	if err != nil || info.ControlID != "C*1" || info.Text != "bad %" || info.Header.ControlID != "A*1" {
		t.Errorf("ParseAck = %+v, %v", info, err)
	}
}

func TestBuildAckErrors(t *testing.T) {
	h := Header{ControlID: "1"}
	if _, err := BuildAck(h, AckInput{Code: "OK", ControlID: "x"}); !errors.Is(err, ErrBadAckCode) {
		t.Errorf("bad code: %v", err)
	}
	if _, err := BuildAck(h, AckInput{Code: AppAccept}); !errors.Is(err, ErrNoControlID) {
		t.Errorf("no control id: %v", err)
	}
	if _, err := BuildAck(Header{Delimiters: Delimiters{Field: '|', Component: '|'}}, AckInput{Code: AppAccept, ControlID: "x"}); !errors.Is(err, ErrBadDelimiters) {
		t.Errorf("bad delimiters: %v", err)
	}
	// A zero header still yields a valid ACK with default delimiters.
	got, err := BuildAck(Header{}, AckInput{Code: AppAccept, ControlID: "x", Now: ackNow})
	if err != nil {
		t.Fatal(err)
	}
	if want := "MSH|^~\\&|||||20240304050607+0100||ACK^^ACK|x\rMSA|AA\r"; string(got) != want {
		t.Errorf("BuildAck(zero header) = %q, want %q", got, want)
	}
}

func TestNewAckReturnsMessage(t *testing.T) {
	h, _ := ReadHeader([]byte(mshStd))
	m, err := NewAck(h, AckInput{Code: AppAccept, ControlID: "A1", Now: ackNow})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Get("MSA-2"); got != "CTRL1" {
		t.Errorf("MSA-2 = %q", got)
	}
	if got := m.Type(); got != (MessageType{"ACK", "A01", "ACK"}) {
		t.Errorf("Type = %v", got)
	}
}

func TestBuildNak(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"no msh", "PID|1||123",
			"MSH|^~\\&|NHP||||20240304050607+0100||ACK^^ACK|NAK-1|P|2.5\r" +
				"MSA|AR||Segment sequence error\r" +
				"ERR||MSH^1|100^Segment sequence error^HL70357|E|||hl7v2: no MSH segment at start of message (at MSH, offset 0)|Segment sequence error\r"},
		{"short msh", "MSH",
			"MSH|^~\\&|NHP||||20240304050607+0100||ACK^^ACK|NAK-1|P|2.5\r" +
				"MSA|AR||Required field missing\r" +
				"ERR||MSH^1^1|101^Required field missing^HL70357|E|||hl7v2: MSH segment too short to read delimiters (at MSH-1, offset 3)|Required field missing\r"},
		{"bad delimiters", "MSH|^^^^|",
			"MSH|^~\\&|NHP||||20240304050607+0100||ACK^^ACK|NAK-1|P|2.5\r" +
				"MSA|AR||Data type error\r" +
				"ERR||MSH^1^2|102^Data type error^HL70357|E|||hl7v2: invalid delimiters in MSH-1/MSH-2: MSH-1 '\\F\\', MSH-2 \"\\S\\\\S\\\\S\\\": component and repetition separators are both '\\S\\' (at MSH-2, offset 3)|Data type error\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cause := ReadHeader([]byte(tt.input))
			if cause == nil {
				t.Fatal("expected a read error")
			}
			got, err := BuildNak(NakInput{Cause: cause, ControlID: "NAK-1", Now: ackNow, Application: HD{NamespaceID: "NHP"}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.Split(tt.want, "\r"), strings.Split(string(got), "\r")); diff != "" {
				t.Errorf("BuildNak (-want +got):\n%s", diff)
			}
			info, err := ParseAck(got)
			if err != nil {
				t.Fatal(err)
			}
			if info.Code != AppReject || info.ControlID != "" || len(info.Errors) != 1 || info.Errors[0].Code != ErrorCodeFor(cause) {
				t.Errorf("ParseAck = %+v", info)
			}
		})
	}
	if _, err := BuildNak(NakInput{}); !errors.Is(err, ErrNoControlID) {
		t.Errorf("BuildNak without control id: %v", err)
	}
}

func TestChooseAck(t *testing.T) {
	type result struct {
		Code AckCode
		Send bool
	}
	hdr := func(code, accept, app string) Header {
		return Header{Type: MessageType{Code: code}, AcceptAckType: accept, ApplicationAckType: app}
	}
	tests := []struct {
		name     string
		h        Header
		mode     AckMode
		accepted result
		errored  result
		rejected result
	}{
		{"original", hdr("ADT", "", ""), AckModeOriginal, result{AppAccept, true}, result{AppError, true}, result{AppReject, true}},
		{"enhanced AL", hdr("ADT", "AL", "NE"), AckModeEnhanced, result{CommitAccept, true}, result{CommitError, true}, result{CommitReject, true}},
		{"enhanced NE", hdr("ADT", "NE", "AL"), AckModeEnhanced, result{CommitAccept, false}, result{CommitError, false}, result{CommitReject, false}},
		{"enhanced ER", hdr("ADT", "ER", ""), AckModeEnhanced, result{CommitAccept, false}, result{CommitError, true}, result{CommitReject, true}},
		{"enhanced SU", hdr("ADT", "SU", ""), AckModeEnhanced, result{CommitAccept, true}, result{CommitError, false}, result{CommitReject, false}},
		{"enhanced unknown value", hdr("ADT", "XX", ""), AckModeEnhanced, result{CommitAccept, true}, result{CommitError, true}, result{CommitReject, true}},
		{"only MSH-16", hdr("ADT", "", "ER"), AckModeEnhanced, result{AppAccept, false}, result{AppError, true}, result{AppReject, true}},
		{"ack is never acked", hdr("ACK", "AL", "AL"), AckModeEnhanced, result{}, result{}, result{}},
		{"ack lower case", hdr("ack", "", ""), AckModeOriginal, result{}, result{}, result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ModeOf(tt.h); got != tt.mode {
				t.Errorf("ModeOf = %v, want %v", got, tt.mode)
			}
			var got [3]result
			for i, o := range []Outcome{OutcomeAccepted, OutcomeError, OutcomeRejected} {
				got[i].Code, got[i].Send = ChooseAck(tt.h, o)
			}
			if diff := cmp.Diff([3]result{tt.accepted, tt.errored, tt.rejected}, got); diff != "" {
				t.Errorf("ChooseAck (-want +got):\n%s", diff)
			}
		})
	}
	// An unset outcome must not acknowledge positively.
	if code, _ := ChooseAck(hdr("ADT", "", ""), 0); code != AppError {
		t.Errorf("zero Outcome gave %s", code)
	}
}

func TestAckCode(t *testing.T) {
	for _, c := range []AckCode{AppAccept, AppError, AppReject, CommitAccept, CommitError, CommitReject} {
		if !c.Valid() {
			t.Errorf("%s not valid", c)
		}
		if c.Accepted() != (c == AppAccept || c == CommitAccept) {
			t.Errorf("%s Accepted = %v", c, c.Accepted())
		}
	}
	if AckCode("AX").Valid() || AckCode("").Valid() {
		t.Error("invalid codes reported valid")
	}
}

func TestErrorCodeText(t *testing.T) {
	want := map[ErrorCode]string{
		0: "Message accepted", 100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
		103: "Table value not found", 200: "Unsupported message type", 201: "Unsupported event code",
		202: "Unsupported processing id", 203: "Unsupported version id", 204: "Unknown key identifier",
		205: "Duplicate key identifier", 206: "Application record locked", 207: "Application internal error",
	}
	for c, text := range want {
		if got := c.Text(); got != text {
			t.Errorf("%d.Text() = %q, want %q", c, got, text)
		}
	}
	if ErrorCode(999).Text() != "" {
		t.Error("unknown code has text")
	}
	if ErrorCodeFor(errors.New("boom")) != ErrorCodeInternal || ErrorCodeFor(nil) != ErrorCodeAccepted {
		t.Error("ErrorCodeFor fallbacks")
	}
}

func TestParseAck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want AckInfo
	}{
		{"raster sample", string(readFixture(t, "messages/raster-ack.hl7")), AckInfo{Code: AppAccept, ControlID: "MSG00005", Text: "Message accepted successfully"}},
		{"legacy ERR-1", "MSH|^~\\&|A||B||20240101||ACK|1|P|2.3\rMSA|AE|C9\rERR|PID^1^3^101&Required field missing&HL70357",
			AckInfo{Code: AppError, ControlID: "C9", Errors: []AckError{{Location: Location{Segment: "PID", SegmentIndex: 1, Field: 3},
				Code: ErrorCodeRequiredFieldMissing, CodeText: "Required field missing"}}}},
		{"MSA-6 only", "MSH|^~\\&|A||B||20240101||ACK|1|P|2.2\rMSA|AR|C9|bad|||203^Unsupported version id",
			AckInfo{Code: AppReject, ControlID: "C9", Text: "bad", Errors: []AckError{{Code: ErrorCodeUnsupportedVersion, CodeText: "Unsupported version id"}}}},
		{"application ack of another type", "MSH|^~\\&|A||B||20240101||ORL^O22^ORL_O22|1|P|2.5.1\rMSA|CA|C9",
			AckInfo{Code: CommitAccept, ControlID: "C9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAck([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got.Header = Header{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseAck (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParseAck([]byte(mshStd)); !errors.Is(err, ErrNoMSA) {
		t.Errorf("no MSA: %v", err)
	}
	if _, err := ParseAck([]byte("garbage")); !errors.Is(err, ErrNoMSH) {
		t.Errorf("garbage: %v", err)
	}
}
