package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

const (
	hl7ADT = "MSH|^~\\&|SND|FAC|RCV|FAC|20250101120000||ADT^A01^ADT_A01|MSG1|P|2.5.1\r" +
		"EVN|A01|20250101120000\r" +
		"PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r"
	hl7ADT2 = "MSH|^~\\&|SND|FAC|RCV|FAC|20250101120000||ADT^A01^ADT_A01|MSG2|P|2.5.1\r" +
		"PID|1||67890^^^HOSP^MR||ROE^JANE||19900202|F\r"
)

// writeTemp writes content to a file named name in a fresh directory.
func hl7TempFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// exitCode returns the status run() would give for err.
func hl7ExitCode(err error) int {
	var coded exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &coded):
		return coded.code
	}
	return 1
}

func TestHL7LintClean(t *testing.T) {
	adt, err := os.ReadFile(filepath.Join("testdata", "adt_a01.hl7"))
	require.NoError(t, err)
	path := hl7TempFile(t, "adt.hl7", string(adt))
	var out bytes.Buffer
	err = hl7LintCmd{Format: "text", MinSeverity: "info", Files: []string{path}, Stdout: &out}.Run()
	require.NoError(t, err)
	require.Equal(t, "1 messages, 0 errors, 0 warnings in 1 files\n", out.String())
}

func TestHL7LintProblems(t *testing.T) {
	// Message 1: a two-letter segment ID (error) and an unknown escape
	// (warning); message 2: MSH-2 repeats a delimiter, so it cannot be read.
	path := hl7TempFile(t, "bad.hl7", "MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\n"+
		"PV|1\nPID|1||42||DOE\\Q\\^J\n"+
		"MSH|^^\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\nPID|1||43\n")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "text", MinSeverity: "info", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err), "err %v", err)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 4, out.String())
	require.Regexp(t, `^.*bad\.hl7:1: error bad-segment-name at PV: segment ID "PV" is not three characters`, lines[0])
	require.Regexp(t, `^.*bad\.hl7:1: warning bad-escape at PID-5\(1\)\.1\.1: escape sequence "\\\\Q\\\\" not recognised`, lines[1])
	require.Regexp(t, `^.*bad\.hl7:2: fatal bad-delimiters at MSH-2: invalid delimiters in MSH-1/MSH-2: `, lines[2])
	require.Equal(t, "2 messages, 2 errors, 1 warnings in 1 files", lines[3])

	out.Reset()
	err = hl7LintCmd{Format: "text", MinSeverity: "error", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err))
	require.NotContains(t, out.String(), "warning bad-escape", "--min-severity error hides warnings")
	require.Contains(t, out.String(), "2 messages, 2 errors, 1 warnings in 1 files", "the summary counts them")
}

func TestHL7LintBatchCount(t *testing.T) {
	path := hl7TempFile(t, "batch.hl7", "FHS|^~\\&\r\nBHS|^~\\&\r\n"+strings.ReplaceAll(hl7ADT+hl7ADT2, "\r", "\r\n")+"BTS|3\r\nFTS|1\r\n")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "text", MinSeverity: "info", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err), "err %v", err)
	require.Equal(t, path+":file: error batch-count-mismatch at BTS-1 (line 8): BTS-1 says 3, found 2 message(s) in the batch\n"+
		"2 messages, 1 errors, 0 warnings in 1 files\n", out.String())
}

func TestHL7LintJSON(t *testing.T) {
	path := hl7TempFile(t, "batch.hl7", "BHS|^~\\&\r"+hl7ADT+"BTS|2\r")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "json", MinSeverity: "info", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err))
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		recs = append(recs, rec)
	}
	require.Equal(t, []map[string]any{
		{"kind": "problem", "file": path, "line": 5.0, "severity": "error", "code": "batch-count-mismatch",
			"location": "BTS-1", "text": "BTS-1 says 2, found 1 message(s) in the batch"},
		{"kind": "summary", "messages": 1.0, "errors": 1.0, "warnings": 0.0, "files": 1.0},
	}, recs)
}

