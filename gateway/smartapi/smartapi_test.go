package smartapi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway"
	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/internal/gatewaytest"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/auth"
	icrypto "github.com/nhp/interop/internal/crypto"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/smart"
	"github.com/nhp/interop/internal/store"
)

// setup is the whole gateway with the SMART token endpoint on a real HTTP listener.
type setup struct {
	t        *testing.T
	base     string
	tokenURL string
	pool     *db.Pool
	hs       auth.HS256
	ring     *smart.KeyRing
	audit    *auditlog.Writer
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	_, pool := dbtest.New(t)
	h, err := icrypto.NewKeyset()
	require.NoError(t, err)
	sealer, err := icrypto.NewSealer(h)
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	ring, err := smart.NewKeyRing(context.Background(), smart.KeyRingConfig{Pool: pool, Sealer: sealer, Logger: logger})
	require.NoError(t, err)

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	hs := auth.HS256{Secret: gatewaytest.Secret}
	server := &smart.Server{
		Pool: pool, Keys: ring, TokenURL: base + "/auth/token", Issuer: base, Audience: base + "/fhir",
		ClientKeys: &smart.ClientKeys{AllowPrivate: true, Logger: logger}, Logger: logger,
	}
	w := &auditlog.Writer{Pool: pool, Observer: audit.Observer{Name: "interop", BaseURL: base}, Logger: logger, FlushInterval: 10 * time.Millisecond}
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	e := gateway.New(gateway.Deps{
		Pool: pool, Store: &store.Store{Pool: pool}, DefaultOwner: routing.Builtin, BaseURL: base, Logger: logger,
		Auth:  auth.Chain{Issued: auth.IssuedVerifier{Issuer: base, Audience: base + "/fhir", Keys: ring}, Other: hs},
		SMART: server, AllowPrivateJWKS: true, Audit: w,
	})
	srv.Config.Handler = e
	srv.Start()
	t.Cleanup(srv.Close)
	return &setup{t: t, base: base, tokenURL: base + "/auth/token", pool: pool, hs: hs, ring: ring, audit: w}
}

func (s *setup) adminToken(tenant string) string {
	s.t.Helper()
	tok, err := s.hs.Issue("admin", tenant, auth.AdminScope+" system/*.cruds", time.Hour)
	require.NoError(s.t, err)
	return tok
}

// do sends a request and returns the status and the decoded JSON body.
func (s *setup) do(method, path, token, contentType string, body io.Reader) (int, map[string]any, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, body)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var m map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &m), "body: %s", raw)
	}
	return resp.StatusCode, m, resp.Header
}

// clientKey is a client's signing key and its public JWK.
type clientKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newClientKey(t *testing.T, alg string) clientKey {
	t.Helper()
	k := clientKey{kid: alg + "-" + uuid.NewString()[:8], alg: alg}
	var err error
	switch alg {
	case "ES384":
		k.priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		k.method = jwt.SigningMethodES384
	case "RS384":
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
		k.method = jwt.SigningMethodRS384
	}
	require.NoError(t, err)
	return k
}

func (k clientKey) jwks(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"}}})
	require.NoError(t, err)
	return b
}

// register registers a client of tenant with k's JWKS by value and scopes; its client_id.
func (s *setup) register(tenant string, k clientKey, scopes ...string) string {
	s.t.Helper()
	body, err := json.Marshal(map[string]any{"name": "test", "jwks": k.jwks(s.t), "scopes": scopes})
	require.NoError(s.t, err)
	status, m, hdr := s.do(http.MethodPost, "/admin/clients", s.adminToken(tenant), "application/json", bytes.NewReader(body))
	require.Equal(s.t, http.StatusCreated, status, "%v", m)
	require.Equal(s.t, s.base+"/admin/clients/"+m["clientId"].(string), hdr.Get("Location"))
	return m["clientId"].(string)
}

