package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultAlgorithms are the signing algorithms a JWKS verifier accepts unless told otherwise:
// RSA (PKCS#1 v1.5 and PSS) and ECDSA. Never HMAC and never "none": the keys are public.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// Defaults of JWKSConfig.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultCacheTTL           = 15 * time.Minute
	DefaultMinRefreshInterval = time.Minute
	// maxJWKSBytes bounds the key set document.
	maxJWKSBytes = 1 << 20
	// minRSABits refuses keys too weak to trust.
	minRSABits = 2048
)

// JWKSConfig configures a JWKS verifier: tokens of an external issuer (an OpenID provider, a
// SMART authorization server) signed with the keys it publishes at URL.
type JWKSConfig struct {
	// URL of the JSON Web Key Set: https, or http on a loopback address (tests, sidecars).
	URL string
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be among the token's aud claim.
	Audience string
	// Algorithms accepted; nil means DefaultAlgorithms. Only RS*, PS* and ES* may be named.
	Algorithms []string
	// HTTP fetches the key set; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 means DefaultLeeway.
	Leeway time.Duration
	// CacheTTL is how long fetched keys are used before a background refresh; 0 means
	// DefaultCacheTTL. A failed refresh keeps the keys it has.
	CacheTTL time.Duration
	// MinRefreshInterval rate-limits fetches: a token with an unknown kid (a rotated key)
	// triggers a refresh at most this often, so that forged kids cannot hammer the issuer;
	// 0 means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger reports fetch failures and skipped keys; nil means slog.Default().
	Logger *slog.Logger
}

// JWKS verifies bearer tokens with the public keys of a JWKS URL, cached and refreshed: in the
// background once older than CacheTTL, and at once (rate-limited) when a token names a key id
// it does not know, which is how a key rotation arrives. Safe for concurrent use.
type JWKS struct {
	cfg    JWKSConfig
	parser *jwt.Parser

	mu      sync.RWMutex
	keys    []jwk
	fetched time.Time

	fetchMu     sync.Mutex // serialises fetches; guards lastAttempt
	lastAttempt time.Time
	refreshing  atomic.Bool
}

// jwk is one usable verification key of the set.
type jwk struct {
	kid string
	alg string // "" when the set does not restrict the key to one algorithm
	key crypto.PublicKey
}

// errRateLimited is returned by refresh when the last fetch was too recent.
var errRateLimited = errors.New("jwks refresh rate-limited")

// NewJWKS checks cfg and fetches the key set once, so that a wrong URL or an unreachable
// issuer is an error at start, not a 401 for every request.
func NewJWKS(ctx context.Context, cfg JWKSConfig) (*JWKS, error) {
	if err := checkFetchURL("jwks url", cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms, alg) {
			return nil, fmt.Errorf("jwks: algorithm %q is not accepted (only %s)", alg, strings.Join(DefaultAlgorithms, ", "))
		}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	j := &JWKS{cfg: cfg, parser: jwt.NewParser(opts...)}
	if err := j.refresh(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// checkFetchURL wants an absolute https URL, or http on a loopback host: keys (or the document
// naming them) fetched in clear text over a network could be replaced by anyone on the path.
func checkFetchURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q: want an absolute https URL", what, s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.") {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want https (http only on a loopback address)", what, s)
}

// jwksClaims are the claims read from an external issuer's tokens. scope may also arrive as
// the array claim scp, as some issuers send it.
type jwksClaims struct {
	Tenant string     `json:"tenant"`
	Scope  scopeClaim `json:"scope"`
	Scp    scopeClaim `json:"scp"`
	jwt.RegisteredClaims
}

// scopeClaim is a space-separated string or an array of strings.
type scopeClaim []string

func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strings.Fields(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("scope must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Verify checks a token's signature against the issuer's keys, its algorithm, exp (required),
// nbf, iat, and iss and aud when configured, and returns its principal.
func (j *JWKS) Verify(token string) (Principal, error) {
	var claims jwksClaims
	if err := j.Parse(token, &claims); err != nil {
		return Principal{}, err
	}
	if !ValidTenant(claims.Tenant) {
		return Principal{}, fmt.Errorf("%w: no valid tenant claim", ErrInvalidToken)
	}
	scopes := append(Scopes(claims.Scope), claims.Scp...)
	return Principal{Subject: claims.Subject, Tenant: claims.Tenant, Scopes: scopes}, nil
}

// Parse checks a token as Verify does (signature by the issuer's keys, algorithm, exp, nbf,
// iat, and iss and aud when configured) and decodes its claims into claims: for tokens that
// carry other claims than a tenant and scopes, such as an OpenID provider's ID tokens. Every
// refusal wraps ErrInvalidToken.
func (j *JWKS) Parse(token string, claims jwt.Claims) error {
	j.refreshIfStale()
	if _, err := j.parser.ParseWithClaims(token, claims, j.keyFor); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return nil
}

// keyFor is the jwt.Keyfunc: the key named by the token's kid (refreshing the set once if the
// kid is unknown), which must suit the token's algorithm. A token without kid is accepted only
// when exactly one key of the set suits its algorithm.
func (j *JWKS) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	if key, err := j.lookup(kid, alg); err == nil || kid == "" {
		return key, err
	}
	if err := j.refresh(context.Background()); err != nil && !errors.Is(err, errRateLimited) {
		j.cfg.Logger.Warn("jwks refresh for an unknown key id failed", "kid", kid, "error", err)
	}
	return j.lookup(kid, alg)
}

func (j *JWKS) lookup(kid, alg string) (crypto.PublicKey, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return lookupKey(j.keys, kid, alg)
}

// Keyfunc is the jwt.Keyfunc of the issuer's keys (refreshed as Verify refreshes them), for
// callers that verify other claims than Verify's: a SMART client's assertion.
func (j *JWKS) Keyfunc(t *jwt.Token) (any, error) {
	j.refreshIfStale()
	return j.keyFor(t)
}

// KeySet is a JSON Web Key Set given by value: its usable signature keys.
type KeySet struct {
	keys []jwk
}

// ParseJWKS reads the signature keys of a JSON Web Key Set document. Keys it cannot use
// (symmetric, encryption keys, unknown types, RSA under 2048 bits) are skipped with a reason;
// a set without a usable key is an error.
func ParseJWKS(body []byte) (*KeySet, []string, error) {
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, skipped, err
	}
	return &KeySet{keys: keys}, skipped, nil
}

// Keyfunc is the jwt.Keyfunc of the set: the key named by kid, or the only key suiting the
// token's algorithm when it names none.
func (s *KeySet) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	return lookupKey(s.keys, kid, t.Method.Alg())
}

