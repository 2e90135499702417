package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

const (
	testIssuer   = "https://idp.example/realms/nhp"
	testAudience = "interop-gateway"
)

// testKeys are generated once: RSA key generation is slow.
var testKeys = sync.OnceValue(func() struct {
	rsa1, rsa2 *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
	ec384      *ecdsa.PrivateKey
	weak       *rsa.PrivateKey
} {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	weak, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // a weak key the verifier must skip
	must(err)
	return struct {
		rsa1, rsa2 *rsa.PrivateKey
		ec         *ecdsa.PrivateKey
		ec384      *ecdsa.PrivateKey
		weak       *rsa.PrivateKey
	}{r1, r2, ec, ec384, weak}
})

// idp is a local JWKS endpoint whose key set a test can change, counting fetches.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int32
	status  atomic.Int32
}

func newIDP(t *testing.T, keys ...jose.JSONWebKey) *idp {
	t.Helper()
	p := &idp{keys: keys}
	p.status.Store(http.StatusOK)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.fetches.Add(1)
		if s := int(p.status.Load()); s != http.StatusOK {
			w.WriteHeader(s)
			return
		}
		p.mu.Lock()
		body, err := json.Marshal(jose.JSONWebKeySet{Keys: p.keys})
		p.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...jose.JSONWebKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func pub(kid, alg string, key any) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// goodClaims are valid claims at now.
func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": []string{testAudience, "other"}, "sub": "svc-lab",
		"tenant": "tenant-a", "scope": "system/Observation.rs interop/admin",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func signTok(t *testing.T, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

type jwksSetup struct {
	idp   *idp
	clock *clock
	v     *JWKS
}

func newJWKSSetup(t *testing.T, mod func(*JWKSConfig)) jwksSetup {
	t.Helper()
	k := testKeys()
	p := newIDP(t,
		pub("rsa-1", "RS256", &k.rsa1.PublicKey),
		pub("ec-1", "ES256", &k.ec.PublicKey),
		jose.JSONWebKey{Key: []byte("a-symmetric-key-in-a-public-set!"), KeyID: "oct-1", Algorithm: "HS256"},
		pub("weak", "RS256", &k.weak.PublicKey),
		jose.JSONWebKey{Key: &k.rsa2.PublicKey, KeyID: "enc-1", Use: "enc"},
	)
	c := &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	cfg := JWKSConfig{URL: p.srv.URL + "/jwks", Issuer: testIssuer, Audience: testAudience, Now: c.Now,
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewJWKS(context.Background(), cfg)
	require.NoError(t, err)
	return jwksSetup{idp: p, clock: c, v: v}
}

func TestJWKSAcceptsRS256AndES256(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, nil)
	k := testKeys()
	for _, tok := range []string{
		signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, goodClaims(s.clock.Now())),
		signTok(t, jwt.SigningMethodES256, "ec-1", k.ec, goodClaims(s.clock.Now())),
	} {
		p, err := s.v.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, Principal{Subject: "svc-lab", Tenant: "tenant-a", Scopes: Scopes{"system/Observation.rs", "interop/admin"}}, p)
	}
	require.EqualValues(t, 1, s.idp.fetches.Load(), "keys are cached")

	// scp as an array, as some issuers send it, and a single-string aud.
	claims := goodClaims(s.clock.Now())
	delete(claims, "scope")
	claims["scp"] = []string{"system/Patient.rs"}
	claims["aud"] = testAudience
	p, err := s.v.Verify(signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, claims))
	require.NoError(t, err)
	require.Equal(t, Scopes{"system/Patient.rs"}, p.Scopes)
}

