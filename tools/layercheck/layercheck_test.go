package layercheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture is one file of the throw-away module and the depguard rule it must break ("" when it
// must pass: the same import where the layering allows it).
type fixture struct {
	path, src, rule string
}

var fixtures = []fixture{
	// Each rule of .golangci.yml, broken once.
	{"internal/hl7v2/leak.go", "package hl7v2\n\nimport _ \"net/http\"\n", "pure"},
	{"internal/mapping/leak.go", "package mapping\n\nimport _ \"os/exec\"\n", "pure"},
	{"internal/export/leak.go", "package export\n\nimport _ \"database/sql\"\n", "pure"},
	{"internal/audit/leak.go", "package audit\n\nimport _ \"github.com/labstack/echo/v4\"\n", "pure"},
	{"workflows/leak.go", "package workflows\n\nimport _ \"net/http\"\n", "workflows"},
	{"gateway/inbound/leak.go", "package inbound\n\nimport _ \"net/http\"\n", "inbound"},
	{"gateway/fhirapi/leak.go", "package fhirapi\n\nimport _ \"github.com/jackc/pgx/v5\"\n", "pgx"},
	// Allowed: pgx inside db/, net/http in the HTTP rooms and in a pure package's tests,
	// net/url (not net) in a pure package.
	{"db/ok.go", "package db\n\nimport _ \"github.com/jackc/pgx/v5\"\n", ""},
	{"gateway/fhirapi/ok.go", "package fhirapi\n\nimport _ \"net/http\"\n", ""},
	{"internal/routing/ok.go", "package routing\n\nimport _ \"net/url\"\n", ""},
	{"internal/routing/ok_test.go", "package routing\n\nimport _ \"net/http\"\n", ""},
}

func TestLayerCrossingImportFailsLint(t *testing.T) {
	bin := golangciLint(t)
	root := repoRoot(t)
	dir := t.TempDir()
	// The repository's own module and configuration, so that the rules and import paths
	// under test are the real ones.
	for _, name := range []string{"go.mod", "go.sum", ".golangci.yml"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fixtures {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.src), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin, "run", "--enable-only", "depguard", "--output.json.path", "stdout",
		"--output.text.path", "stderr", "--show-stats=false", "./...")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("golangci-lint should exit 1 (issues found), got %v\n%s", err, stderr.String())
	}
	var report struct {
		Issues []struct {
			FromLinter string
			Text       string
			Pos        struct{ Filename string }
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("golangci-lint's JSON: %v\n%s", err, stdout.String())
	}
	got := map[string]string{} // file → the rule it broke
	for _, is := range report.Issues {
		if is.FromLinter != "depguard" {
			t.Errorf("%s: unexpected %s finding: %s", is.Pos.Filename, is.FromLinter, is.Text)
			continue
		}
		got[filepath.ToSlash(is.Pos.Filename)] = ruleOf(is.Text)
	}
	for _, f := range fixtures {
		if g := got[f.path]; g != f.rule {
			t.Errorf("%s: depguard rule %q, want %q", f.path, g, f.rule)
		}
	}
	if t.Failed() {
		t.Logf("golangci-lint said:\n%s", stderr.String())
	}
}

// ruleOf is the rule named in a depguard message: "import 'x' is not allowed from list 'pure': …".
func ruleOf(text string) string {
	_, rest, ok := strings.Cut(text, "from list '")
	if !ok {
		return "?" + text
	}
	name, _, _ := strings.Cut(rest, "'")
	return name
}

// golangciLint finds the binary `make lint` builds: $GOLANGCI_LINT, bin/golangci-lint, or PATH.
// Without one the test skips, except under CI, where make test has built it.
func golangciLint(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("GOLANGCI_LINT"), filepath.Join(repoRoot(t), "bin", "golangci-lint")}
	if p, err := exec.LookPath("golangci-lint"); err == nil {
		candidates = append(candidates, p)
	}
	if i := slices.IndexFunc(candidates, func(p string) bool {
		st, err := os.Stat(p)
		return p != "" && err == nil && !st.IsDir()
	}); i >= 0 {
		return candidates[i]
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("golangci-lint not found (GOLANGCI_LINT, bin/golangci-lint, PATH): make lint builds it")
	}
	t.Skip("golangci-lint not found (GOLANGCI_LINT, bin/golangci-lint, PATH): run make golangci-lint")
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
