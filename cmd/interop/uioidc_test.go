package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/oidctest"
)

// TestDevTemporalSignIn runs `interop dev` with INTEROP_OIDC_* set: the embedded Temporal
// server refuses callers without a signed-in user's token, and the service's own gateway and
// worker keep processing messages through it.
func TestDevTemporalSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server")
	}
	ctx := context.Background()
	idp := oidctest.New(t, "temporal-ui", "ui-secret")
	cfg, _ := devTestConfig(t, "uioidc")
	cfg.Temporal.OIDC.Issuer = idp.URL
	cfg.Temporal.OIDC.ClientID = idp.ClientID
	cfg.Temporal.OIDC.ClientSecret = idp.ClientSecret
	cfg.Temporal.OIDC.ReadRoles = []string{"interop-support"}
	base := "http://" + cfg.HTTPAddr
	startDev(t, cfg)
	waitReady(t, base)

	// A message goes all the way: the gateway starts its workflow and the worker runs it, both
	// with the process's own credential.
	ack := sendMLLP(t, cfg.MLLPAddr, loadFixture(t, "adt_a01.hl7"))
	require.Equal(t, hl7v2.AppAccept, ack.Code, "ACK text: %s", ack.Text)
	secret, err := auth.DevSecret(cfg.DataDir)
	require.NoError(t, err)
	token, err := auth.HS256{Secret: secret}.Issue("uioidc", "default", "system/*.cruds interop/admin", time.Hour)
	require.NoError(t, err)
	waitForTotal(t, base+"/fhir/Patient?identifier="+url.QueryEscape("urn:id:test1|PATID1234"), token, 1)

	dial := func(creds client.Credentials) client.Client {
		o := client.Options{HostPort: cfg.Temporal.EmbeddedFrontendAddr, Namespace: cfg.Temporal.Namespace, Credentials: creds}
		o.ConnectionOptions.TLSDisabled = true
		c, err := client.Dial(o)
		require.NoError(t, err)
		t.Cleanup(c.Close)
		return c
	}
	list := &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.Temporal.Namespace, Query: `InteropStatus = "processed"`}
	_, err = dial(nil).ListWorkflow(ctx, list)
	var denied *serviceerror.PermissionDenied
	require.ErrorAs(t, err, &denied, "the temporal frontend refuses a caller without a token")

	reader := dial(client.NewAPIKeyStaticCredentials(idp.IDToken(map[string]any{"sub": "rita", "groups": []string{"interop-support"}})))
	require.Eventually(t, func() bool {
		resp, err := reader.ListWorkflow(ctx, list)
		return err == nil && len(resp.GetExecutions()) == 1
	}, 30*time.Second, 200*time.Millisecond, "a signed-in reader sees the run")

	resp, err := http.Get("http://" + cfg.Temporal.EmbeddedUIAddr + "/api/v1/namespaces/default/workflows") //nolint:noctx // a test's one-off request
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the UI's API wants a signed-in user")
}
