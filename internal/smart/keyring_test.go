package smart

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
	icrypto "github.com/nhp/interop/internal/crypto"
	"github.com/nhp/interop/internal/dbtest"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func kids(t *testing.T, r *KeyRing) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(r.JWKS(), &set))
	var out []string
	for _, k := range set.Keys {
		require.Empty(t, k.D, "never a private key in the published set")
		out = append(out, k.Kid)
	}
	return out
}

// TestKeyRingSharedRotatedAndSealed: replicas share one key through the database; a due
// rotation publishes the next key before it signs, keeps the old one published while its
// tokens live, and a keyset that cannot open the keys cannot sign.
func TestKeyRingSharedRotatedAndSealed(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	h, err := icrypto.NewKeyset()
	require.NoError(t, err)
	sealer, err := icrypto.NewSealer(h)
	require.NoError(t, err)
	clk := &clock{t: time.Now()}
	cfg := KeyRingConfig{Pool: pool, Sealer: sealer, RotateEvery: time.Hour, Reload: time.Minute, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()

	a, err := NewKeyRing(ctx, cfg)
	require.NoError(t, err)
	b, err := NewKeyRing(ctx, cfg)
	require.NoError(t, err)
	first := a.Signer()
	require.Equal(t, first, b.Signer(), "replicas share the key")
	require.Equal(t, []string{first}, kids(t, a))
	var sealed []byte
	require.NoError(t, pool.QueryRow(ctx, "SELECT private_sealed FROM auth_signing_keys WHERE kid = $1", first).Scan(&sealed))
	require.NotContains(t, string(sealed), "PRIVATE", "stored sealed")

	// A token signed by a verifies on b.
	v := auth.IssuedVerifier{Issuer: "iss", Audience: "aud", Keys: b, Now: clk.Now}
	claims := auth.AccessClaims{Tenant: "t", Scope: "system/*.rs", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "iss", Audience: jwt.ClaimStrings{"aud"}, IssuedAt: jwt.NewNumericDate(clk.Now()), ExpiresAt: jwt.NewNumericDate(clk.Now().Add(time.Minute)),
	}}
	tok, err := a.Sign(claims)
	require.NoError(t, err)
	_, err = v.Verify(tok)
	require.NoError(t, err)

	// Rotation is due when the key retires within a tenth of RotateEvery.
	clk.Add(time.Hour)
	require.NoError(t, a.Reload(ctx))
	require.Len(t, kids(t, a), 2)
	require.Equal(t, first, a.Signer(), "the new key is published a reload interval before it signs")
	second := kids(t, a)[0]
	claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(clk.Now()), jwt.NewNumericDate(clk.Now().Add(time.Minute))
	clk.Add(2 * time.Minute)
	require.NoError(t, a.Reload(ctx))
	require.Equal(t, second, a.Signer())
	// b has not reloaded: a token of the new key makes it look the key up.
	claims.IssuedAt, claims.ExpiresAt = jwt.NewNumericDate(clk.Now()), jwt.NewNumericDate(clk.Now().Add(time.Minute))
	tok, err = a.Sign(claims)
	require.NoError(t, err)
	_, err = v.Verify(tok)
	require.NoError(t, err, "an unknown kid reloads the ring")
	require.Contains(t, kids(t, b), first, "the retired key stays published while its tokens live")

	// Long after, the first key is gone.
	clk.Add(2 * time.Hour)
	require.NoError(t, a.Reload(ctx))
	require.NotContains(t, kids(t, a), first)

	// Another keyset cannot open the keys: no signer, a clear error.
	h2, err := icrypto.NewKeyset()
	require.NoError(t, err)
	other, err := icrypto.NewSealer(h2)
	require.NoError(t, err)
	cfg.Sealer = other
	_, err = NewKeyRing(ctx, cfg)
	require.ErrorContains(t, err, "INTEROP_KEYSET_FILE")
}