// assertion builds a client assertion; mod changes the claims before signing.
func (s *setup) assertion(k clientKey, clientID string, mod func(jwt.MapClaims)) string {
	s.t.Helper()
	claims := jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": s.tokenURL,
		"exp": time.Now().Add(4 * time.Minute).Unix(), "iat": time.Now().Unix(), "jti": uuid.NewString(),
	}
	if mod != nil {
		mod(claims)
	}
	t := jwt.NewWithClaims(k.method, claims)
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.priv)
	require.NoError(s.t, err)
	return signed
}

func (s *setup) token(form url.Values) (int, map[string]any, http.Header) {
	s.t.Helper()
	return s.do(http.MethodPost, "/auth/token", "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func tokenForm(assertion, scope string) url.Values {
	return url.Values{
		"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
		"client_assertion": {assertion}, "scope": {scope},
	}
}

func TestTokenEndpointIssuesTokensTheFHIRAPIAccepts(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for _, alg := range []string{"ES384", "RS384"} {
		k := newClientKey(t, alg)
		id := s.register(gatewaytest.TenantA, k, "system/Observation.rs", "system/Patient.r")
		status, body, hdr := s.token(tokenForm(s.assertion(k, id, nil), "system/Observation.cruds system/Patient.rs system/Encounter.rs"))
		require.Equal(t, http.StatusOK, status, "%s: %v", alg, body)
		require.Equal(t, "no-store", hdr.Get("Cache-Control"))
		require.Equal(t, "bearer", body["token_type"])
		require.EqualValues(t, 300, body["expires_in"])
		require.Equal(t, "system/Observation.rs system/Patient.r", body["scope"], "granted = requested ∩ registered")
		access := body["access_token"].(string)

		status, bundle, _ := s.do(http.MethodGet, "/fhir/Observation", access, "", nil)
		require.Equal(t, http.StatusOK, status, "%v", bundle)
		require.Equal(t, "Bundle", bundle["resourceType"])
		status, _, _ = s.do(http.MethodGet, "/fhir/Patient", access, "", nil)
		require.Equal(t, http.StatusForbidden, status, "search is not granted on Patient")
		status, _, _ = s.do(http.MethodGet, "/admin/clients", access, "", nil)
		require.Equal(t, http.StatusForbidden, status, "no admin scope")

		// The token's key is published.
		status, set, _ := s.do(http.MethodGet, "/.well-known/jwks.json", "", "", nil)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, mustJSON(t, set), s.ring.Signer())
	}
	// The HS256 tokens of `interop dev` keep working beside them.
	status, _, _ := s.do(http.MethodGet, "/fhir/Patient", s.adminToken(gatewaytest.TenantA), "", nil)
	require.Equal(t, http.StatusOK, status)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestTokenEndpointWithJWKSByURL(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	k := newClientKey(t, "RS384")
	fetches := 0
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(k.jwks(t))
	}))
	t.Cleanup(jwksSrv.Close)
	body := `{"name":"by url","jwksUrl":"` + jwksSrv.URL + `/jwks.json","scopes":["system/*.rs"]}`
	status, m, _ := s.do(http.MethodPost, "/admin/clients", s.adminToken(gatewaytest.TenantA), "application/json", strings.NewReader(body))
	require.Equal(t, http.StatusCreated, status, "%v", m)
	id := m["clientId"].(string)
	for range 2 {
		status, tok, _ := s.token(tokenForm(s.assertion(k, id, nil), "system/Observation.rs"))
		require.Equal(t, http.StatusOK, status, "%v", tok)
		require.Equal(t, "system/Observation.rs", tok["scope"])
	}
	require.Equal(t, 1, fetches, "the key set is cached")
}

