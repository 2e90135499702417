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
	"github.com/nhp/interop/internal/mapping"
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
	err = hl7LintCmd{Format: "text", MinSeverity: "warning", Files: []string{path}, Stdout: &out}.Run()
	require.NoError(t, err)
	// Its one warning: a heart rate sent as two values (OBX-5 60~120) is two components, not
	// the one quantity the vital-signs profiles require.
	require.Equal(t, path+":1: warning mapping-note at OBX(1)-5: vital sign 8867-4 without a UCUM quantity; no vital-signs profile declared\n"+
		"1 messages, 0 errors, 1 warnings in 1 files\n", out.String())

	// At the default severity, the field accounting's findings are listed as information.
	out.Reset()
	require.NoError(t, hl7LintCmd{Format: "text", MinSeverity: "info", Files: []string{path}, Stdout: &out}.Run())
	require.Contains(t, out.String(), ":1: info not-mapped at ROL: not mapped\n")
}

func TestHL7LintProblems(t *testing.T) {
	// Message 1: a two-letter segment ID and an unknown escape, which the parser works around
	// (warnings: the message is still mapped), and a date-only MSH-7 (a mapping note);
	// message 2: MSH-2 repeats a delimiter, so it cannot be read (the one error).
	path := hl7TempFile(t, "bad.hl7", "MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\n"+
		"PV|1\nPID|1||42||DOE\\Q\\^J\n"+
		"MSH|^^\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\nPID|1||43\n")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "text", MinSeverity: "warning", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err), "err %v", err)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 6, out.String())
	require.Regexp(t, `^.*bad\.hl7:1: warning bad-segment-name at PV: segment ID "PV" is not three characters`, lines[0])
	require.Regexp(t, `^.*bad\.hl7:1: warning bad-escape at PID-5\(1\)\.1\.1: escape sequence "\\\\Q\\\\" not recognised`, lines[1])
	require.Regexp(t, `^.*bad\.hl7:1: warning mapping-note at MSH-7: "20250101" is not an instant \(coarser than a minute\); no Provenance$`, lines[2])
	require.Regexp(t, `^.*bad\.hl7:1: warning mapping-note at MSH-7: "20250101" is not an instant .*; Bundle.timestamp left out$`, lines[3])
	require.Regexp(t, `^.*bad\.hl7:2: fatal bad-delimiters at MSH-2: invalid delimiters in MSH-1/MSH-2: `, lines[4])
	require.Equal(t, "2 messages, 1 errors, 4 warnings in 1 files", lines[5])

	out.Reset()
	err = hl7LintCmd{Format: "text", MinSeverity: "error", Files: []string{path}, Stdout: &out}.Run()
	require.Equal(t, 1, hl7ExitCode(err))
	require.NotContains(t, out.String(), "warning bad-escape", "--min-severity error hides warnings")
	require.Contains(t, out.String(), "2 messages, 1 errors, 4 warnings in 1 files", "the summary counts them")
}

func TestHL7LintBatchCount(t *testing.T) {
	// A wrong count is worth knowing, but the pipeline processes both messages: a warning.
	path := hl7TempFile(t, "batch.hl7", "FHS|^~\\&\r\nBHS|^~\\&\r\n"+strings.ReplaceAll(hl7ADT+hl7ADT2, "\r", "\r\n")+"BTS|3\r\nFTS|1\r\n")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "text", MinSeverity: "warning", Files: []string{path}, Stdout: &out}.Run()
	require.NoError(t, err)
	require.Contains(t, out.String(), path+":file: warning batch-count-mismatch at BTS-1 (line 8): BTS-1 says 3, found 2 message(s) in the batch\n")
	// The batch count, and per message the times without an offset (no Provenance, no
	// Bundle.timestamp).
	require.True(t, strings.HasSuffix(out.String(), "2 messages, 0 errors, 5 warnings in 1 files\n"), out.String())
}

func TestHL7LintJSON(t *testing.T) {
	path := hl7TempFile(t, "batch.hl7", "BHS|^~\\&\r"+strings.ReplaceAll(hl7ADT, "20250101120000", "20250101120000+0100")+"BTS|2\r")
	var out bytes.Buffer
	err := hl7LintCmd{Format: "json", MinSeverity: "warning", Files: []string{path}, Stdout: &out}.Run()
	require.NoError(t, err)
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		recs = append(recs, rec)
	}
	require.Equal(t, []map[string]any{
		{"kind": "problem", "file": path, "line": 5.0, "severity": "warning", "code": "batch-count-mismatch",
			"location": "BTS-1", "text": "BTS-1 says 2, found 1 message(s) in the batch"},
		{"kind": "summary", "messages": 1.0, "errors": 0.0, "warnings": 1.0, "files": 1.0},
	}, recs)
}

