package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// smartTokenRoundTrip checks the wiring of the SMART token endpoint in a running `interop
// dev` at base: discovery, a client registered with adminToken, a token for an ES384 client
// assertion, and that token accepted by /fhir (the verifier chain) within its scopes.
func smartTokenRoundTrip(t *testing.T, base, adminToken string) {
	t.Helper()
	var disc map[string]any
	require.NoError(t, json.Unmarshal([]byte(getJSON(t, base+"/fhir/.well-known/smart-configuration", "")), &disc))
	tokenURL := base + "/auth/token"
	require.Equal(t, tokenURL, disc["token_endpoint"])
	require.Contains(t, getJSON(t, base+"/fhir/metadata", ""), tokenURL)

	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	require.NoError(t, err)
	body := `{"name":"e2e","jwks":` + string(jwks) + `,"scopes":["system/Patient.rs"]}`
	status, reg := post(t, base+"/admin/clients", adminToken, "application/json", body)
	require.Equal(t, http.StatusCreated, status, reg)
	var client struct {
		ClientID string `json:"clientId"`
	}
	require.NoError(t, json.Unmarshal([]byte(reg), &client))

	a := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{
		"iss": client.ClientID, "sub": client.ClientID, "aud": tokenURL, "jti": uuid.NewString(),
		"exp": time.Now().Add(4 * time.Minute).Unix(),
	})
	a.Header["kid"] = "k1"
	assertion, err := a.SignedString(key)
	require.NoError(t, err)
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {assertion}, "scope": {"system/Patient.rs system/Observation.rs"}}
	status, tok := post(t, tokenURL, "", "application/x-www-form-urlencoded", form.Encode())
	require.Equal(t, http.StatusOK, status, tok)
	var resp struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	require.NoError(t, json.Unmarshal([]byte(tok), &resp))
	require.Equal(t, "system/Patient.rs", resp.Scope)
	require.Contains(t, getJSON(t, base+"/fhir/Patient?identifier="+url.QueryEscape("urn:id:test1|PATID1234"), resp.AccessToken), `"total":1`)
}

func post(t *testing.T, u, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
