package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestFromEnvOverridesDefaults(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL":                    "postgres://u@db:5432/x",
		"INTEROP_HTTP_ADDR":               "0.0.0.0:9000",
		"TEMPORAL_ADDRESS":                "temporal:7233",
		"INTEROP_TEMPORAL_HISTORY_SHARDS": "16",
		"INTEROP_LOG_FORMAT":              "",
	}
	got, err := fromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)

	want := Default()
	want.DatabaseURL = "postgres://u@db:5432/x"
	want.HTTPAddr = "0.0.0.0:9000"
	want.Temporal.Address = "temporal:7233"
	want.Temporal.HistoryShards = 16
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("config (-want +got):\n%s", diff)
	}
	require.NoError(t, got.Validate())
	require.Equal(t, "", got.TemporalUIURL(), "no UI link is guessed for an external cluster")
}

func TestFromEnvRejectsMalformedNumbers(t *testing.T) {
	t.Parallel()
	_, err := fromLookup(func(k string) (string, bool) {
		return "many", k == "INTEROP_TEMPORAL_HISTORY_SHARDS"
	})
	require.ErrorContains(t, err, "INTEROP_TEMPORAL_HISTORY_SHARDS")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DatabaseURL = "mysql://x"
	c.HTTPAddr = "nope"
	c.LogFormat = "xml"
	c.Temporal.HistoryShards = 0
	err := c.Validate()
	for _, want := range []string{"DATABASE_URL", "INTEROP_HTTP_ADDR", "INTEROP_LOG_FORMAT", "HISTORY_SHARDS"} {
		require.ErrorContains(t, err, want)
	}
}

func TestTLSSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{"INTEROP_TLS_CERT": "/etc/interop/tls.crt", "INTEROP_TLS_KEY": "/etc/interop/tls.key"}
	c, err := fromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.True(t, c.TLS())
	require.Equal(t, "https://127.0.0.1:8080", c.BaseURL())
	require.NoError(t, c.Validate())

	c.TLSKeyFile = ""
	require.False(t, c.TLS())
	require.Equal(t, "http://127.0.0.1:8080", c.BaseURL())
	require.ErrorContains(t, c.Validate(), "INTEROP_TLS_CERT and INTEROP_TLS_KEY must be set together")
}

// The embedded Temporal UI has no sign-in: it may listen beyond loopback only when the
// operator says they accept that.
func TestTemporalUIStaysOnLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:8233", "localhost:8233", "[::1]:8233", ""} {
		c := Default()
		c.Temporal.EmbeddedUIAddr = addr
		require.NoError(t, c.Validate(), addr)
	}
	for _, addr := range []string{"0.0.0.0:8233", ":8233", "10.0.0.5:8233", "ui.example.org:8233", "[::]:8233"} {
		c := Default()
		c.Temporal.EmbeddedUIAddr = addr
		require.ErrorContains(t, c.Validate(), "has no sign-in", addr)
		c.Temporal.UIInsecure = true
		require.NoError(t, c.Validate(), addr)
		c.Temporal.UIInsecure = false
		c.Temporal.Address = "temporal.example.org:7233" // an external cluster: no embedded UI
		require.NoError(t, c.Validate(), addr)
	}
	env := map[string]string{"INTEROP_TEMPORAL_UI_READONLY": "true", "INTEROP_TEMPORAL_UI_INSECURE": "1"}
	c, err := fromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.True(t, c.Temporal.UIReadOnly)
	require.True(t, c.Temporal.UIInsecure)
	env["INTEROP_TEMPORAL_UI_READONLY"] = "perhaps"
	_, err = fromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.ErrorContains(t, err, "INTEROP_TEMPORAL_UI_READONLY")
}

