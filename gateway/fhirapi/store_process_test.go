package fhirapi

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
)

// startStoreProcess runs `interop store` (the binary at bin) on its own database and port, as
// a separate owning service, and returns its base URL. The process is killed at cleanup or by
// the returned stop.
func startStoreProcess(t *testing.T, bin string) (base string, stop func()) {
	t.Helper()
	dbURL, _ := dbtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "store", "--addr", addr)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "INTEROP_JWT_SECRET="+string(apiSecret),
		"INTEROP_DATA_DIR="+t.TempDir(), "INTEROP_JWKS_URL=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	base = "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/metadata")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "interop store on %s did not come up", addr)
	return base, stop
}

// TestFHIRGatewayWithStoreProcesses puts two `interop store` processes behind the gateway as
// the owners of Observation's two categories.
func TestFHIRGatewayWithStoreProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the interop binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "interop")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/interop")
	build.Dir = filepath.Join("..", "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build interop: %s", out)

	vitals, _ := startStoreProcess(t, bin)
	lab, stopLab := startStoreProcess(t, bin)
	s := newAPIServer(t, func(d *Deps) { d.FHIR.RoutingCacheTTL = -1; d.FHIR.OwnerTimeout = 5 * time.Second })
	for cat, owner := range map[string]string{"vital-signs": vitals, "laboratory": lab} {
		_, err := s.pool.Exec(ctx, `INSERT INTO fhir_routing_rules (tenant_id, resource_type, category, owner_url) VALUES ($1, 'Observation', $2, $3)`,
			apiTenantA, cat, owner)
		require.NoError(t, err)
	}
	tok := s.token(apiTenantA, "system/*.cruds")
	o := &ownersSetup{apiServer: s, vitals: &testOwner{url: vitals}, lab: &testOwner{url: lab}, patients: &testOwner{url: "http://unused.invalid"}, tokA: tok}

	var created []string
	for i, cat := range []string{"vital-signs", "laboratory", "vital-signs", "laboratory", "laboratory"} {
		created = append(created, o.create(t, "Observation", observation(cat, strconv.Itoa(i))))
	}
	for _, id := range created {
		rec := s.get("/fhir/Observation/"+id, tok)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		o.requireNoOwnerURL(t, rec)
	}
	status, _ := o.lab.get(t, tok, "/Observation/"+created[1])
	require.Equal(t, http.StatusOK, status, "the laboratory observation lives at the laboratory owner")
	status, _ = o.vitals.get(t, tok, "/Observation/"+created[1])
	require.Equal(t, http.StatusNotFound, status)

	ids, totals, sizes := o.pageIDs(t, tok, "/fhir/Observation?_count=2")
	require.Equal(t, created, ids)
	require.Equal(t, []int{2, 2, 1}, sizes)
	require.Equal(t, []int{5, 5, 5}, totals)

	stopLab()
	total, entries := requireSearchset(t, s.get("/fhir/Observation", tok))
	require.Equal(t, 2, total)
	require.Len(t, entries, 3, "two matches and the outcome entry")
	require.Equal(t, "outcome", entries[2]["search"].(map[string]any)["mode"])
}