// Suits reports whether some key of the set can verify a signature of alg.
func (s *KeySet) Suits(alg string) bool {
	for _, k := range s.keys {
		if suits(k, alg) {
			return true
		}
	}
	return false
}

func lookupKey(keys []jwk, kid, alg string) (crypto.PublicKey, error) {
	var found []crypto.PublicKey
	for _, k := range keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if suits(k, alg) {
			found = append(found, k.key)
		} else if kid != "" {
			return nil, fmt.Errorf("key %q does not suit algorithm %s", kid, alg)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case kid == "" && len(found) > 1:
		return nil, fmt.Errorf("token has no kid and %d keys suit %s", len(found), alg)
	case kid == "":
		return nil, fmt.Errorf("token has no kid and no key suits %s", alg)
	case len(found) > 1:
		return nil, fmt.Errorf("key id %q names %d keys", kid, len(found))
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

// suits reports whether k may verify a signature of alg: the key's type and curve must match,
// and its own alg, if the set names one, must be alg.
func suits(k jwk, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	}
	return false
}

// refreshIfStale starts one background refresh when the keys are older than CacheTTL; the
// request goes on with the keys it has.
func (j *JWKS) refreshIfStale() {
	j.mu.RLock()
	stale := j.cfg.Now().Sub(j.fetched) > j.cfg.CacheTTL
	j.mu.RUnlock()
	if !stale || !j.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer j.refreshing.Store(false)
		if err := j.refresh(context.Background()); err != nil && !errors.Is(err, errRateLimited) {
			j.cfg.Logger.Warn("jwks refresh failed; keeping the keys fetched before", "error", err)
		}
	}()
}

// refresh fetches the key set unless a fetch was attempted less than MinRefreshInterval ago.
// Concurrent callers wait for one fetch and then find it too recent to repeat.
func (j *JWKS) refresh(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	now := j.cfg.Now()
	if !j.lastAttempt.IsZero() && now.Sub(j.lastAttempt) < j.cfg.MinRefreshInterval {
		return errRateLimited
	}
	j.lastAttempt = now
	keys, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.keys, j.fetched = keys, now
	j.mu.Unlock()
	return nil
}

func (j *JWKS) fetch(ctx context.Context) ([]jwk, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.cfg.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks %s: %w", j.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks %s: status %d", j.cfg.URL, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt != "application/json" && mt != "application/jwk-set+json" {
			return nil, fmt.Errorf("fetch jwks %s: content type %s is not JSON", j.cfg.URL, mt)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks %s: %w", j.cfg.URL, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks %s is larger than %d bytes", j.cfg.URL, maxJWKSBytes)
	}
	keys, skipped, err := parseJWKS(body)
	for _, s := range skipped {
		j.cfg.Logger.Warn("jwks key skipped", "url", j.cfg.URL, "reason", s)
	}
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", j.cfg.URL, err)
	}
	return keys, nil
}

// parseJWKS reads the signature keys of a key set. Keys it cannot use (symmetric, encryption
// keys, unknown types, weak RSA, malformed) are skipped with a reason; a set with no usable
// key is an error.
func parseJWKS(body []byte) ([]jwk, []string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, errors.New("not a JSON Web Key Set")
	}
	var keys []jwk
	var skipped []string
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		name := fmt.Sprintf("key %d (kid %q)", i, k.KeyID)
		if k.Use != "" && k.Use != "sig" {
			skipped = append(skipped, name+": use is "+k.Use)
			continue
		}
		if !k.IsPublic() {
			k = k.Public() // a private key published by mistake: keep only its public half
		}
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < minRSABits {
				skipped = append(skipped, fmt.Sprintf("%s: RSA key of %d bits (at least %d)", name, key.N.BitLen(), minRSABits))
				continue
			}
		case *ecdsa.PublicKey:
		default:
			skipped = append(skipped, fmt.Sprintf("%s: key type %T cannot verify RS/PS/ES signatures", name, k.Key))
			continue
		}
		keys = append(keys, jwk{kid: k.KeyID, alg: k.Algorithm, key: k.Key})
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("no usable signature key")
	}
	return keys, skipped, nil
}