// TestHL7LintExitStatus runs the command through kong as `interop` does.
func TestHL7LintExitStatus(t *testing.T) {
	clean := hl7TempFile(t, "clean.hl7", hl7ADT)
	bad := hl7TempFile(t, "bad.hl7", hl7ADT+"PV|1\r")
	require.Equal(t, 0, run([]string{"hl7", "lint", clean}))
	require.Equal(t, 1, run([]string{"hl7", "lint", clean, bad}))
	require.Equal(t, 2, run([]string{"hl7", "lint"}), "no file is a usage error")
	require.Equal(t, 2, run([]string{"hl7", "lint", "--format", "xml", clean}), "unknown format is a usage error")
	require.Equal(t, 2, run([]string{"hl7", "lint", filepath.Join(t.TempDir(), "missing.hl7")}), "a missing file is a usage error")
}

func TestHL7Map(t *testing.T) {
	path := hl7TempFile(t, "adt.hl7", strings.ReplaceAll(hl7ADT, "\r", "\n"))
	var out, errOut bytes.Buffer
	err := hl7MapCmd{Files: []string{path}, Stdout: &out, Stderr: &errOut}.Run()
	require.NoError(t, err)
	// EVN-2 has no UTC offset and no zone is configured, so there is no Provenance: said, not failed.
	require.Equal(t, path+":1: note: EVN-2: \"20250101120000\" is not an instant (no UTC offset and no sender zone configured); no Provenance\n", errOut.String())
	var b fhir.Bundle
	require.NoError(t, json.Unmarshal(out.Bytes(), &b))
	require.Equal(t, "Bundle", b.ResourceType)
	require.Equal(t, fhir.BundleTransaction, b.Type)
	types := map[string]fhir.BundleEntry{}
	for _, e := range b.Entry {
		var r struct {
			ResourceType string `json:"resourceType"`
		}
		require.NoError(t, json.Unmarshal(e.Resource, &r))
		types[r.ResourceType] = e
	}
	require.Contains(t, types, "MessageHeader")
	pat, ok := types["Patient"]
	require.True(t, ok, "no Patient in %v", types)
	var res struct {
		Identifier []struct {
			Value string `json:"value"`
		} `json:"identifier"`
	}
	require.NoError(t, json.Unmarshal(pat.Resource, &res))
	require.Equal(t, "12345", res.Identifier[0].Value)
	require.Equal(t, "PUT", pat.Request.Method, "a conditional update keyed on PID-3")
	require.True(t, strings.HasPrefix(pat.Request.URL, "Patient?identifier="), pat.Request.URL)
	require.True(t, strings.HasPrefix(out.String(), "{\n  \"resourceType\": \"Bundle\""), "pretty JSON")
}

func TestHL7MapBatchArrayAndFailure(t *testing.T) {
	// Three messages in a batch; the ADT in the middle has no patient.
	noPID := "MSH|^~\\&|A|B|C|D|20250101||ADT^A01^ADT_A01|3|P|2.5.1\rEVN|A01|20250101\rPV1|1|I\r"
	path := hl7TempFile(t, "batch.hl7", "BHS|^~\\&\r"+hl7ADT+noPID+hl7ADT2+"BTS|3\r")
	var out, errOut bytes.Buffer
	err := hl7MapCmd{Array: true, Files: []string{path}, Stdout: &out, Stderr: &errOut}.Run()
	require.Equal(t, 1, hl7ExitCode(err))
	require.EqualError(t, err, "map: 1 of 3 messages could not be mapped")
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		if !strings.Contains(line, ": note: ") { // notes (no Provenance without an offset, …) are not failures
			problems = append(problems, line)
		}
	}
	require.Equal(t, []string{path + ":2: cannot map: unmappable message: PID: ADT^A01^ADT_A01 has no PID segment"}, problems)
	var bundles []fhir.Bundle
	require.NoError(t, json.Unmarshal(out.Bytes(), &bundles), out.String())
	require.Len(t, bundles, 2, "the mappable messages are still printed")

	// Without --array: one Bundle after another, each on its own lines.
	out.Reset()
	errOut.Reset()
	require.NoError(t, hl7MapCmd{Files: []string{hl7TempFile(t, "two.hl7", hl7ADT+hl7ADT2)}, Stdout: &out, Stderr: &errOut}.Run())
	dec := json.NewDecoder(&out)
	n := 0
	for dec.More() {
		var b fhir.Bundle
		require.NoError(t, dec.Decode(&b))
		require.Equal(t, fhir.BundleTransaction, b.Type)
		n++
	}
	require.Equal(t, 2, n)
}