func TestJWKSRefuses(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, nil)
	k := testKeys()
	now := s.clock.Now()
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims(now)
		edit(c)
		return c
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey))})
	good := signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, goodClaims(now))
	parts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
	}{
		{"expired beyond the leeway", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-time.Minute).Unix()
		}))},
		{"no exp", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"not yet valid", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) {
			c["nbf"] = now.Add(5 * time.Minute).Unix()
		}))},
		{"issued in the future", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) {
			c["iat"] = now.Add(5 * time.Minute).Unix()
		}))},
		{"wrong issuer", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"no issuer", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"wrong audience", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { c["aud"] = "another-api" }))},
		{"no audience", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"no tenant", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { delete(c, "tenant") }))},
		{"malformed tenant", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, with(func(c jwt.MapClaims) { c["tenant"] = "a b" }))},
		{"unknown kid", signTok(t, jwt.SigningMethodRS256, "rsa-unknown", k.rsa2, goodClaims(now))},
		{"known kid, other key", signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa2, goodClaims(now))},
		{"kid of an EC key on an RS256 token", signTok(t, jwt.SigningMethodRS256, "ec-1", k.rsa1, goodClaims(now))},
		{"ES384 with a P-256 key's kid", signTok(t, jwt.SigningMethodES384, "ec-1", k.ec384, goodClaims(now))},
		{"RS256 key used for PS256", signTok(t, jwt.SigningMethodPS256, "rsa-1", k.rsa1, goodClaims(now))},
		{"key meant for encryption", signTok(t, jwt.SigningMethodRS256, "enc-1", k.rsa2, goodClaims(now))},
		{"weak RSA key", signTok(t, jwt.SigningMethodRS256, "weak", k.weak, goodClaims(now))},
		{"alg none", signTok(t, jwt.SigningMethodNone, "rsa-1", jwt.UnsafeAllowNoneSignatureType, goodClaims(now))},
		{"alg none, no signature at all", b64(`{"alg":"none","kid":"rsa-1"}`) + "." + parts[1] + "."},
		{"HS256 keyed with the RSA public key (alg confusion)", signTok(t, jwt.SigningMethodHS256, "rsa-1", rsaPEM, goodClaims(now))},
		{"HS256 keyed with a symmetric key of the set", signTok(t, jwt.SigningMethodHS256, "oct-1", []byte("a-symmetric-key-in-a-public-set!"), goodClaims(now))},
		{"HS256 with a dev secret", must(HS256{Secret: []byte(strings.Repeat("k", 32)), Now: s.clock.Now}.Issue("x", "tenant-a", "interop/admin", time.Hour))},
		{"tampered payload", parts[0] + "." + b64(`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","tenant":"tenant-b","exp":4102444800}`) + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA"},
		{"garbage", "not.a.token"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.v.Verify(tt.token)
			require.ErrorIs(t, err, ErrInvalidToken)
		})
	}
	// The good token passes, so each refusal above is for its own reason.
	_, err := s.v.Verify(good)
	require.NoError(t, err)
}

func TestJWKSLeeway(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, nil)
	k := testKeys()
	tok := signTok(t, jwt.SigningMethodES256, "ec-1", k.ec, goodClaims(s.clock.Now()))
	s.clock.Add(5*time.Minute + 20*time.Second)
	_, err := s.v.Verify(tok)
	require.NoError(t, err, "20 s past exp is within the clock skew leeway")
	s.clock.Add(20 * time.Second)
	_, err = s.v.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "40 s past exp is not")
}

func TestJWKSKeyRotation(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, nil)
	k := testKeys()
	require.EqualValues(t, 1, s.idp.fetches.Load())

	// The issuer rotates: rsa-2 is added, rsa-1 withdrawn.
	s.idp.setKeys(pub("rsa-2", "RS256", &k.rsa2.PublicKey), pub("ec-1", "ES256", &k.ec.PublicKey))
	rotated := signTok(t, jwt.SigningMethodRS256, "rsa-2", k.rsa2, goodClaims(s.clock.Now()))

	// Within MinRefreshInterval of the last fetch, an unknown kid does not refetch.
	_, err := s.v.Verify(rotated)
	require.ErrorIs(t, err, ErrInvalidToken)
	require.EqualValues(t, 1, s.idp.fetches.Load(), "refresh is rate-limited")

	s.clock.Add(DefaultMinRefreshInterval + time.Second)
	p, err := s.v.Verify(signTok(t, jwt.SigningMethodRS256, "rsa-2", k.rsa2, goodClaims(s.clock.Now())))
	require.NoError(t, err, "an unknown kid refreshes the keys once the rate limit allows")
	require.Equal(t, "tenant-a", p.Tenant)
	require.EqualValues(t, 2, s.idp.fetches.Load())

	// A flood of forged kids costs the issuer nothing more within the interval.
	for i := range 20 {
		_, err := s.v.Verify(signTok(t, jwt.SigningMethodRS256, "forged-"+string(rune('a'+i)), k.rsa2, goodClaims(s.clock.Now())))
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	require.EqualValues(t, 2, s.idp.fetches.Load())

	// The withdrawn key no longer verifies.
	_, err = s.v.Verify(signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, goodClaims(s.clock.Now())))
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestJWKSBackgroundRefreshKeepsKeysOnFailure(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, func(c *JWKSConfig) { c.CacheTTL = time.Minute; c.MinRefreshInterval = time.Second })
	k := testKeys()

	s.idp.status.Store(http.StatusServiceUnavailable)
	s.clock.Add(2 * time.Minute)
	tok := signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, goodClaims(s.clock.Now()))
	_, err := s.v.Verify(tok)
	require.NoError(t, err, "stale keys serve while the refresh runs")
	require.Eventually(t, func() bool { return s.idp.fetches.Load() == 2 && !s.v.refreshing.Load() }, 5*time.Second, 10*time.Millisecond)
	_, err = s.v.Verify(tok)
	require.NoError(t, err, "a failed refresh keeps the keys fetched before")

	s.idp.status.Store(http.StatusOK)
	s.idp.setKeys(pub("ec-1", "ES256", &k.ec.PublicKey))
	s.clock.Add(2 * time.Second)
	_, _ = s.v.Verify(tok) // starts the refresh
	require.Eventually(t, func() bool { return s.idp.fetches.Load() == 3 && !s.v.refreshing.Load() }, 5*time.Second, 10*time.Millisecond)
	_, err = s.v.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "after a successful refresh the withdrawn key is gone")
}

