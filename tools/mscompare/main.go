// Command mscompare maps every Microsoft FHIR-Converter HL7 v2 sample that has an expected
// Bundle with our mapping and compares the facts that matter (patient identifiers, names,
// birth date, gender, address; encounter class, period, status; observation code, value,
// unit, reference range, interpretation; immunization vaccine code, date, lot, status),
// writing docs/mapping-comparison.md. Microsoft's output is a comparison, not a norm: each
// difference is either a mapping bug or is justified in the report's last section, which this
// command keeps as it finds it.
//
//	go run ./tools/mscompare          # rewrite the report
//	go run ./tools/mscompare -check   # exit 1 when the report on disk is stale
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// MessageResult is the comparison of one sample.
type MessageResult struct {
	Name   string // sample file name without .hl7
	Type   string // MSH-9.1^MSH-9.2
	MapErr string // why our side has no Bundle, if it has none
	Facts  []FactResult
}

func main() {
	check := flag.Bool("check", false, "exit 1 if the report on disk differs from a fresh run, instead of writing it")
	ref := flag.String("ref", "", "microsoft-FHIR-Converter reference folder (default: found under shared/reference)")
	out := flag.String("out", "", "report path (default: docs/mapping-comparison.md in the module root)")
	flag.Parse()
	if err := run(*check, *ref, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mscompare:", err)
		os.Exit(1)
	}
}

func run(check bool, ref, out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if ref == "" {
		if ref, err = findReference(root); err != nil {
			return err
		}
	}
	if out == "" {
		out = filepath.Join(root, "docs", "mapping-comparison.md")
	}
	results, err := compareCorpus(ref)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read report: %w", err)
	}
	report := render(results, justified(old))
	if check {
		if !bytes.Equal(old, report) {
			return fmt.Errorf("%s is stale: run `go run ./tools/mscompare` and commit it", out)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create report folder: %w", err)
	}
	if err := os.WriteFile(out, report, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// sample is one corpus message with both Bundles' resources.
type sample struct {
	name   string
	msg    *hl7v2.Message // nil when it does not parse
	mapErr string         // why ours is empty, if it is
	ours   []resource
	theirs []resource
}

// compareCorpus compares every sample, in name order.
func compareCorpus(ref string) ([]MessageResult, error) {
	samples, err := loadCorpus(ref)
	if err != nil {
		return nil, err
	}
	var results []MessageResult
	for _, s := range samples {
		r := MessageResult{Name: s.name, MapErr: s.mapErr, Facts: compareBundles(s.ours, s.theirs)}
		if s.msg != nil {
			r.Type = s.msg.Get("MSH-9.1") + "^" + s.msg.Get("MSH-9.2")
		}
		results = append(results, r)
	}
	return results, nil
}

// loadCorpus pairs Expected-Hl7v2/<EVENT>/<name>-expected.json with
// SampleData-Hl7v2/<name>.hl7 (the layout of the converter's functional tests), maps each
// sample and reads each expected Bundle.
func loadCorpus(ref string) ([]sample, error) {
	expected, err := filepath.Glob(filepath.Join(ref, "Expected-Hl7v2", "*", "*-expected.json"))
	if err != nil {
		return nil, fmt.Errorf("list expected bundles: %w", err)
	}
	if len(expected) == 0 {
		return nil, fmt.Errorf("no expected bundles under %s", ref)
	}
	var samples []sample
	for _, exp := range expected {
		name := strings.TrimSuffix(filepath.Base(exp), "-expected.json")
		s, err := loadSample(filepath.Join(ref, "SampleData-Hl7v2", name+".hl7"), exp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		s.name = name
		samples = append(samples, s)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i].name < samples[j].name })
	return samples, nil
}

// loadSample reads one pair. A message we cannot parse or map is recorded (every fact
// Microsoft has then counts as missing on our side), not an error: the report must cover the
// corpus whatever the mapping supports yet.
func loadSample(samplePath, expectedPath string) (sample, error) {
	var s sample
	raw, err := os.ReadFile(samplePath)
	if err != nil {
		return s, fmt.Errorf("read sample: %w", err)
	}
	if s.theirs, err = readBundle(expectedPath); err != nil {
		return s, fmt.Errorf("read expected bundle: %w", err)
	}
	if s.msg, err = hl7v2.Parse(normaliseFraming(raw)); err != nil {
		s.msg, s.mapErr = nil, "parse: "+err.Error()
		return s, nil
	}
	if s.ours, err = mapMessage(s.msg); err != nil {
		s.mapErr = err.Error()
	}
	return s, nil
}

// normaliseFraming applies what testdata/README.md of internal/mapping does to the samples:
// BOM removed, segment terminators CR. The content is unchanged.
func normaliseFraming(raw []byte) []byte {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r"))
	return bytes.ReplaceAll(raw, []byte("\n"), []byte("\r"))
}

func mapMessage(msg *hl7v2.Message) (rs []resource, err error) {
	defer func() {
		// A panic in a mapping under construction is reported in the row, not fatal to the report.
		if p := recover(); p != nil {
			rs, err = nil, fmt.Errorf("map: panic: %v", p)
		}
	}()
	b, err := mapping.Map(msg)
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	for i, e := range b.Entry {
		r, err := decode(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func readBundle(path string) ([]resource, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, err
	}
	var rs []resource
	for i, e := range b.Entry {
		r, err := decode(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// decode keeps numbers as json.Number so that decimals compare as written.
func decode(raw []byte) (resource, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var r resource
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode resource: %w", err)
	}
	return r, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from inside the module")
		}
		dir = parent
	}
}

// findReference looks where the machines and CI keep shared/: at /work/shared, or beside the
// checkout.
func findReference(root string) (string, error) {
	for _, dir := range []string{
		"/work/shared/reference/microsoft-FHIR-Converter",
		filepath.Join(root, "..", "shared", "reference", "microsoft-FHIR-Converter"),
	} {
		if _, err := os.Stat(filepath.Join(dir, "Expected-Hl7v2")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("microsoft-FHIR-Converter reference data not found; pass -ref")
}
