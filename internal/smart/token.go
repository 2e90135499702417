package smart

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
)

// The protocol's fixed values.
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" //nolint:gosec // G101: RFC 7523's type name, not a credential
	// DefaultTokenTTL is the access tokens' lifetime, the SMART backend services maximum.
	DefaultTokenTTL = 5 * time.Minute
	// MaxAssertionLifetime is how far ahead a client assertion's exp may be (the IG: "no more
	// than five minutes in the future").
	MaxAssertionLifetime = 5 * time.Minute
	// leeway is the clock skew allowed on the assertion's times.
	leeway = 30 * time.Second
)

// AssertionAlgorithms are the signature algorithms a client assertion may use: the two the IG
// requires servers to support.
var AssertionAlgorithms = []string{"RS384", "ES384"}

// Error is a refusal of the token endpoint, answered as RFC 6749 §5.2 says: {"error": Code,
// "error_description": Description} with Status.
type Error struct {
	Status      int
	Code        string
	Description string
	// ClientID and TenantID name the registered client refused, when the request named one
	// that exists (for the audit trail); "" otherwise.
	ClientID, TenantID string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, args...)}
}

func invalidClient(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_client", Description: fmt.Sprintf(format, args...)}
}

// TokenResponse is a successful token response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	// ClientID and TenantID are the client the token was issued to (for the audit trail; not
	// part of the response).
	ClientID string `json:"-"`
	TenantID string `json:"-"`
}

