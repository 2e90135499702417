package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of tokens this service signs.
const Issuer = "interop"

// Claims are the bearer token's claims: the caller's tenant and its scopes.
type Claims struct {
	Tenant string `json:"tenant"`
	Scope  string `json:"scope"`
	jwt.RegisteredClaims
}

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Tenant  string
	Scopes  Scopes
}

// ErrInvalidToken is wrapped by every verification failure; the reason stays in the message
// for logs, never in responses.
var ErrInvalidToken = errors.New("invalid bearer token")

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidTenant reports whether s is a well-formed tenant id.
func ValidTenant(s string) bool { return tenantRE.MatchString(s) }

// HS256 signs and verifies tokens with one shared secret (dev and tests; production verifies
// an external issuer's keys).
type HS256 struct {
	Secret []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issue signs a token for tenant with the given space-separated scopes, valid for ttl.
func (h HS256) Issue(subject, tenant, scope string, ttl time.Duration) (string, error) {
	if !ValidTenant(tenant) {
		return "", fmt.Errorf("tenant %q: want 1-64 letters, digits, '.', '_' or '-'", tenant)
	}
	if ttl <= 0 {
		return "", errors.New("token ttl must be positive")
	}
	now := h.now()
	claims := Claims{
		Tenant: tenant,
		Scope:  strings.Join(strings.Fields(scope), " "),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: subject,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.Secret)
}

// Verify checks a token's signature, algorithm, issuer and times and returns its principal.
func (h HS256) Verify(token string) (Principal, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return h.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(h.now),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !ValidTenant(claims.Tenant) {
		return Principal{}, fmt.Errorf("%w: no valid tenant claim", ErrInvalidToken)
	}
	return Principal{Subject: claims.Subject, Tenant: claims.Tenant, Scopes: ParseScopes(claims.Scope)}, nil
}

func (h HS256) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// DevSecret returns the signing secret kept in dataDir, creating it on first use, so that
// `interop dev` and `interop token` agree without configuration.
func DevSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "dev-jwt-secret")
	if b, err := os.ReadFile(path); err == nil { //nolint:gosec // G304: the operator's data directory
		secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(secret) < 32 {
			return nil, fmt.Errorf("dev signing secret %s is malformed; delete it to make a new one", path)
		}
		return secret, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read dev signing secret: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate dev signing secret: %w", err)
	}
	// O_EXCL: when two processes race on first start, one wins and the other reads its key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the operator's data directory
	if errors.Is(err, os.ErrExist) {
		return DevSecret(dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("create dev signing secret: %w", err)
	}
	// Close's error is the write's (a full disk shows up there): unchecked, a truncated
	// secret would be read back as malformed on the next start.
	_, err = f.WriteString(hex.EncodeToString(secret) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write dev signing secret: %w", err)
	}
	return secret, nil
}