// TestTokenEndpointRefusals: every bad request is a 400 or 401 with an RFC 6749 error code,
// never a 5xx, and never a token.
func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	es := newClientKey(t, "ES384")
	rs := newClientKey(t, "RS384")
	idA := s.register(gatewaytest.TenantA, es, "system/Observation.rs")
	idRS := s.register(gatewaytest.TenantA, rs, "system/Observation.rs")
	other := newClientKey(t, "ES384")
	idB := s.register(gatewaytest.TenantB, other, "system/Observation.rs")

	// Wrong algorithms: RS256 and PS384 with the registered RSA key, ES256 with a P-256 key
	// of the same kid, HS256 keyed with the public key, and none.
	rs256 := rs
	rs256.method = jwt.SigningMethodRS256
	ps384 := rs
	ps384.method = jwt.SigningMethodPS384
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	es256 := clientKey{kid: es.kid, alg: "ES256", method: jwt.SigningMethodES256, priv: p256}
	hsTok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": idRS, "sub": idRS, "aud": s.tokenURL,
		"exp": time.Now().Add(time.Minute).Unix(), "jti": uuid.NewString()})
	hsTok.Header["kid"] = rs.kid
	hsSigned, err := hsTok.SignedString([]byte(mustJSON(t, rs.priv.Public())))
	require.NoError(t, err)
	noneSigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": idA, "sub": idA, "aud": s.tokenURL,
		"exp": time.Now().Add(time.Minute).Unix(), "jti": uuid.NewString()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	replayed := s.assertion(es, idA, nil)
	status, body, _ := s.token(tokenForm(replayed, "system/Observation.rs"))
	require.Equal(t, http.StatusOK, status, "%v", body)

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong alg RS256", tokenForm(s.assertion(rs256, idRS, nil), "system/Observation.rs"), 401, "invalid_client"},
		{"wrong alg PS384", tokenForm(s.assertion(ps384, idRS, nil), "system/Observation.rs"), 401, "invalid_client"},
		{"wrong alg ES256", tokenForm(s.assertion(es256, idA, nil), "system/Observation.rs"), 401, "invalid_client"},
		{"wrong alg HS256", tokenForm(hsSigned, "system/Observation.rs"), 401, "invalid_client"},
		{"alg none", tokenForm(noneSigned, "system/Observation.rs"), 401, "invalid_client"},
		{"expired", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), "system/Observation.rs"), 401, "invalid_client"},
		{"exp too far ahead", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }), "system/Observation.rs"), 401, "invalid_client"},
		{"no exp", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { delete(c, "exp") }), "system/Observation.rs"), 401, "invalid_client"},
		{"aud mismatch", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { c["aud"] = s.base + "/fhir" }), "system/Observation.rs"), 401, "invalid_client"},
		{"replayed jti", tokenForm(replayed, "system/Observation.rs"), 401, "invalid_client"},
		{"no jti", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { delete(c, "jti") }), "system/Observation.rs"), 401, "invalid_client"},
		{"iss is not sub", tokenForm(s.assertion(es, idA, func(c jwt.MapClaims) { c["sub"] = "someone-else" }), "system/Observation.rs"), 401, "invalid_client"},
		{"unknown client", tokenForm(s.assertion(es, "no-such-client", nil), "system/Observation.rs"), 401, "invalid_client"},
		{"other tenant's client id, this client's key", tokenForm(s.assertion(es, idB, nil), "system/Observation.rs"), 401, "invalid_client"},
		{"another client's key", tokenForm(s.assertion(other, idA, nil), "system/Observation.rs"), 401, "invalid_client"},
		{"client_id parameter mismatch", func() url.Values {
			f := tokenForm(s.assertion(es, idA, nil), "system/Observation.rs")
			f.Set("client_id", idB)
			return f
		}(), 401, "invalid_client"},
		{"garbage assertion", tokenForm("not.a.jwt", "system/Observation.rs"), 401, "invalid_client"},
		{"scope not registered", tokenForm(s.assertion(es, idA, nil), "system/Patient.rs"), 400, "invalid_scope"},
		{"only user scopes", tokenForm(s.assertion(es, idA, nil), "user/Observation.rs"), 400, "invalid_scope"},
		{"no scope", tokenForm(s.assertion(es, idA, nil), ""), 400, "invalid_request"},
		{"grant type", func() url.Values {
			f := tokenForm(s.assertion(es, idA, nil), "system/Observation.rs")
			f.Set("grant_type", "authorization_code")
			return f
		}(), 400, "unsupported_grant_type"},
		{"no grant type", url.Values{}, 400, "invalid_request"},
		{"assertion type", func() url.Values {
			f := tokenForm(s.assertion(es, idA, nil), "system/Observation.rs")
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}(), 401, "invalid_client"},
		{"repeated parameter", func() url.Values {
			f := tokenForm(s.assertion(es, idA, nil), "system/Observation.rs")
			f.Add("scope", "system/Patient.rs")
			return f
		}(), 400, "invalid_request"},
	}
	// Each refusal for its own reason, not another check's.
	reasons := map[string]string{
		"wrong alg": "bad signature or algorithm", "alg none": "bad signature or algorithm", "expired": "expired",
		"exp too far ahead": "more than five minutes", "no exp": "exp is missing", "aud mismatch": "aud must be the token endpoint",
		"replayed jti": "already used", "no jti": "needs a jti", "iss is not sub": "iss and sub", "unknown client": "unknown or disabled",
		"other tenant's": "no registered key", "another client's key": "no registered key", "client_id parameter": "client_id does not match",
		"garbage": "not a signed JWT", "scope not registered": "none of the requested", "only user": "none of the requested",
		"no scope": "scope is missing", "grant type": "only client_credentials", "no grant type": "grant_type is missing",
		"assertion type": "client_assertion_type must be", "repeated": "repeated",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := s.token(tc.form)
			require.Equal(t, tc.status, status, "%v", body)
			require.Equal(t, tc.code, body["error"], "%v", body)
			require.NotContains(t, body, "access_token")
			matched := false
			for prefix, reason := range reasons {
				if strings.HasPrefix(tc.name, prefix) && strings.Contains(body["error_description"].(string), reason) {
					matched = true
				}
			}
			require.True(t, matched, "refused for another reason: %v", body["error_description"])
		})
	}

	// A JSON body, a query-string request and a disabled client are refused too.
	status, body, _ = s.do(http.MethodPost, "/auth/token", "", "application/json", strings.NewReader(`{"grant_type":"client_credentials"}`))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_request", body["error"])
	status, body, _ = s.do(http.MethodPost, "/auth/token?"+tokenForm(s.assertion(es, idA, nil), "system/Observation.rs").Encode(), "", "application/x-www-form-urlencoded", nil)
	require.Equal(t, http.StatusBadRequest, status, "parameters in the URL are not read: %v", body)
	status, m, _ := s.do(http.MethodPut, "/admin/clients/"+idA, s.adminToken(gatewaytest.TenantA), "application/json",
		strings.NewReader(`{"jwks":`+string(es.jwks(t))+`,"scopes":["system/Observation.rs"],"enabled":false}`))
	require.Equal(t, http.StatusOK, status, "%v", m)
	status, body, _ = s.token(tokenForm(s.assertion(es, idA, nil), "system/Observation.rs"))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_client", body["error"])
}