// Server is the token endpoint's logic.
type Server struct {
	Pool *db.Pool
	Keys *KeyRing
	// TokenURL is the token endpoint's public URL: the aud every client assertion must carry.
	TokenURL string
	// Issuer and Audience are the iss and aud of the access tokens (the gateway's base URL and
	// its FHIR base); the gateway's IssuedVerifier checks the same.
	Issuer, Audience string
	// TokenTTL is the access tokens' lifetime; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// ClientKeys fetches and caches the key sets registered by URL.
	ClientKeys *ClientKeys
	Now        func() time.Time
	Logger     *slog.Logger
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Token answers a token request (the form of POST /auth/token). A refusal is an *Error; any
// other error is the service's own failure (the database), a 5xx.
func (s *Server) Token(ctx context.Context, form url.Values) (TokenResponse, error) {
	for _, k := range []string{"grant_type", "client_assertion_type", "client_assertion", "scope", "client_id"} {
		if len(form[k]) > 1 {
			return TokenResponse{}, invalidRequest("parameter %s is repeated", k)
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantClientCredentials:
	case "":
		return TokenResponse{}, invalidRequest("grant_type is missing: want client_credentials")
	default:
		return TokenResponse{}, &Error{Status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: "only client_credentials is supported"}
	}
	switch form.Get("client_assertion_type") {
	case AssertionTypeJWTBearer:
	case "":
		return TokenResponse{}, invalidClient("client_assertion_type is missing: want %s (private_key_jwt)", AssertionTypeJWTBearer)
	default:
		return TokenResponse{}, invalidClient("client_assertion_type must be %s (private_key_jwt)", AssertionTypeJWTBearer)
	}
	assertion := form.Get("client_assertion")
	if assertion == "" {
		return TokenResponse{}, invalidClient("client_assertion is missing")
	}
	if len(assertion) > 16<<10 {
		return TokenResponse{}, invalidClient("client_assertion is too large")
	}
	requested := auth.ParseScopes(form.Get("scope"))
	if len(requested) == 0 {
		return TokenResponse{}, invalidRequest("scope is missing: ask for SMART system scopes, e.g. system/Observation.rs")
	}

	client, claims, err := s.authenticate(ctx, assertion, form.Get("client_id"))
	if err != nil {
		return TokenResponse{}, refusedClient(err, client)
	}
	granted := auth.GrantScopes(requested, auth.Scopes(client.Scopes))
	if len(granted) == 0 {
		return TokenResponse{}, refusedClient(&Error{Status: http.StatusBadRequest, Code: "invalid_scope",
			Description: "none of the requested scopes is registered for this client"}, client)
	}
	// The assertion is spent only now that everything else holds: a refused request may be
	// corrected and retried with the same assertion.
	n, err := db.New(s.Pool).AuthAssertionUse(ctx, db.AuthAssertionUseParams{
		ClientID: client.ClientID, Jti: claims.ID, ExpiresAt: claims.ExpiresAt.Add(leeway),
	})
	if err != nil {
		return TokenResponse{}, fmt.Errorf("record client assertion: %w", err)
	}
	if n == 0 {
		return TokenResponse{}, refusedClient(invalidClient("client_assertion jti was already used: sign a new assertion with a fresh jti for every request"), client)
	}
	ttl := s.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	now := s.now()
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return TokenResponse{}, fmt.Errorf("token id: %w", err)
	}
	token, err := s.Keys.Sign(auth.AccessClaims{
		Tenant: client.TenantID, Scope: strings.Join(granted, " "), ClientID: client.ClientID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.Issuer, Subject: client.ClientID, Audience: jwt.ClaimStrings{s.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID: base64.RawURLEncoding.EncodeToString(jti),
		},
	})
	if err != nil {
		return TokenResponse{}, fmt.Errorf("sign access token: %w", err)
	}
	s.logger().Info("smart: access token issued", "client_id", client.ClientID, "tenant_id", client.TenantID,
		"scope", strings.Join(granted, " "))
	return TokenResponse{AccessToken: token, TokenType: "bearer", ExpiresIn: int(ttl / time.Second), Scope: strings.Join(granted, " "),
		ClientID: client.ClientID, TenantID: client.TenantID}, nil
}

// refusedClient names the registered client in a refusal of it.
func refusedClient(err error, client db.AuthClient) error {
	var e *Error
	if client.ClientID != "" && errors.As(err, &e) {
		e.ClientID, e.TenantID = client.ClientID, client.TenantID
	}
	return err
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// authenticate verifies the client assertion (RFC 7523 §3, the IG's authentication JWT) and
// returns its registered client: signed RS384/ES384 by a key of the client's JWKS, iss = sub
// = a registered, enabled client_id (and the client_id parameter, when sent), aud = the token
// URL, exp no more than five minutes ahead, a jti.
func (s *Server) authenticate(ctx context.Context, assertion, clientIDParam string) (db.AuthClient, jwt.RegisteredClaims, error) {
	var claims jwt.RegisteredClaims
	var client db.AuthClient
	now := s.now()
	parser := jwt.NewParser(
		jwt.WithValidMethods(AssertionAlgorithms),
		jwt.WithAudience(s.TokenURL),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(s.now),
	)
	var lookupErr error
	_, err := parser.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		c, _ := t.Claims.(*jwt.RegisteredClaims)
		if c.Issuer == "" || c.Issuer != c.Subject {
			lookupErr = invalidClient("client_assertion iss and sub must both be the client_id")
			return nil, lookupErr
		}
		if clientIDParam != "" && clientIDParam != c.Issuer {
			lookupErr = invalidClient("client_id does not match the client_assertion's iss")
			return nil, lookupErr
		}
		row, err := db.New(s.Pool).AuthClientByID(ctx, c.Issuer)
		if errors.Is(err, db.ErrNotFound) || err == nil && !row.Enabled {
			lookupErr = invalidClient("unknown or disabled client")
			return nil, lookupErr
		}
		if err != nil {
			lookupErr = fmt.Errorf("look up client: %w", err)
			return nil, lookupErr
		}
		client = row
		keys, err := s.ClientKeys.For(ctx, row)
		if err != nil {
			lookupErr = invalidClient("the client's key set cannot be read: %v", err)
			return nil, lookupErr
		}
		return keys(t)
	})
	if lookupErr != nil {
		var e *Error
		if errors.As(lookupErr, &e) {
			s.logger().Info("smart: client assertion refused", "reason", e.Description)
		}
		return client, claims, lookupErr
	}
	if err != nil {
		s.logger().Info("smart: client assertion refused", "client_id", client.ClientID, "error", err)
		return client, claims, invalidClient("client_assertion refused: %s", assertionProblem(err))
	}
	if claims.ExpiresAt.Sub(now) > MaxAssertionLifetime+leeway {
		return client, claims, invalidClient("client_assertion exp is more than five minutes ahead")
	}
	if claims.ID == "" || len(claims.ID) > 255 {
		return client, claims, invalidClient("client_assertion needs a jti (at most 255 characters)")
	}
	return client, claims, nil
}

// assertionProblem words a verification failure for the client without echoing its input.
func assertionProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "not a signed JWT"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm (RS384 or ES384 with a key of the registered JWKS)"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no registered key verifies it (kid and algorithm: RS384 or ES384)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "exp is missing"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud must be the token endpoint URL"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	}
	return "invalid"
}

// Run keeps the key ring current (another replica's rotation, this one's when due) and
// forgets the ids of expired client assertions, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.Keys.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
				s.logger().Warn("smart: reload signing keys; keeping the loaded ones", "error", err)
			}
			if _, err := db.New(s.Pool).AuthAssertionPrune(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.logger().Warn("smart: prune expired client assertion ids", "error", err)
			}
		}
	}
}