// OIDC sign-in for the embedded Temporal UI: all of its settings or none, and with it the UI
// may listen beyond loopback.
func TestOIDCSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"INTEROP_OIDC_ISSUER":        "https://login.example.org/realms/nhp",
		"INTEROP_OIDC_CLIENT_ID":     "temporal-ui",
		"INTEROP_OIDC_CLIENT_SECRET": "s3cret",
		"INTEROP_OIDC_WRITE_ROLE":    "interop-operators, Support Leads",
		"INTEROP_OIDC_READ_ROLE":     "interop-support",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := fromLookup(lookup)
	require.NoError(t, err)
	want := OIDC{
		Issuer: "https://login.example.org/realms/nhp", ClientID: "temporal-ui", ClientSecret: "s3cret",
		Scopes: []string{"openid", "profile", "email"}, RolesClaim: "groups",
		WriteRoles: []string{"interop-operators", "Support Leads"}, ReadRoles: []string{"interop-support"},
	}
	if diff := cmp.Diff(want, c.Temporal.OIDC); diff != "" {
		t.Fatalf("oidc (-want +got):\n%s", diff)
	}
	require.NoError(t, c.Validate())
	require.Equal(t, "http://127.0.0.1:8233/auth/sso/callback", c.TemporalUICallbackURL(), "derived from the UI address")
	require.False(t, c.TemporalUISignInInClear(), "plain HTTP on loopback stays on this machine")

	// Sign-in protects the UI: it may listen beyond loopback without INTEROP_TEMPORAL_UI_INSECURE,
	// but then the browser's way back must be named.
	c.Temporal.EmbeddedUIAddr = "0.0.0.0:8233"
	require.ErrorContains(t, c.Validate(), "INTEROP_OIDC_CALLBACK_URL")
	c.Temporal.UIBaseURL = "https://temporal.example.org/"
	require.NoError(t, c.Validate())
	require.Equal(t, "https://temporal.example.org/auth/sso/callback", c.TemporalUICallbackURL())
	require.False(t, c.TemporalUISignInInClear())
	c.Temporal.UIBaseURL = "http://temporal.example.org"
	require.True(t, c.TemporalUISignInInClear(), "plain HTTP across the network")
	env["INTEROP_OIDC_CALLBACK_URL"] = "https://ui.example.org/auth/sso/callback"
	env["INTEROP_OIDC_SCOPES"] = "openid,groups offline_access"
	env["INTEROP_OIDC_ROLES_CLAIM"] = "realm_access.roles"
	c, err = fromLookup(lookup)
	require.NoError(t, err)
	c.Temporal.EmbeddedUIAddr = "0.0.0.0:8233"
	require.NoError(t, c.Validate())
	require.Equal(t, "https://ui.example.org/auth/sso/callback", c.TemporalUICallbackURL())
	require.Equal(t, []string{"openid", "groups", "offline_access"}, c.Temporal.OIDC.Scopes)
	require.Equal(t, "realm_access.roles", c.Temporal.OIDC.RolesClaim)

	bad := func(mutate func(*Config), want string) {
		t.Helper()
		c, err := fromLookup(lookup)
		require.NoError(t, err)
		mutate(&c)
		require.ErrorContains(t, c.Validate(), want)
	}
	bad(func(c *Config) { c.Temporal.OIDC.ClientSecret = "" }, "INTEROP_OIDC_CLIENT_SECRET")
	bad(func(c *Config) { c.Temporal.OIDC.ReadRoles, c.Temporal.OIDC.WriteRoles = nil, nil }, "INTEROP_OIDC_READ_ROLE or INTEROP_OIDC_WRITE_ROLE")
	bad(func(c *Config) { c.Temporal.OIDC.Scopes = []string{"profile"} }, "must include openid")
	bad(func(c *Config) { c.Temporal.OIDC.Issuer = "http://login.example.org" }, "want https")
	bad(func(c *Config) { c.Temporal.OIDC.CallbackURL = "https://ui.example.org/" }, "/auth/sso/callback")
	bad(func(c *Config) { c.Temporal.OIDC.CallbackURL = "ui.example.org/auth/sso/callback" }, "absolute")
	bad(func(c *Config) { c.Temporal.Address = "temporal.example.org:7233" }, "TEMPORAL_ADDRESS")
	bad(func(c *Config) { c.Temporal.OIDC.Issuer = "" }, "set it too")
	bad(func(c *Config) { c.Temporal.EmbeddedFrontendAddr = "10.0.0.5:7233" }, "INTEROP_TEMPORAL_FRONTEND_ADDR")
	for _, addr := range []string{"0.0.0.0:7233", ":7233", "localhost:7233", "127.0.0.1:7233"} {
		c, err := fromLookup(lookup)
		require.NoError(t, err)
		c.Temporal.EmbeddedFrontendAddr = addr
		require.NoError(t, c.Validate(), addr)
	}

	// An issuer on this machine may speak plain HTTP (a provider for development).
	c.Temporal.OIDC.Issuer = "http://127.0.0.1:8180/realms/dev"
	require.NoError(t, c.Validate())
}
