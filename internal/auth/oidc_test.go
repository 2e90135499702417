package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/oidctest"
)

func TestDiscoverOIDC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp := oidctest.New(t, "client", "secret")
	p, err := DiscoverOIDC(ctx, idp.URL, nil)
	require.NoError(t, err)
	require.Equal(t, OIDCProvider{Issuer: idp.URL, AuthorizationEndpoint: idp.URL + "/authorize",
		TokenEndpoint: idp.URL + "/token", JWKSURI: idp.URL + "/jwks"}, p)

	// The issuer must match exactly: a trailing slash is another issuer.
	_, err = DiscoverOIDC(ctx, idp.URL+"/", nil)
	require.ErrorContains(t, err, "names issuer")

	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	_, err = DiscoverOIDC(ctx, serve(http.StatusNotFound, ""), nil)
	require.ErrorContains(t, err, "status 404")
	_, err = DiscoverOIDC(ctx, serve(http.StatusOK, "<html>"), nil)
	require.ErrorContains(t, err, "not a JSON object")
	_, err = DiscoverOIDC(ctx, serve(http.StatusOK, `{"issuer":"x"}`), nil)
	require.ErrorContains(t, err, "names issuer")

	// Keys fetched over clear text from another machine could be anyone's.
	_, err = DiscoverOIDC(ctx, "http://login.example.org/realms/nhp", nil)
	require.ErrorContains(t, err, "want https")
}

// JWKS.Parse verifies like Verify but decodes whatever claims the caller wants.
func TestJWKSParseIDToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp := oidctest.New(t, "client", "secret")
	p, err := DiscoverOIDC(ctx, idp.URL, nil)
	require.NoError(t, err)
	j, err := NewJWKS(ctx, JWKSConfig{URL: p.JWKSURI, Issuer: idp.URL, Audience: "client"})
	require.NoError(t, err)
	var claims struct {
		Groups []string `json:"groups"`
		Claims
	}
	require.NoError(t, j.Parse(idp.IDToken(map[string]any{"groups": []string{"a", "b"}}), &claims))
	require.Equal(t, []string{"a", "b"}, claims.Groups)
	err = j.Parse(idp.IDToken(map[string]any{"aud": "other"}), &claims)
	require.ErrorIs(t, err, ErrInvalidToken)
	_, err = j.Verify(idp.IDToken(nil))
	require.ErrorContains(t, err, "tenant", "Verify still wants a tenant")
}