// TestClientsAreConfinedToTheirTenant: a tenant's admin cannot see, change or delete another
// tenant's client, and a client's token reads its own tenant's data only.
func TestClientsAreConfinedToTheirTenant(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	k := newClientKey(t, "ES384")
	idA := s.register(gatewaytest.TenantA, k, "system/Patient.rs")
	adminB := s.adminToken(gatewaytest.TenantB)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		body := io.Reader(nil)
		if method == http.MethodPut {
			body = strings.NewReader(`{"jwks":` + string(k.jwks(t)) + `,"scopes":["system/*.cruds"]}`)
		}
		status, m, _ := s.do(method, "/admin/clients/"+idA, adminB, "application/json", body)
		require.Equal(t, http.StatusNotFound, status, "%s: %v", method, m)
	}
	status, list, _ := s.do(http.MethodGet, "/admin/clients", adminB, "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, list["clients"])

	// Tenant B's patient is invisible to tenant A's client.
	status, _, _ = s.do(http.MethodPost, "/fhir/Patient", adminB, "application/fhir+json", strings.NewReader(gatewaytest.Patient(gatewaytest.MRN, "b-1")))
	require.Equal(t, http.StatusCreated, status)
	status, tok, _ := s.token(tokenForm(s.assertion(k, idA, nil), "system/Patient.rs"))
	require.Equal(t, http.StatusOK, status, "%v", tok)
	status, bundle, _ := s.do(http.MethodGet, "/fhir/Patient?identifier="+url.QueryEscape(gatewaytest.MRN+"|b-1"), tok["access_token"].(string), "", nil)
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 0, bundle["total"])
}

