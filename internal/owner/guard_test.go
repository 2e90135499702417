package owner_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/owner"
)

// A remote owner is reached through the owner guard unless the Resolver is given a client of
// its own: a name that resolves to loopback (a rebinding name) is refused when dialled, as is
// a literal private address; the operator's allow-list lets them through.
func TestRemoteOwnerRefusedAtDialTime(t *testing.T) {
	t.Parallel()
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"p1"}`))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	ctx := context.Background()
	read := owner.Request{Method: http.MethodGet, Path: "/Patient/p1"}

	strict := &owner.Resolver{}
	for _, base := range []string{"http://localhost:" + port + "/fhir", srv.URL + "/fhir"} {
		_, err := strict.Resolve("t1", base).Do(ctx, read)
		require.ErrorIs(t, err, netguard.ErrRefused, base)
		require.ErrorIs(t, err, owner.ErrUnreachable, base)
		_, err = strict.Resolve("t1", base).ConditionalCreate(ctx, "Patient", []byte(`{"resourceType":"Patient"}`), testIdent)
		require.True(t, errors.Is(err, netguard.ErrRefused), "%s: %v", base, err)
	}
	require.Zero(t, hits, "nothing reached the loopback server")

	allow, err := netguard.Parse(netguard.Loopback)
	require.NoError(t, err)
	allowed := &owner.Resolver{Guard: allow}
	resp, err := allowed.Resolve("t1", "http://localhost:"+port+"/fhir").Do(ctx, read)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, 1, hits)
}

var testIdent = fhir.Identifier{System: "urn:oid:1.2.3", Value: "42"}
