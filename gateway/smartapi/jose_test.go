package smartapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/gateway/internal/gatewaytest"
)

// TestSMARTBackendServicesWithJoseClient runs an independent SMART Backend Services client
// built on npm's jose (test/smartjose) against the gateway over real HTTP: it registers itself
// (ES384, then RS384), signs its client assertion, gets a token, verifies the token with the
// published JWKS, calls /fhir with it and sees its replayed assertion refused. Without Node.js
// it skips, loudly, unless INTEROP_REQUIRE_NODE is set (make test sets it).
func TestSMARTBackendServicesWithJoseClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("INTEROP_REQUIRE_NODE") != "" {
			t.Fatal("node is not on PATH and INTEROP_REQUIRE_NODE is set: install Node.js 18+")
		}
		t.Skip("SKIPPED: node is not on PATH, so the independent SMART client (jose) did not run; set INTEROP_REQUIRE_NODE=1 to make this a failure")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "smartjose"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		npm, err := exec.LookPath("npm")
		require.NoError(t, err, "npm is needed to install test/smartjose's locked dependencies")
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in test/smartjose: %s", out)
	}

	s := newSetup(t)
	cmd := exec.CommandContext(ctx, node, "run.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+s.base, "ADMIN_TOKEN="+s.adminToken(gatewaytest.TenantA))
	out, err := cmd.CombinedOutput()
	t.Logf("jose client:\n%s", out)
	require.NoError(t, err, "the independent SMART client failed against the gateway")
	require.Contains(t, string(out), `"ok":true`)
}