// A type without a mapping (an ACK) is no failure: an empty Bundle, and a note saying nothing
// would be written.
func TestHL7MapUnmappedType(t *testing.T) {
	var out, errOut bytes.Buffer
	path := hl7TempFile(t, "ack.hl7", "MSH|^~\\&|A|B|C|D|20250101||ACK|3|P|2.5.1\rMSA|AA|1\r")
	require.NoError(t, hl7MapCmd{Files: []string{path}, Stdout: &out, Stderr: &errOut}.Run())
	var b fhir.Bundle
	require.NoError(t, json.Unmarshal(out.Bytes(), &b), out.String())
	require.Empty(t, b.Entry)
	require.Contains(t, errOut.String(), "MSH-9: no mapping for ACK")
	require.Contains(t, errOut.String(), "nothing was written")
}

func TestHL7MapNoMessage(t *testing.T) {
	var out, errOut bytes.Buffer
	path := hl7TempFile(t, "pid.hl7", "PID|1||42\r")
	err := hl7MapCmd{Files: []string{path}, Stdout: &out, Stderr: &errOut}.Run()
	require.Equal(t, 1, hl7ExitCode(err))
	require.Contains(t, errOut.String(), path+": no message: hl7v2: no MSH segment")
	require.Empty(t, out.String())
}

func TestSplitMessages(t *testing.T) {
	// A single message with LF line ends becomes one CR-terminated message.
	msgs := splitMessages([]byte(strings.ReplaceAll(hl7ADT, "\r", "\n")))
	require.Equal(t, [][]byte{[]byte(hl7ADT)}, msgs)
	// A batch gives its messages without the envelope.
	msgs = splitMessages([]byte("FHS|^~\\&\nBHS|^~\\&\n" + strings.ReplaceAll(hl7ADT+hl7ADT2, "\r", "\n") + "BTS|2\nFTS|1\n"))
	require.Equal(t, [][]byte{[]byte(hl7ADT), []byte(hl7ADT2)}, msgs)
	require.Nil(t, splitMessages([]byte("BHS|^~\\&\rBTS|0\r")))
}

// TestSendBatchFile sends a batch file to an in-process MLLP listener:
// every message arrives, without the envelope, and is acknowledged.
func TestSendBatchFile(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := &mllp.Server{
		Handler: mllp.HandlerFunc(func(ctx context.Context, conn mllp.ConnInfo, msg []byte) []byte {
			mu.Lock()
			got = append(got, string(msg))
			mu.Unlock()
			m, err := hl7v2.Parse(msg)
			if err != nil {
				return nil
			}
			return []byte("MSH|^~\\&|RCV||SND||||ACK|A" + m.ControlID() + "|P|2.5.1\rMSA|AA|" + m.ControlID() + "\r")
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	path := hl7TempFile(t, "batch.hl7", "FHS|^~\\&\nBHS|^~\\&\n"+strings.ReplaceAll(hl7ADT+hl7ADT2, "\r", "\n")+"BTS|2\nFTS|1\n")
	err = sendCmd{To: l.Addr().String(), Timeout: 10 * time.Second, Files: []string{path}}.Run(context.Background())
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{hl7ADT, hl7ADT2}, got)
}