func TestClientRegistrationValidation(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	admin := s.adminToken(gatewaytest.TenantA)
	es := newClientKey(t, "ES384")
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	weak, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p256.Public(), KeyID: "p256"}}})
	require.NoError(t, err)
	jwks := string(es.jwks(t))
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"no keys", `{"scopes":["system/*.rs"]}`, 422, "jwks"},
		{"both", `{"jwks":` + jwks + `,"jwksUrl":"https://example.org/jwks","scopes":["system/*.rs"]}`, 422, "not both"},
		{"http url", `{"jwksUrl":"http://example.org/jwks","scopes":["system/*.rs"]}`, 422, "https"},
		{"P-256 only", `{"jwks":` + string(weak) + `,"scopes":["system/*.rs"]}`, 422, "RS384 or ES384"},
		{"user scope", `{"jwks":` + jwks + `,"scopes":["user/Patient.rs"]}`, 422, "user/Patient.rs"},
		{"no scope", `{"jwks":` + jwks + `,"scopes":[]}`, 422, "scope"},
		{"client id chosen", `{"clientId":"mine","jwks":` + jwks + `,"scopes":["system/*.rs"]}`, 400, "assigned by the server"},
		{"unknown field", `{"jwks":` + jwks + `,"scopes":["system/*.rs"],"secret":"x"}`, 400, "unknown fields"},
		{"not json", `{"jwks":`, 400, "JSON object"},
		{"jwks not a set", `{"jwks":{"kty":"EC"},"scopes":["system/*.rs"]}`, 400, "JSON Web Key Set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, m, _ := s.do(http.MethodPost, "/admin/clients", admin, "application/json", strings.NewReader(tc.body))
			require.Equal(t, tc.status, status, "%v", m)
			require.Contains(t, mustJSON(t, m), tc.want)
		})
	}
	status, _, _ := s.do(http.MethodGet, "/admin/clients", s.hsToken(gatewaytest.TenantA, "system/*.cruds"), "", nil)
	require.Equal(t, http.StatusForbidden, status, "registering clients needs the admin scope")
}

func (s *setup) hsToken(tenant, scope string) string {
	s.t.Helper()
	tok, err := s.hs.Issue("c", tenant, scope, time.Hour)
	require.NoError(s.t, err)
	return tok
}

// TestDiscoveryAndCapabilityStatement: the SMART configuration (at the root and under the
// FHIR base) and the CapabilityStatement name the token endpoint.
func TestDiscoveryAndCapabilityStatement(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for _, path := range []string{"/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"} {
		status, m, _ := s.do(http.MethodGet, path, "", "", nil)
		require.Equal(t, http.StatusOK, status, path)
		require.Equal(t, s.tokenURL, m["token_endpoint"])
		require.Equal(t, []any{"client_credentials"}, m["grant_types_supported"])
		require.Equal(t, []any{"private_key_jwt"}, m["token_endpoint_auth_methods_supported"])
		require.Equal(t, []any{"RS384", "ES384"}, m["token_endpoint_auth_signing_alg_values_supported"])
		require.Contains(t, m["capabilities"], "client-confidential-asymmetric")
		require.Contains(t, m["capabilities"], "permission-v2")
		require.Contains(t, m["scopes_supported"], "system/*.rs")
		require.Equal(t, s.base+"/.well-known/jwks.json", m["jwks_uri"])
	}
	status, cs, _ := s.do(http.MethodGet, "/fhir/metadata", "", "", nil)
	require.Equal(t, http.StatusOK, status)
	rest := cs["rest"].([]any)[0].(map[string]any)
	require.Contains(t, mustJSON(t, rest["security"]), `"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"`)
	require.Contains(t, mustJSON(t, rest["security"]), `{"url":"token","valueUri":"`+s.tokenURL+`"}`)
}

