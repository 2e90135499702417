package mapping_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResourcesValidateWithIndependentValidator runs tools/fhir-validate (@medplum/core and
// FHIR.js, pinned in its package-lock.json) over every golden Bundle: base R4, and every
// resource against every profile in its meta.profile (US Core 6.1.0 and IPS 2.0.0; a profile
// the validator cannot load is an error), judged by code from other projects than ours.
func TestResourcesValidateWithIndependentValidator(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens, "no golden Bundles to validate")
	out, err := runValidator(t, goldens...)
	if err != nil {
		t.Fatalf("independent FHIR validation failed (%v); run `node tools/fhir-validate/validate.mjs internal/mapping/testdata/*.golden.json`:\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestProfileValidationFailsOnBadResources proves that the validator judges: each resource
// below breaks one rule of a profile it claims, and each break must be reported.
func TestProfileValidationFailsOnBadResources(t *testing.T) {
	const (
		usCore = "http://hl7.org/fhir/us/core/StructureDefinition/"
		ips    = "http://hl7.org/fhir/uv/ips/StructureDefinition/"
	)
	cases := []struct {
		name, resource, want string
	}{
		{"us-core-patient without identifier", `{"resourceType":"Patient","meta":{"profile":["` + usCore + `us-core-patient"]},"name":[{"family":"X"}],"gender":"male"}`,
			"Patient: identifier: Missing required property [medplum US Core 6.1.0 us-core-patient]"},
		{"us-core-patient without name", `{"resourceType":"Patient","meta":{"profile":["` + usCore + `us-core-patient"]},"identifier":[{"system":"urn:x","value":"1"}],"gender":"male"}`,
			"Patient: name: Missing required property [medplum US Core 6.1.0 us-core-patient]"},
		{"us-core-race without its required text", `{"resourceType":"Patient","meta":{"profile":["` + usCore + `us-core-patient"]},"identifier":[{"system":"urn:x","value":"1"}],"name":[{"family":"X"}],"gender":"male","extension":[{"url":"` + usCore + `us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3"}}]}]}`,
			"Patient: extension[0].extension: Incorrect number of values provided for slice 'text'"},
		{"IPS patient without birthDate", `{"resourceType":"Patient","meta":{"profile":["` + ips + `Patient-uv-ips"]},"name":[{"family":"X"}]}`,
			"Patient: birthDate: Missing required property [medplum IPS 2.0.0 Patient-uv-ips]"},
		{"lab observation without category", `{"resourceType":"Observation","meta":{"profile":["` + usCore + `us-core-observation-lab"]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/1"},"effectiveDateTime":"2020-01-01","valueString":"x"}`,
			"Observation: category: Missing required property [medplum US Core 6.1.0 us-core-observation-lab]"},
		{"lab observation with a category outside the bound value set", `{"resourceType":"Observation","meta":{"profile":["` + usCore + `us-core-observation-lab"]},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"labx"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/1"},"effectiveDateTime":"2020-01-01","valueString":"x"}`,
			"none is in the required value set http://hl7.org/fhir/us/core/ValueSet/us-core-clinical-result-observation-category of slice us-core"},
		{"lab report issued missing", `{"resourceType":"DiagnosticReport","meta":{"profile":["` + usCore + `us-core-diagnosticreport-lab"]},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/1"},"effectiveDateTime":"2020-01-01"}`,
			"Constraint us-core-9 not met"},
		{"a profile nobody can load", `{"resourceType":"Organization","meta":{"profile":["http://example.org/fhir/StructureDefinition/national-organization"]},"name":"X"}`,
			"http://example.org/fhir/StructureDefinition/national-organization cannot be loaded"},
		{"a profile of another type", `{"resourceType":"Organization","meta":{"profile":["` + usCore + `us-core-patient"]},"name":"X"}`,
			"us-core-patient profiles Patient, not Organization"},
	}
	dir := t.TempDir()
	var entries []string
	for i, c := range cases {
		entries = append(entries, fmt.Sprintf(`{"fullUrl":"urn:uuid:%d","resource":%s,"request":{"method":"POST","url":"%s"}}`,
			i, c.resource, strings.SplitN(strings.TrimPrefix(c.resource, `{"resourceType":"`), `"`, 2)[0]))
	}
	bundle := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bundle, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[`+strings.Join(entries, ",")+`]}`), 0o600))
	out, err := runValidator(t, bundle)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the validator accepted bad resources:\n%s", out)
	require.Equal(t, 1, exit.ExitCode(), "exit 1 is a verdict, anything else a failure to judge:\n%s", out)
	for i, c := range cases {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, fmt.Sprintf("#entry[%d] ", i)) && strings.Contains(line, c.want) {
				found = true
			}
		}
		assert.True(t, found, "%s: no error %q on entry[%d] in:\n%s", c.name, c.want, i, out)
	}
}

// runValidator runs tools/fhir-validate/validate.mjs over the Bundles and returns its output;
// the error is the process's (an *exec.ExitError with code 1 when it found errors).
func runValidator(t *testing.T, bundles ...string) (string, error) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("INTEROP_REQUIRE_NODE") != "" { // set by `make test`, which installs Node.js
			t.Fatal("Node.js and npm are required (INTEROP_REQUIRE_NODE is set) but not on PATH")
		}
		t.Skip("SKIPPED: Node.js 20 and npm are not installed, so the golden Bundles were NOT checked " +
			"by the independent FHIR validator (tools/fhir-validate); `make test` requires Node.js 20")
	}
	root := repoRoot(t)
	tool := filepath.Join(root, "tools", "fhir-validate")
	ensureNodeModules(t, npm, tool)
	args := []string{filepath.Join(tool, "validate.mjs")}
	for _, b := range bundles {
		abs, err := filepath.Abs(b)
		require.NoError(t, err)
		if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
			abs = rel // shorter lines: internal/mapping/testdata/…
		}
		args = append(args, abs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ensureNodeModules installs the validator's locked dependencies when they are missing or
// older than its package-lock.json, so that a clean checkout validates rather than skips.
func ensureNodeModules(t *testing.T, npm, dir string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	require.NoError(t, err)
	// npm ci writes node_modules/.package-lock.json; it predates a newer lock file.
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", dir, "--no-audit", "--no-fund")
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci --prefix %s:\n%s", dir, out)
}

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "go.mod not found above the test's directory")
		dir = parent
	}
}

// TestVendoredUSCoreIsThePublishedPackage checks that tools/fhir-validate's US Core subset is
// exactly what vendor-us-core.mjs makes of the published package (for the profiles the
// mapping names today), where shared/reference is there to compare with.
func TestVendoredUSCoreIsThePublishedPackage(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: Node.js is not installed; the vendored US Core subset was NOT compared with the package")
	}
	root := repoRoot(t)
	const pkg = "reference/HL7-US-Core-6.1.0/hl7.fhir.us.core-6.1.0.tgz"
	tgz := ""
	for _, shared := range []string{filepath.Join(root, "..", "shared"), "/work/shared"} {
		if _, err := os.Stat(filepath.Join(shared, pkg)); err == nil {
			tgz = filepath.Join(shared, pkg)
			break
		}
	}
	if tgz == "" {
		t.Skip("SKIPPED: ../shared/" + pkg + " not found; the vendored US Core subset was NOT compared with the package")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(root, "tools", "fhir-validate", "vendor-us-core.mjs"), "--check", tgz).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