func TestJWKSWithoutIssuerOrAudienceChecksSignatureAndTimes(t *testing.T) {
	t.Parallel()
	s := newJWKSSetup(t, func(c *JWKSConfig) { c.Issuer, c.Audience = "", "" })
	k := testKeys()
	claims := goodClaims(s.clock.Now())
	claims["iss"], claims["aud"] = "anyone", "anything"
	_, err := s.v.Verify(signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, claims))
	require.NoError(t, err)
	delete(claims, "exp")
	_, err = s.v.Verify(signTok(t, jwt.SigningMethodRS256, "rsa-1", k.rsa1, claims))
	require.ErrorIs(t, err, ErrInvalidToken, "exp stays required")
}

func TestJWKSTokenWithoutKid(t *testing.T) {
	t.Parallel()
	k := testKeys()
	p := newIDP(t, pub("only", "", &k.rsa1.PublicKey), pub("ec-1", "ES256", &k.ec.PublicKey))
	c := &clock{now: time.Now()}
	v, err := NewJWKS(context.Background(), JWKSConfig{URL: p.srv.URL, Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = v.Verify(signTok(t, jwt.SigningMethodRS256, "", k.rsa1, goodClaims(c.Now())))
	require.NoError(t, err, "one key suits RS256: a token without kid may use it")

	p.setKeys(pub("a", "", &k.rsa1.PublicKey), pub("b", "", &k.rsa2.PublicKey))
	c.Add(2 * DefaultCacheTTL)
	_, _ = v.Verify("x") // starts a background refresh
	require.Eventually(t, func() bool { return p.fetches.Load() == 2 && !v.refreshing.Load() }, 5*time.Second, 10*time.Millisecond)
	_, err = v.Verify(signTok(t, jwt.SigningMethodRS256, "", k.rsa1, goodClaims(c.Now())))
	require.ErrorIs(t, err, ErrInvalidToken, "two RSA keys: without kid the key is not guessed")
}

func TestNewJWKSFailsFast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := NewJWKS(ctx, JWKSConfig{URL: "http://idp.example/jwks"})
	require.ErrorContains(t, err, "want https", "clear-text http only on loopback")
	_, err = NewJWKS(ctx, JWKSConfig{URL: "jwks.json"})
	require.Error(t, err)

	p := newIDP(t)
	_, err = NewJWKS(ctx, JWKSConfig{URL: p.srv.URL, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorContains(t, err, "no usable signature key")

	p.setKeys(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct"})
	_, err = NewJWKS(ctx, JWKSConfig{URL: p.srv.URL, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorContains(t, err, "no usable signature key", "a symmetric key is never a verification key")

	p.status.Store(http.StatusNotFound)
	_, err = NewJWKS(ctx, JWKSConfig{URL: p.srv.URL, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorContains(t, err, "status 404")

	_, err = NewJWKS(ctx, JWKSConfig{URL: p.srv.URL, Algorithms: []string{"HS256"}})
	require.ErrorContains(t, err, "not accepted")
}

func TestNewVerifierChoosesByConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := HS256{Secret: []byte(strings.Repeat("k", 32))}
	devFn := func() (HS256, error) { return dev, nil }

	v, err := NewVerifier(ctx, VerifierConfig{HS256: devFn})
	require.NoError(t, err)
	require.IsType(t, HS256{}, v)
	tok, err := dev.Issue("dev", "default", "interop/admin", time.Hour)
	require.NoError(t, err)
	_, err = v.Verify(tok)
	require.NoError(t, err, "interop token keeps working in dev")

	k := testKeys()
	p := newIDP(t, pub("rsa-1", "RS256", &k.rsa1.PublicKey))
	called := false
	v, err = NewVerifier(ctx, VerifierConfig{JWKSURL: p.srv.URL, Issuer: testIssuer, Audience: testAudience,
		HS256: func() (HS256, error) { called = true; return dev, nil }, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.IsType(t, &JWKS{}, v)
	require.False(t, called, "a JWKS gateway never makes a dev key")
	_, err = v.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "an HS256 dev token is refused by a JWKS verifier")

	_, err = NewVerifier(ctx, VerifierConfig{Issuer: testIssuer, HS256: devFn})
	require.Error(t, err, "issuer without JWKS is a configuration mistake")
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