// TestForgedServiceTokensRefused: a token claiming this service as issuer but signed by
// another key, or signed by the ring for another audience, is refused by the bearer check.
func TestForgedServiceTokensRefused(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	claims := auth.AccessClaims{Tenant: gatewaytest.TenantA, Scope: "system/*.cruds", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.base, Subject: "x", Audience: jwt.ClaimStrings{s.base + "/fhir"},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)),
	}}
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	forged.Header["kid"] = s.ring.Signer()
	signed, err := forged.SignedString(forger)
	require.NoError(t, err)
	status, _, hdr := s.do(http.MethodGet, "/fhir/Patient", signed, "", nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, hdr.Get("WWW-Authenticate"), "invalid_token")

	claims.Audience = jwt.ClaimStrings{"https://elsewhere.example/fhir"}
	other, err := s.ring.Sign(claims)
	require.NoError(t, err)
	status, _, _ = s.do(http.MethodGet, "/fhir/Patient", other, "", nil)
	require.Equal(t, http.StatusUnauthorized, status)

	claims.Audience = jwt.ClaimStrings{s.base + "/fhir"}
	good, err := s.ring.Sign(claims)
	require.NoError(t, err)
	status, _, _ = s.do(http.MethodGet, "/fhir/Patient", good, "", nil)
	require.Equal(t, http.StatusOK, status)
}

// Every token issued, and every refusal of a registered client, is a User Authentication
// (DICOM 110114, Login) AuditEvent of the client's tenant; a request naming no registered
// client has no tenant to record it for.
func TestTokenRequestsAreAudited(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	k := newClientKey(t, "ES384")
	id := s.register(gatewaytest.TenantA, k, "system/Observation.rs")
	status, body, _ := s.token(tokenForm(s.assertion(k, id, nil), "system/Observation.rs"))
	require.Equal(t, http.StatusOK, status, "%v", body)
	status, _, _ = s.token(tokenForm(s.assertion(k, id, func(c jwt.MapClaims) { c["aud"] = "https://elsewhere" }), "system/Observation.rs"))
	require.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = s.token(tokenForm(s.assertion(k, id, nil), "system/Patient.rs"))
	require.Equal(t, http.StatusBadRequest, status)
	status, _, _ = s.token(tokenForm(s.assertion(k, "no-such-client", nil), "system/Observation.rs"))
	require.Equal(t, http.StatusUnauthorized, status)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.audit.Close(ctx)) // drained: every record is written
	rows, err := s.pool.Query(context.Background(), `SELECT tenant_id, agent, outcome, http_status, event::text FROM audit_events
		WHERE type_code = '110114' ORDER BY recorded`)
	require.NoError(t, err)
	defer rows.Close()
	type login struct {
		tenant, agent   string
		outcome, status int
	}
	var got []login
	for rows.Next() {
		var l login
		var event string
		require.NoError(t, rows.Scan(&l.tenant, &l.agent, &l.outcome, &l.status, &event))
		require.Contains(t, event, `"code": "110122"`, "subtype Login")
		require.NotContains(t, event, "eyJ", "no token or assertion in the record")
		got = append(got, l)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []login{
		{gatewaytest.TenantA, id, 0, 200},
		{gatewaytest.TenantA, id, 4, 401},
		{gatewaytest.TenantA, id, 4, 400},
	}, got)
	var registrations int
	require.NoError(t, s.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit_events WHERE action = 'C' AND entity_refs @> ARRAY['AuthClient/' || $1::text]`, id).Scan(&registrations))
	require.Equal(t, 1, registrations, "the client's registration (POST /admin/clients) is recorded with its id")
}
