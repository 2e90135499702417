package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// Verifier checks a bearer token and returns its principal. Every refusal wraps
// ErrInvalidToken.
type Verifier interface {
	Verify(token string) (Principal, error)
}

// VerifierConfig chooses how bearer tokens are verified: with an external issuer's published
// keys (RS256/ES256 and kin) when JWKSURL is set — production — else with the HS256 secret of
// `interop dev` and `interop token`. The two never mix: a JWKS verifier refuses HS256 tokens.
type VerifierConfig struct {
	// JWKSURL, Issuer and Audience configure the JWKS verifier (INTEROP_JWKS_URL,
	// INTEROP_JWT_ISSUER, INTEROP_JWT_AUDIENCE).
	JWKSURL  string
	Issuer   string
	Audience string
	// HS256 returns the HS256 verifier; it is called only without JWKSURL, so that a
	// production gateway never creates a development key.
	HS256 func() (HS256, error)
	// HTTP and Logger are passed to the JWKS verifier.
	HTTP   *http.Client
	Logger *slog.Logger
}

// NewVerifier builds the verifier c asks for. With JWKSURL it fetches the key set once (see
// NewJWKS).
func NewVerifier(ctx context.Context, c VerifierConfig) (Verifier, error) {
	if c.JWKSURL != "" {
		return NewJWKS(ctx, JWKSConfig{URL: c.JWKSURL, Issuer: c.Issuer, Audience: c.Audience, HTTP: c.HTTP, Logger: c.Logger})
	}
	if c.Issuer != "" || c.Audience != "" {
		return nil, errors.New("a JWT issuer or audience is configured without a JWKS URL: set INTEROP_JWKS_URL too, or neither")
	}
	if c.HS256 == nil {
		return nil, errors.New("no token verifier: set INTEROP_JWKS_URL, or give an HS256 secret")
	}
	return c.HS256()
}
