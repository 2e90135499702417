package hl7v2

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/acks/*.ack from the current output")

// TestAckGolden pins the exact bytes of the acknowledgments senders receive. A change here is a
// change on the wire for every connected hospital system: review the diff, then -update.
func TestAckGolden(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 14, 15, 0, time.FixedZone("", 2*3600))
	const adt25 = "MSH|^~\\&|ADTApp|GHH^1.2.3^ISO|IOP|HUB|20261126101010+0200||ADT^A01^ADT_A01|MSG001|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JANE\r"
	const adt23 = "MSH|^~\\&|LAB|FAC|IOP|HUB|202611261010||ORU^R01|C-77|P|2.3\rPID|1||9^^^H^MR\r"
	const enhanced = "MSH|^~\\&|ADTApp|GHH|IOP|HUB|20261126101010||ADT^A08^ADT_A01|E-1|P|2.5.1|||AL|NE\rPID|1||1^^^H^MR\r"
	const custom = "MSH*%$!&*APP*FAC*IOP*HUB*20261126101010**ADT%A04%ADT_A01*Z-9*T*2.4\rPID*1**5%%%H%MR\r"
	tests := []struct {
		name string
		msg  string
		in   AckInput
	}{
		{"aa_original_251", adt25, AckInput{Code: AppAccept}},
		{"ar_duplicate_251", adt25, AckInput{Code: AppReject, Text: "MSH-10 MSG001 was already received with different content",
			Errors: []AckError{{Code: ErrorCodeDuplicateKey, Location: Location{Segment: "MSH", SegmentIndex: 1, Field: 10}}}}},
		{"ae_internal_23", adt23, AckInput{Code: AppError, Text: "message not stored; resend it",
			Errors: []AckError{{Code: ErrorCodeInternal}}}},
		{"ca_enhanced_251", enhanced, AckInput{Code: CommitAccept}},
		{"aa_custom_delimiters_24", custom, AckInput{Code: AppAccept, Text: "ok|with^delimiters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadHeader([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			tt.in.ControlID, tt.in.Now = "ACK-"+tt.name, now
			got, err := BuildAck(h, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, tt.name, got)
			// Every golden ACK must read back as the ACK it claims to be.
			info, err := ParseAck(got)
			if err != nil {
				t.Fatal(err)
			}
			if info.Code != tt.in.Code || info.ControlID != h.ControlID {
				t.Fatalf("ParseAck = %s/%s, want %s/%s", info.Code, info.ControlID, tt.in.Code, h.ControlID)
			}
		})
	}
	t.Run("nak_no_msh", func(t *testing.T) {
		got, err := BuildNak(NakInput{Cause: &ParseError{Err: ErrNoMSH}, ControlID: "NAK-1", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		compareGolden(t, "nak_no_msh", got)
		if _, err := ParseAck(got); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(&ParseError{Err: ErrNoMSH}, ErrNoMSH) {
		t.Fatal("ParseError must unwrap to its sentinel")
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "acks", name+".ack")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	// Segments on their own lines make a diff readable; the bytes themselves are compared too.
	if diff := cmp.Diff(strings.Split(string(want), "\r"), strings.Split(string(got), "\r")); diff != "" {
		t.Fatalf("%s (-want +got):\n%s", name, diff)
	}
}