// TestHL7LintExitStatus runs the command through kong as `interop` does.
func TestHL7LintExitStatus(t *testing.T) {
	clean := hl7TempFile(t, "clean.hl7", hl7ADT)
	warned := hl7TempFile(t, "warned.hl7", hl7ADT+"PV|1\r")
	refused := hl7TempFile(t, "refused.hl7", strings.Replace(hl7ADT, "12345^^^HOSP^MR", "", 1))
	require.Equal(t, 0, run([]string{"hl7", "lint", clean}))
	require.Equal(t, 0, run([]string{"hl7", "lint", clean, warned}), "a parse problem the pipeline works around is a warning")
	require.Equal(t, 1, run([]string{"hl7", "lint", clean, refused}))
	require.Equal(t, 2, run([]string{"hl7", "lint", "--tz", "Mars/Olympus", clean}), "an unknown zone is a usage error")
	require.Equal(t, 2, run([]string{"hl7", "lint"}), "no file is a usage error")
	require.Equal(t, 2, run([]string{"hl7", "lint", "--format", "xml", clean}), "unknown format is a usage error")
	require.Equal(t, 2, run([]string{"hl7", "lint", filepath.Join(t.TempDir(), "missing.hl7")}), "a missing file is a usage error")
}

func TestHL7Map(t *testing.T) {
	path := hl7TempFile(t, "adt.hl7", strings.ReplaceAll(hl7ADT, "\r", "\n"))
	var out, errOut bytes.Buffer
	err := hl7MapCmd{Files: []string{path}, Stdout: &out, Stderr: &errOut}.Run()
	require.NoError(t, err)
	// EVN-2 and MSH-7 have no UTC offset and no zone is configured, so there is no Provenance
	// and no Bundle.timestamp: said, not failed.
	require.Contains(t, errOut.String(), path+":1: note: EVN-2: \"20250101120000\" is not an instant (no UTC offset and no sender zone configured); no Provenance\n")
	require.Contains(t, errOut.String(), path+":1: note: MSH-7: \"20250101120000\" is not an instant (no UTC offset and no sender zone configured, or not to the minute); Bundle.timestamp left out\n")
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

// TestHL7MapCoverage: --coverage prints the field accounting instead of the Bundle: a summary,
// then every populated component with mapped or not mapped.
func TestHL7MapCoverage(t *testing.T) {
	path := hl7TempFile(t, "adt.hl7", hl7ADT+"ROL|1|AD|PP|X^DOC\r")
	var out, errOut bytes.Buffer
	require.NoError(t, hl7MapCmd{Files: []string{path}, Coverage: true, Stdout: &out, Stderr: &errOut}.Run())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Regexp(t, `^.*adt\.hl7:1: \d+ populated components, \d+ mapped \(\d+%\)$`, lines[0])
	status := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 2, l)
		status[f[0]] = strings.Join(f[1:], " ")
	}
	require.Equal(t, "mapped", status["PID-3.1"])
	require.Equal(t, "mapped", status["PID-5.1"])
	require.Equal(t, "not mapped", status["ROL-2"])
	require.NotContains(t, out.String(), `"resourceType"`, "the table replaces the Bundle")
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
		Handler: mllp.HandlerFunc(func(_ context.Context, _ mllp.ConnInfo, msg []byte) []byte {
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

// lintOutcome is what `hl7 lint` and `hl7 map` said about some files.
type lintOutcome struct {
	lintCode, mapCode int
	findings          []lintFinding // lint's JSON lines, without the summary
	mapNotes          []string      // map's "note:" lines on stderr
}

// lintAndMap runs both commands over the same files with the same flags.
func lintAndMap(t *testing.T, flags mapperFlags, files ...string) lintOutcome {
	t.Helper()
	var out, mapOut, mapErr bytes.Buffer
	lintErr := hl7LintCmd{Format: "json", MinSeverity: "info", Files: files, mapperFlags: flags, Stdout: &out}.Run()
	mErr := hl7MapCmd{Files: files, mapperFlags: flags, Stdout: &mapOut, Stderr: &mapErr}.Run()
	o := lintOutcome{lintCode: hl7ExitCode(lintErr), mapCode: hl7ExitCode(mErr)}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec struct {
			Kind string `json:"kind"`
			lintFinding
		}
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		if rec.Kind == "problem" {
			o.findings = append(o.findings, rec.lintFinding)
		}
	}
	for _, l := range strings.Split(mapErr.String(), "\n") {
		if _, note, ok := strings.Cut(l, ": note: "); ok {
			o.mapNotes = append(o.mapNotes, note)
		}
	}
	return o
}

// A message the pipeline refuses (empty PID-3) and three it maps with a note (a 7-digit MSH-7,
// PID-7 month 13, OBX-5 NM "abc"): lint gives each finding at its field, and fails exactly for
// the one map refuses.
func TestHL7LintQuotedInputs(t *testing.T) {
	const pid = "PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r"
	for _, tc := range []struct {
		name, raw      string
		severity, code string
		location, text string
	}{
		{"PID-3 empty", "MSH|^~\\&|SND|FAC|RCV|FAC|20250101120000+0100||ADT^A01^ADT_A01|M1|P|2.5.1\rPID|1||||DOE^JOHN||19800101|M\r",
			"error", "unmappable", "PID-3", "no identifier value"},
		{"MSH-7 of 7 digits", "MSH|^~\\&|SND|FAC|RCV|FAC|2025010||ADT^A01^ADT_A01|M1|P|2.5.1\r" + pid,
			"warning", "mapping-note", "MSH-7", `"2025010" is not a valid date/time (wrong number of digits); not mapped`},
		{"PID-7 month 13", "MSH|^~\\&|SND|FAC|RCV|FAC|20250101120000+0100||ADT^A01^ADT_A01|M1|P|2.5.1\r" + strings.Replace(pid, "19800101", "19801301", 1),
			"warning", "mapping-note", "PID-7", `birth date "19801301" is not a valid date (field out of range); birthDate absent`},
		{"OBX-5 NM abc", "MSH|^~\\&|LAB|FAC|RCV|FAC|20250101120000+0100||ORU^R01^ORU_R01|M1|P|2.5.1\r" + pid +
			"OBR|1||ACC1|2345-7^Glucose^LN|||20250101110000+0100\rOBX|1|NM|2345-7^Glucose^LN||abc|mg/dL|||||F\r",
			"warning", "mapping-note", "OBX(1)-5", `"abc" is not a valid NM; kept as text`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := lintAndMap(t, mapperFlags{}, hl7TempFile(t, "m.hl7", tc.raw))
			require.Equal(t, o.mapCode, o.lintCode, "lint fails exactly when map does")
			require.Equal(t, map[bool]int{true: 1, false: 0}[tc.severity == "error"], o.lintCode)
			require.Contains(t, o.findings, lintFinding{File: o.findings[0].File, Message: 1, Severity: tc.severity,
				Code: tc.code, Location: tc.location, Text: tc.text})
		})
	}
}

