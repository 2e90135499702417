package hl7v2

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuilder(t *testing.T) {
	m, err := NewMessage(Header{
		SendingApplication:   HD{"NHP", "2.16.840.1.113883.2.4", "ISO"},
		SendingFacility:      HD{NamespaceID: "HUB"},
		ReceivingApplication: HD{NamespaceID: "EHR"},
		Timestamp:            "20240102030405+0100",
		Type:                 MessageType{"ADT", "A08", "ADT_A01"},
		ControlID:            "MSG-1",
		ProcessingID:         "P",
		Version:              "2.5.1",
		AcceptAckType:        "AL",
		CharacterSets:        []string{"UNICODE UTF-8"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := m.AddSegment("PID")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ path, value string }{
		{"PID-1", "1"},
		{"PID-3(2).1", "NHS9"},
		{"PID-3(2).4", "NHS"},
		{"PID-3.1", "MRN1"},
		{"PID-5.1", "O'Brien|Smith^Jr"},
		{"PID-5.2", "Seán"},
		{"PID-11.1", "1 Main St\nFlat 2"},
		{"PID-11.1", ""}, // overwriting with empty keeps the component slot
		{"PID-13", ""},   // setting empty where nothing exists is a no-op
	}
	for _, s := range steps {
		if err := m.Set(s.path, s.value); err != nil {
			t.Fatalf("Set(%q): %v", s.path, err)
		}
	}
	if err := pid.Set("8", "M"); err != nil {
		t.Fatal(err)
	}
	obx, _ := m.AddSegment("OBX")
	_ = obx.SetRaw("5", "A^B~C")
	obx2, _ := m.AddSegment("OBX")
	_ = obx2.Set("5", "second")

	want := "MSH|^~\\&|NHP^2.16.840.1.113883.2.4^ISO|HUB|EHR||20240102030405+0100||ADT^A08^ADT_A01|MSG-1|P|2.5.1|||AL|||UNICODE UTF-8\r" +
		"PID|1||MRN1~NHS9^^^NHS||O'Brien\\F\\Smith\\S\\Jr^Seán|||M|||\r" +
		"OBX|||||A^B~C\r" +
		"OBX|||||second\r"
	if diff := cmp.Diff(want, string(m.Encode())); diff != "" {
		t.Errorf("Encode (-want +got):\n%s", diff)
	}
	back := mustParse(t, want)
	if got := back.Get("PID-5.1"); got != "O'Brien|Smith^Jr" {
		t.Errorf("PID-5.1 after round trip = %q", got)
	}
	if len(back.Problems()) != 0 {
		t.Errorf("built message has problems: %v", back.Problems())
	}
	if got := m.Get("OBX(2)-5"); got != "second" {
		t.Errorf("OBX(2)-5 = %q", got)
	}
	if m.Segment("OBX", 2).Index() != 2 {
		t.Error("second OBX should have index 2")
	}
}

func TestSetErrors(t *testing.T) {
	m := mustParse(t, mshStd+"\rPID|1")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"missing segment", m.Set("NK1-2", "x"), ErrNoSegment},
		{"missing occurrence", m.Set("PID(2)-2", "x"), ErrNoSegment},
		{"msh-1", m.Set("MSH-1", "#"), ErrReadOnly},
		{"msh-2", m.SetRaw("MSH-2", "^~\\&#"), ErrReadOnly},
		{"bad path", m.Set("PID-0", "x"), ErrBadPath},
		{"segment path", m.Set("PID", "x"), ErrBadPath},
		{"raw with CR", m.SetRaw("PID-3", "a\rb"), ErrBadValue},
		{"raw field sep", m.SetRaw("PID-3", "a|b"), ErrBadValue},
		{"raw rep sep in repetition", m.SetRaw("PID-3(1)", "a~b"), ErrBadValue},
		{"raw comp sep in component", m.SetRaw("PID-3.1", "a^b"), ErrBadValue},
		{"raw sub sep in subcomponent", m.SetRaw("PID-3.1.1", "a&b"), ErrBadValue},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if got := string(m.Encode()); got != mshStd+"\rPID|1\r" {
		t.Errorf("failed writes changed the message: %q", got)
	}
	if _, err := m.AddSegment("pid"); !errors.Is(err, ErrBadValue) {
		t.Errorf("AddSegment(pid) = %v", err)
	}
	if _, err := NewMessage(Header{Delimiters: Delimiters{Field: '|'}}); !errors.Is(err, ErrBadDelimiters) {
		t.Errorf("NewMessage with bad delimiters = %v", err)
	}
}

func TestSetRawLevels(t *testing.T) {
	m := mustParse(t, mshStd+"\rPID|1||A^B~C^D||X&Y^Z")
	steps := []struct{ path, raw, want string }{
		{"PID-3(2)", "E^F", "A^B~E^F"},
		{"PID-3(3).2", "G", "A^B~E^F~^G"},
		{"PID-5.1.2", "W", ""},
		{"PID-5", "N1^N2", ""},
	}
	for _, s := range steps {
		if err := m.SetRaw(s.path, s.raw); err != nil {
			t.Fatalf("SetRaw(%q): %v", s.path, err)
		}
		if s.want != "" {
			if got := m.Raw("PID-3"); got != s.want {
				t.Errorf("after SetRaw(%q) PID-3 = %q, want %q", s.path, got, s.want)
			}
		}
	}
	if got, want := string(m.Encode()), mshStd+"\rPID|1||A^B~E^F~^G||N1^N2\r"; got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

// TestSetDoesNotClobberNeighbours guards the shared field array: growing
// one segment must not overwrite the next one's fields.
func TestSetDoesNotClobberNeighbours(t *testing.T) {
	m := mustParse(t, mshStd+"\rPID|1\rPV1|1|I")
	if err := m.Set("PID-3", "X"); err != nil {
		t.Fatal(err)
	}
	if got, want := string(m.Encode()), mshStd+"\rPID|1||X\rPV1|1|I\r"; got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

func TestSetPreservesOtherSegmentsBytes(t *testing.T) {
	data := readFixture(t, "bench/oru_r01_cbc.hl7")
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set("PID-5.1", "Smith"); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(m.Encode()), "\r")
	orig := strings.Split(string(data), "\r")
	if len(got) != len(orig) {
		t.Fatalf("segment count changed: %d -> %d", len(orig), len(got))
	}
	changed := 0
	for i := range got {
		if got[i] != orig[i] {
			changed++
			if !strings.HasPrefix(got[i], "PID|") {
				t.Errorf("segment %d changed: %q", i, got[i])
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d segments changed, want 1", changed)
	}
}

func TestAppendEncode(t *testing.T) {
	m := mustParse(t, mshStd+"\nPID|1")
	got := m.AppendEncode([]byte("prefix:"))
	if want := "prefix:" + mshStd + "\rPID|1\r"; string(got) != want {
		t.Errorf("AppendEncode = %q", got)
	}
	if s := m.String(); s != mshStd+"\nPID|1" {
		t.Errorf("String = %q", s)
	}
}

// checkRoundTrip asserts the encoder properties on one input: an input
// without errors encodes to its normalised form byte for byte, and every
// parsed input re-parses from its encoding to the same fields, with the
// encoding stable from then on.
func checkRoundTrip(t *testing.T, name string, data []byte) (byteExact bool) {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		return false
	}
	enc := m.Encode()
	m2, err := Parse(enc)
	if err != nil {
		t.Errorf("%s: re-parse of encoding failed: %v", name, err)
		return false
	}
	if diff := cmp.Diff(segFields(m), segFields(m2)); diff != "" {
		t.Errorf("%s: fields changed across Encode/Parse (-first +second):\n%s", name, diff)
	}
	if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
		t.Errorf("%s: encoding not stable", name)
	}
	for _, p := range m.Problems() {
		if p.Code == ProblemEmbeddedNewline || p.Severity >= SeverityError {
			return false
		}
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte(bom)), " \t\r\n\v\f")
	if want := normalize(trimmed); !bytes.Equal(want, enc) {
		t.Errorf("%s: Encode differs from normalised input\nwant %q\n got %q", name, want, enc)
	}
	return true
}

func TestRoundTripTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/messages/*.hl7")
	exact := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if checkRoundTrip(t, f, data) {
			exact++
		}
	}
	// Everything but the deliberately invalid sample is well-formed.
	if exact != len(files)-1 {
		t.Errorf("%d of %d samples round-tripped byte for byte, want %d", exact, len(files), len(files)-1)
	}
	// CR-terminated input comes back unchanged, not just normalised.
	data := readFixture(t, "bench/oru_r01_cbc.hl7")
	if m, _ := Parse(data); !bytes.Equal(m.Encode(), data) {
		t.Error("CR-terminated message did not round-trip byte for byte")
	}
}

// TestRoundTripReferenceCorpus runs the round trip over every message in
// the shared reference collection, when it is available.
func TestRoundTripReferenceCorpus(t *testing.T) {
	dir := os.Getenv("HL7V2_REFERENCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "reference")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skip("reference corpus not available:", err)
	}
	var total, parsed, exact int
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !(strings.HasSuffix(path, ".hl7") || strings.HasSuffix(path, ".txt")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		total++
		if _, err := Parse(data); err == nil {
			parsed++
		}
		if checkRoundTrip(t, path, data) {
			exact++
		}
		h, herr := ReadHeader(data)
		if m, perr := Parse(data); perr == nil {
			if herr != nil {
				t.Errorf("%s: ReadHeader failed where Parse succeeded: %v", path, herr)
			} else if diff := cmp.Diff(m.Header(), h); diff != "" {
				t.Errorf("%s: ReadHeader differs from Parse (-Parse +ReadHeader):\n%s", path, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reference corpus: %d files, %d parsed, %d byte-exact round trips", total, parsed, exact)
}
