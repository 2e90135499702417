package auth

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssuedAlgorithms are the algorithms of the access tokens this service signs itself (the
// SMART token endpoint's key ring).
var IssuedAlgorithms = []string{"ES256", "RS256"}

// PublicKeys finds the public key of one of the service's signing keys by kid; refreshing
// (another replica's new key) is the implementation's business.
type PublicKeys interface {
	PublicKey(kid string) (crypto.PublicKey, bool)
}

// AccessClaims are the claims of the access tokens the SMART token endpoint issues.
type AccessClaims struct {
	Tenant   string `json:"tenant"`
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	jwt.RegisteredClaims
}

// IssuedVerifier verifies the access tokens this service issued at its token endpoint: signed
// by a key of Keys (ES256/RS256, by kid), with iss Issuer and aud Audience.
type IssuedVerifier struct {
	Issuer, Audience string
	Keys             PublicKeys
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks the token's signature, algorithm, kid, iss, aud, exp (required), nbf and iat,
// and returns its principal: the client as subject, the client's tenant and granted scopes.
func (v IssuedVerifier) Verify(token string) (Principal, error) {
	now := v.Now
	if now == nil {
		now = time.Now
	}
	var claims AccessClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := v.Keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods(IssuedAlgorithms),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(DefaultLeeway),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !ValidTenant(claims.Tenant) {
		return Principal{}, fmt.Errorf("%w: no valid tenant claim", ErrInvalidToken)
	}
	return Principal{Subject: claims.Subject, Tenant: claims.Tenant, Scopes: ParseScopes(claims.Scope)}, nil
}

// Chain verifies the service's own access tokens (iss = Issued.Issuer) with Issued and every
// other token with Other (the HS256 tokens of `interop dev` and `interop token`, or an external
// issuer's JWKS). The issuer is read, unverified, only to choose the verifier: each verifier
// then checks the signature and the issuer itself, so a token cannot pick a laxer one.
type Chain struct {
	Issued IssuedVerifier
	Other  Verifier
}

// Verify verifies token with the verifier its issuer names.
func (c Chain) Verify(token string) (Principal, error) {
	if unverifiedIssuer(token) == c.Issued.Issuer {
		return c.Issued.Verify(token)
	}
	if c.Other == nil {
		return Principal{}, fmt.Errorf("%w: not issued by this service", ErrInvalidToken)
	}
	return c.Other.Verify(token)
}

// unverifiedIssuer is the iss claim of a JWS compact token, "" when it has none or is not one.
func unverifiedIssuer(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Iss
}
