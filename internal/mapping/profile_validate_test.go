package mapping_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResourcesValidateWithIndependentValidator runs tools/fhir-validate (@medplum/core and
// FHIR.js, pinned in its package-lock.json) over every golden Bundle: base R4 and the US Core
// profiles named in meta.profile, judged by code from other projects than ours. The header of
// validate.mjs says which US Core version it can check, and why not 6.1.
func TestResourcesValidateWithIndependentValidator(t *testing.T) {
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

	goldens, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens, "no golden Bundles to validate")
	args := []string{filepath.Join(tool, "validate.mjs")}
	for _, g := range goldens {
		abs, err := filepath.Abs(g)
		require.NoError(t, err)
		rel, err := filepath.Rel(root, abs) // shorter lines: internal/mapping/testdata/…
		require.NoError(t, err)
		args = append(args, rel)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("independent FHIR validation failed (%v); run `node tools/fhir-validate/validate.mjs internal/mapping/testdata/*.golden.json`:\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
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
