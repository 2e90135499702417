// Package oidctest is an OpenID provider for tests, a peer the code under test talks to over
// HTTP: discovery, a key set, an authorization endpoint that signs the configured user in at
// once, and a token endpoint that exchanges its codes for ES256-signed ID tokens.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Provider is a running test OpenID provider. Its issuer is URL.
type Provider struct {
	URL                    string
	ClientID, ClientSecret string

	srv *httptest.Server
	key *ecdsa.PrivateKey
	kid string

	mu    sync.Mutex
	user  map[string]any
	codes map[string]grant
}

// grant is an authorization code waiting to be exchanged.
type grant struct {
	redirectURI string
	nonce       string
	claims      map[string]any
}

// New starts a provider for one confidential client; it stops when the test ends.
func New(t testing.TB, clientID, clientSecret string) *Provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("oidctest: generate key: %v", err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, key: key, kid: randomString(8), codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	return p
}

// AuthorizationEndpoint is where the provider's discovery document sends browsers to sign in.
func (p *Provider) AuthorizationEndpoint() string { return p.URL + "/authorize" }

// SignIn sets the claims (sub, groups, email…) of whoever signs in next.
func (p *Provider) SignIn(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = maps.Clone(claims)
}

// IDToken signs an ID token for the provider's client: iss, aud, iat and exp (an hour) are set
// unless claims sets them.
func (p *Provider) IDToken(claims map[string]any) string {
	return p.sign(p.key, claims)
}

// Forge signs like IDToken, with the provider's key id, but with a key the provider never
// published: a forgery.
func (p *Provider) Forge(claims map[string]any) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return p.sign(key, claims)
}

func (p *Provider) sign(key *ecdsa.PrivateKey, claims map[string]any) string {
	now := time.Now()
	c := jwt.MapClaims{"iss": p.URL, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	maps.Copy(c, claims)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = p.kid
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                p.URL,
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"jwks_uri":                              p.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: "ES256", Use: "sig"}}})
}

// authorize signs the configured user in without asking and sends the browser back with a code.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || err != nil || redirect.Host == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString(16)
	p.mu.Lock()
	p.codes[code] = grant{redirectURI: redirect.String(), nonce: q.Get("nonce"), claims: maps.Clone(p.user)}
	p.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound) //nolint:gosec // G710: an authorization endpoint sends the browser to the client's redirect_uri; this test peer trusts every one

}

// token exchanges a code for an opaque access token and an ID token, once.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostFormValue("code")]
	delete(p.codes, r.PostFormValue("code"))
	p.mu.Unlock()
	if r.PostFormValue("grant_type") != "authorization_code" || !found || g.redirectURI != r.PostFormValue("redirect_uri") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	claims := maps.Clone(g.claims)
	if claims == nil {
		claims = map[string]any{}
	}
	claims["nonce"] = g.nonce
	writeJSON(w, map[string]any{
		"access_token": "opaque-" + randomString(16), "token_type": "Bearer", "expires_in": 3600,
		"id_token": p.IDToken(claims),
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // a test peer: a failed write shows up in the test's assertions
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
