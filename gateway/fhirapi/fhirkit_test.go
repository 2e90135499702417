package fhirapi

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFHIRGatewayWithFHIRKitClient runs an independent FHIR client from npm (fhir-kit-client,
// test/fhirkit) against the gateway over real HTTP, with Observation split between two owning
// services: create, read, update, search with paging across owners, conditional create, a
// batch and an error. Without Node.js it skips, loudly, unless INTEROP_REQUIRE_NODE is set
// (make test sets it).
func TestFHIRGatewayWithFHIRKitClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("INTEROP_REQUIRE_NODE") != "" {
			t.Fatal("node is not on PATH and INTEROP_REQUIRE_NODE is set: install Node.js 18+")
		}
		t.Skip("SKIPPED: node is not on PATH, so the independent FHIR client (fhir-kit-client) did not run; set INTEROP_REQUIRE_NODE=1 to make this a failure")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "fhirkit"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "fhir-kit-client")); err != nil {
		npm, err := exec.LookPath("npm")
		require.NoError(t, err, "npm is needed to install test/fhirkit's locked dependencies")
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in test/fhirkit: %s", out)
	}

	srv := httptest.NewUnstartedServer(nil)
	o := newOwnersSetup(t, func(d *Deps) { d.BaseURL = "http://" + srv.Listener.Addr().String() })
	srv.Config.Handler = o.e
	srv.Start()
	t.Cleanup(srv.Close)

	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FHIR_BASE_URL="+srv.URL+"/fhir", "FHIR_TOKEN="+o.tokA)
	out, err := cmd.CombinedOutput()
	t.Logf("fhir-kit-client:\n%s", out)
	require.NoError(t, err, "the independent FHIR client failed against the gateway")
	require.Contains(t, string(out), `"ok":true`)
}