// lintFixturesBad are hostile and broken messages, beside the mapping's golden cases: lint
// and map must agree on each.
var lintFixturesBad = map[string]string{
	"no pid":          "MSH|^~\\&|A|B|C|D|20250101120000||ACK|1|P|2.5.1\rMSA|AA|1\r",
	"pid-3 blank":     "MSH|^~\\&|A|B|C|D|20250101120000||ADT^A01|1|P|2.5.1\rPID|1||^^^HOSP^MR||DOE\r",
	"a40 without mrg": "MSH|^~\\&|A|B|C|D|20250101120000||ADT^A40^ADT_A39|1|P|2.5.1\rPID|1||1^^^H^MR||DOE\r",
	"a40 mrg is pid":  "MSH|^~\\&|A|B|C|D|20250101120000||ADT^A40^ADT_A39|1|P|2.5.1\rPID|1||1^^^H^MR||DOE\rMRG|1^^^H^MR\r",
	"bad delimiters":  "MSH|^^\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\rPID|1||43\r",
	"not hl7":         "hello, world\r\n",
	"empty file":      "",
	"bad times":       "MSH|^~\\&|A|B|C|D|202501011||ORU^R01^ORU_R01|1|P|2.5.1\rEVN||2025\rPID|1||1^^^H^MR||DOE||DOB\rPV1|1|I|||||||||||||||||V1|||||||||||||||||||||||||2025013\rOBR|1||A1|1^X^L|||20251340\rOBX|1|DTM|1^X^L||2025-01-01||||||F|||99999999\r",
	"rxa-3 invalid":   "MSH|^~\\&|A|B|C|D|20250101120000||VXU^V04^VXU_V04|1|P|2.5.1\rPID|1||1^^^H^MR||DOE\rORC|RE||IZ1\rRXA|0|1|2025XX01|20250101|08^HepB^CVX|1\r",
	"batch, one bad":  "BHS|^~\\&\r" + hl7ADT + "MSH|^~\\&|A|B|C|D|20250101||ADT^A01|9|P|2.5.1\rPID|1||\r" + hl7ADT2 + "BTS|3\r",
	"segment garbage": hl7ADT + "ZZ|1\r\x00\x01|2\rOBX|1|NM|1^X^L||abc\r",
}

