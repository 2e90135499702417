package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxDiscoveryBytes bounds an OpenID provider's discovery document.
const maxDiscoveryBytes = 1 << 20

// OIDCProvider is what an OpenID provider's discovery document says about it: the part a
// sign-in and the verification of its ID tokens need.
type OIDCProvider struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// DiscoverOIDC fetches the discovery document of issuer (issuer/.well-known/openid-configuration:
// https, or http on a loopback host) and checks that it names issuer exactly, as OpenID Connect
// Discovery requires, and the authorization, token and key set endpoints. hc nil means a
// client with a 10 s timeout.
func DiscoverOIDC(ctx context.Context, issuer string, hc *http.Client) (OIDCProvider, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if err := checkFetchURL("oidc issuer", wellKnown); err != nil {
		return OIDCProvider{}, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return OIDCProvider{}, fmt.Errorf("oidc discovery request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return OIDCProvider{}, fmt.Errorf("fetch oidc discovery %s: %w", wellKnown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return OIDCProvider{}, fmt.Errorf("fetch oidc discovery %s: status %d", wellKnown, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil {
		return OIDCProvider{}, fmt.Errorf("read oidc discovery %s: %w", wellKnown, err)
	}
	if len(body) > maxDiscoveryBytes {
		return OIDCProvider{}, fmt.Errorf("oidc discovery %s is larger than %d bytes", wellKnown, maxDiscoveryBytes)
	}
	var p OIDCProvider
	if err := json.Unmarshal(body, &p); err != nil {
		return OIDCProvider{}, fmt.Errorf("oidc discovery %s: not a JSON object: %w", wellKnown, err)
	}
	if p.Issuer != issuer {
		return OIDCProvider{}, fmt.Errorf("oidc discovery %s names issuer %q, not %q (the issuer must match exactly, trailing slash included)",
			wellKnown, p.Issuer, issuer)
	}
	if p.AuthorizationEndpoint == "" || p.TokenEndpoint == "" || p.JWKSURI == "" {
		return OIDCProvider{}, errors.New("oidc discovery " + wellKnown + " lacks authorization_endpoint, token_endpoint or jwks_uri")
	}
	return p, nil
}
