package hl7v2

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadHeader(t *testing.T) {
	want := Header{
		Delimiters:           DefaultDelimiters,
		SendingApplication:   HD{"EPIC", "1.2.3", "ISO"},
		SendingFacility:      HD{NamespaceID: "HOSP"},
		ReceivingApplication: HD{NamespaceID: "LAB"},
		ReceivingFacility:    HD{NamespaceID: "LABFAC"},
		Timestamp:            "20240102030405+0100",
		Type:                 MessageType{"ORU", "R01", "ORU_R01"},
		ControlID:            "CTRL-42",
		ProcessingID:         "P",
		ProcessingMode:       "T",
		Version:              "2.5.1",
		AcceptAckType:        "AL",
		ApplicationAckType:   "NE",
		CharacterSets:        []string{"UNICODE UTF-8", "8859/1"},
	}
	data := readFixture(t, "fixtures/oru-paths.hl7")
	got, err := ReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadHeader (-want +got):\n%s", diff)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, m.Header()); diff != "" {
		t.Errorf("Message.Header (-want +got):\n%s", diff)
	}
	if got := want.SendingApplication.String(); got != "EPIC^1.2.3^ISO" {
		t.Errorf("HD.String = %q", got)
	}
	if got := want.SendingFacility.String(); got != "HOSP" {
		t.Errorf("HD.String = %q", got)
	}
	if got := want.Type.String(); got != "ORU^R01^ORU_R01" {
		t.Errorf("MessageType.String = %q", got)
	}
}

func TestReadHeaderVariants(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Header
	}{
		{"custom delimiters, LF, BOM", bom + "MSH*%$!&*APP%2.16.1%ISO*FAC*****ADT%A01*C!F!1*P*2.3\nPID*1",
			Header{Delimiters: Delimiters{'*', '%', '$', '!', '&', 0}, SendingApplication: HD{"APP", "2.16.1", "ISO"},
				SendingFacility: HD{NamespaceID: "FAC"}, Type: MessageType{Code: "ADT", Trigger: "A01"},
				ControlID: "C*1", ProcessingID: "P", Version: "2.3"}},
		{"doubled escape, short", "MSH|^~\\\\&|A||||||ACK|9", Header{Delimiters: DefaultDelimiters,
			SendingApplication: HD{NamespaceID: "A"}, Type: MessageType{Code: "ACK"}, ControlID: "9"}},
		{"msh only, no terminator", "MSH|^~\\&", Header{Delimiters: DefaultDelimiters}},
		{"more than 18 fields", "MSH|^~\\&|A|||||||||||||||UNICODE UTF-8|x|y|z", Header{Delimiters: DefaultDelimiters,
			SendingApplication: HD{NamespaceID: "A"}, CharacterSets: []string{"UNICODE UTF-8"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadHeader([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadHeader (-want +got):\n%s", diff)
			}
			m := mustParse(t, tt.in)
			if diff := cmp.Diff(tt.want, m.Header()); diff != "" {
				t.Errorf("Message.Header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessageHeaderHelpers(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"), WithLocation(time.FixedZone("", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	type helpers struct {
		ControlID, Version, ProcessingID, Accept, App string
		Sending, SendingFac, Receiving, ReceivingFac  HD
		Type                                          MessageType
	}
	got := helpers{m.ControlID(), m.Version(), m.ProcessingID(), m.AcceptAckType(), m.ApplicationAckType(),
		m.SendingApplication(), m.SendingFacility(), m.ReceivingApplication(), m.ReceivingFacility(), m.Type()}
	want := helpers{"CTRL-42", "2.5.1", "P", "AL", "NE",
		HD{"EPIC", "1.2.3", "ISO"}, HD{NamespaceID: "HOSP"}, HD{NamespaceID: "LAB"}, HD{NamespaceID: "LABFAC"},
		MessageType{"ORU", "R01", "ORU_R01"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("helpers (-want +got):\n%s", diff)
	}
	ts, p, err := m.Timestamp()
	if err != nil || p != PrecisionSecond || !ts.Equal(time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)) {
		t.Errorf("Timestamp = %v, %v, %v", ts, p, err)
	}
	// Without an offset, MSH-7 is read in the WithLocation zone.
	m2 := mustParse(t, "MSH|^~\\&|A||||20240102030405||ADT^A01|1|P|2.5", WithLocation(time.FixedZone("", 3600)))
	ts, _, _ = m2.Timestamp()
	if !ts.Equal(time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)) {
		t.Errorf("Timestamp without offset = %v", ts)
	}
}

// TestReadHeaderMatchesParse checks the fast path against the full parser
// on every sample message.
func TestReadHeaderMatchesParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/messages/*.hl7")
	if len(files) == 0 {
		t.Fatal("no sample messages")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h, herr := ReadHeader(data)
		m, perr := Parse(data)
		if (herr == nil) != (perr == nil) {
			t.Errorf("%s: ReadHeader err %v, Parse err %v", f, herr, perr)
			continue
		}
		if perr != nil {
			continue
		}
		if diff := cmp.Diff(m.Header(), h); diff != "" {
			t.Errorf("%s: header (-Parse +ReadHeader):\n%s", f, diff)
		}
	}
}

func TestReadHeaderAllocations(t *testing.T) {
	data := readFixture(t, "bench/oru_r01_cbc.hl7")
	n := testing.AllocsPerRun(100, func() { _, _ = ReadHeader(data) })
	if n > 2 { // the MSH line copy, plus the MSH-18 slice when present
		t.Errorf("allocs = %v, want <= 2", n)
	}
}