// Lint runs the code path of map: over every golden message of the mapping and the bad
// fixtures, lint fails iff map fails, and lint warns of every note map prints (the same
// notes, split into location and text).
func TestHL7LintAgreesWithMap(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "mapping", "testdata", "*.hl7"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	dir := t.TempDir()
	for name, raw := range lintFixturesBad {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".hl7")
		require.NoError(t, os.WriteFile(path, []byte(raw), 0o600))
		files = append(files, path)
	}
	kabul := mapperFlags{TZ: "Asia/Kabul"}
	refused := 0
	for _, path := range files {
		for _, flags := range []mapperFlags{{}, kabul} {
			o := lintAndMap(t, flags, path)
			require.Equal(t, o.mapCode, o.lintCode, "%s (tz %q): map exit %d, lint exit %d; findings %+v", path, flags.TZ, o.mapCode, o.lintCode, o.findings)
			var errs int
			var notes []string
			for _, f := range o.findings {
				switch f.Severity {
				case "error", "fatal":
					errs++
				}
				if f.Code == "mapping-note" || f.Code == "not-mapped" {
					notes = append(notes, (mapping.Note{Location: f.Location, Text: f.Text}).String())
				}
			}
			require.Equal(t, o.lintCode != 0, errs > 0, "%s: an error finding iff lint fails", path)
			require.Equal(t, o.mapNotes, notes, "%s: every note map prints is a warning of lint", path)
			if o.mapCode != 0 {
				refused++
			}
		}
	}
	require.GreaterOrEqual(t, refused, 2*7, "the bad fixtures are refused, with and without a zone")
}

// --tz is a connector's settings.timeZone: it reads times without an offset in that zone,
// before the tenant's zone.
func TestHL7MapTimeZone(t *testing.T) {
	raw := "MSH|^~\\&|LAB|FAC|RCV|FAC|20250101120000||ORU^R01^ORU_R01|M1|P|2.5.1\r" +
		"PID|1||12345^^^HOSP^MR||DOE^JOHN||19800101|M\r" +
		"OBR|1||ACC1|2345-7^Glucose^LN|||20250101110000\rOBX|1|NM|2345-7^Glucose^LN||90|mg/dL|||||F|||20250101103000\r"
	path := hl7TempFile(t, "oru.hl7", raw)
	tenants := hl7TempFile(t, "tenants.json", `{"lab": {"timeZone": "America/New_York"}}`)
	effective := func(args ...string) (string, string) {
		var out, errOut bytes.Buffer
		cmd := hl7MapCmd{Files: []string{path}, Stdout: &out, Stderr: &errOut}
		for i := 0; i < len(args); i += 2 {
			switch args[i] {
			case "tz":
				cmd.TZ = args[i+1]
			case "tenant":
				cmd.Tenants, cmd.Tenant = tenants, args[i+1]
			}
		}
		require.NoError(t, cmd.Run())
		var b fhir.Bundle
		require.NoError(t, json.Unmarshal(out.Bytes(), &b))
		for _, e := range b.Entry {
			var r struct {
				ResourceType      string `json:"resourceType"`
				EffectiveDateTime string `json:"effectiveDateTime"`
			}
			require.NoError(t, json.Unmarshal(e.Resource, &r))
			if r.ResourceType == "Observation" {
				return r.EffectiveDateTime, errOut.String()
			}
		}
		t.Fatal("no Observation")
		return "", ""
	}
	got, notes := effective()
	require.Equal(t, "2025-01-01", got, "no zone: the date")
	require.Contains(t, notes, "time of day dropped")
	got, notes = effective("tz", "Asia/Kabul")
	require.Equal(t, "2025-01-01T10:30:00+04:30", got)
	require.NotContains(t, notes, "time of day dropped")
	got, _ = effective("tenant", "lab")
	require.Equal(t, "2025-01-01T10:30:00-05:00", got, "the tenant's zone")
	got, _ = effective("tenant", "lab", "tz", "Asia/Kabul")
	require.Equal(t, "2025-01-01T10:30:00+04:30", got, "--tz before the tenant's zone")

	// Through kong, as `interop` runs it; an unknown zone is a usage error.
	require.Equal(t, 0, run([]string{"hl7", "lint", "--tz", "Asia/Kabul", "--min-severity", "error", path}))
	require.Equal(t, 2, run([]string{"hl7", "map", "--tz", "Asia/Kabull", path}))
	require.Equal(t, 2, run([]string{"hl7", "map", "--tz", "Local", path}))
}
