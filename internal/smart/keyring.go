// Package smart is the SMART Backend Services authorization server of the gateway: the
// token endpoint's logic (client_credentials with a private_key_jwt client assertion, RFC 7523
// and the SMART App Launch IG's backend services profile), the per-tenant client registry it
// reads, the replay check of assertion ids, and the rotating key ring that signs the access
// tokens and publishes their keys. HTTP lives in gateway/smartapi and gateway/adminapi.
package smart

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/nhp/interop/db"
)

// Sealer seals the private signing keys at rest (internal/crypto over the Tink keyset that
// seals connector credentials).
type Sealer interface {
	Seal(plaintext, associatedData []byte) (ciphertext []byte, keyID string, err error)
	Open(ciphertext, associatedData []byte) ([]byte, error)
}

// Defaults of KeyRingConfig.
const (
	DefaultRotateEvery = 7 * 24 * time.Hour
	DefaultReload      = time.Minute
	// signingAlg is the algorithm of the access tokens: ECDSA P-256, compact and fast.
	signingAlg = "ES256"
)

// KeyRingConfig configures a KeyRing.
type KeyRingConfig struct {
	Pool   *db.Pool
	Sealer Sealer
	// RotateEvery is how long one key signs before a new one takes over; 0 means a week.
	RotateEvery time.Duration
	// TokenTTL is the longest lifetime of a token the ring signs: a retired key stays
	// published that long (plus leeway) so that its tokens verify until they expire.
	TokenTTL time.Duration
	// Reload is how often the ring re-reads the keys (another replica's rotation) and rotates
	// when due; 0 means a minute.
	Reload time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// KeyRing is the service's set of access-token signing keys, shared by every replica through
// the database (private keys sealed): the newest key signs; every key whose tokens may still be
// valid is published and verifies. Safe for concurrent use.
type KeyRing struct {
	cfg KeyRingConfig

	mu         sync.RWMutex
	signer     *signingKey
	public     map[string]crypto.PublicKey
	jwks       []byte
	lastReload time.Time

	reloadMu sync.Mutex
}

type signingKey struct {
	kid       string
	key       crypto.Signer
	retireAt  time.Time
	createdAt time.Time
}

// NewKeyRing loads the published keys, creating the first (or the next, when the newest is due
// to retire) under an advisory lock so that replicas starting together make one.
func NewKeyRing(ctx context.Context, cfg KeyRingConfig) (*KeyRing, error) {
	if cfg.Pool == nil || cfg.Sealer == nil {
		return nil, errors.New("key ring: a database pool and a sealer are needed")
	}
	if cfg.RotateEvery == 0 {
		cfg.RotateEvery = DefaultRotateEvery
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Reload == 0 {
		cfg.Reload = DefaultReload
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &KeyRing{cfg: cfg}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the published keys, first adding a new signing key when none signs or the
// newest retires within a tenth of RotateEvery (so that the next one is published a while
// before it is used), and pruning keys no token can still need.
func (r *KeyRing) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	now := r.cfg.Now()
	var rows []db.AuthSigningKey
	err := db.InTx(ctx, r.cfg.Pool, func(q *db.Queries) error {
		var err error
		if rows, err = q.AuthSigningKeyListPublished(ctx, now); err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		if len(rows) > 0 && rows[0].RetireAt.Sub(now) > r.cfg.RotateEvery/10 {
			return nil
		}
		if err := q.AuthSigningKeyLock(ctx); err != nil {
			return fmt.Errorf("lock signing keys: %w", err)
		}
		if rows, err = q.AuthSigningKeyListPublished(ctx, now); err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		if len(rows) > 0 && rows[0].RetireAt.Sub(now) > r.cfg.RotateEvery/10 {
			return nil // another replica rotated meanwhile
		}
		row, err := r.newKey(now)
		if err != nil {
			return err
		}
		if err := q.AuthSigningKeyInsert(ctx, db.AuthSigningKeyInsertParams(row)); err != nil {
			return fmt.Errorf("store signing key: %w", err)
		}
		if _, err := q.AuthSigningKeyPrune(ctx, now); err != nil {
			return fmt.Errorf("prune signing keys: %w", err)
		}
		r.cfg.Logger.Info("smart: new access-token signing key", "kid", row.Kid, "alg", row.Alg, "retire_at", row.RetireAt)
		rows = append([]db.AuthSigningKey{row}, rows...)
		return nil
	})
	if err != nil {
		return err
	}
	return r.load(rows, now)
}

// newKey makes an ES256 key that signs from now until RotateEvery after the newest key's
// retirement would have let it: its own RotateEvery plus the overlap.
func (r *KeyRing) newKey(now time.Time) (db.AuthSigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return db.AuthSigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kidBytes := make([]byte, 12)
	if _, err := rand.Read(kidBytes); err != nil {
		return db.AuthSigningKey{}, fmt.Errorf("generate key id: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(kidBytes)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return db.AuthSigningKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	sealed, sealingKeyID, err := r.cfg.Sealer.Seal(der, []byte("auth_signing_keys:"+kid))
	if err != nil {
		return db.AuthSigningKey{}, fmt.Errorf("seal signing key: %w", err)
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: signingAlg, Use: "sig"})
	if err != nil {
		return db.AuthSigningKey{}, fmt.Errorf("encode public key: %w", err)
	}
	retire := now.Add(r.cfg.RotateEvery + r.cfg.RotateEvery/10)
	return db.AuthSigningKey{
		Kid: kid, Alg: signingAlg, PrivateSealed: sealed, SealingKeyID: sealingKeyID, PublicJWK: pub,
		CreatedAt: now, RetireAt: retire, PublishedUntil: retire.Add(r.cfg.TokenTTL + 5*time.Minute),
	}, nil
}

// load installs rows (newest first). The signer is the newest key that has not retired and
// has been published for a reload interval (so that every replica knows it before a token it
// signed arrives); a ring without one signs with the newest key it can (the first key).
func (r *KeyRing) load(rows []db.AuthSigningKey, now time.Time) error {
	public := map[string]crypto.PublicKey{}
	var set jose.JSONWebKeySet
	var signer, fallback *signingKey
	prepublish := r.cfg.Reload + 5*time.Second
	for _, row := range rows {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(row.PublicJWK); err != nil {
			r.cfg.Logger.Warn("smart: unreadable public signing key skipped", "kid", row.Kid, "error", err)
			continue
		}
		public[row.Kid] = k.Key
		set.Keys = append(set.Keys, k)
		if signer != nil || !now.Before(row.RetireAt) {
			continue
		}
		sk, err := r.open(row)
		if err != nil {
			r.cfg.Logger.Warn("smart: signing key cannot be opened with this keyset; it verifies but does not sign", "kid", row.Kid, "error", err)
			continue
		}
		if !row.CreatedAt.Add(prepublish).After(now) {
			signer = sk
		} else if fallback == nil {
			fallback = sk
		}
	}
	if signer == nil {
		signer = fallback
	}
	if signer == nil {
		return errors.New("no access-token signing key can be opened with this keyset (INTEROP_KEYSET_FILE)")
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	r.mu.Lock()
	r.signer, r.public, r.jwks, r.lastReload = signer, public, doc, now
	r.mu.Unlock()
	return nil
}

func (r *KeyRing) open(row db.AuthSigningKey) (*signingKey, error) {
	der, err := r.cfg.Sealer.Open(row.PrivateSealed, []byte("auth_signing_keys:"+row.Kid))
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", row.Kid, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s: not a signing key", row.Kid)
	}
	return &signingKey{kid: row.Kid, key: s, retireAt: row.RetireAt, createdAt: row.CreatedAt}, nil
}

// Signer is the kid of the key that signs now.
func (r *KeyRing) Signer() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.signer.kid
}

// PublicKey is the auth.PublicKeys lookup of the access-token verifier. An unknown kid (a key
// another replica just made) reloads the ring, at most once every few seconds.
func (r *KeyRing) PublicKey(kid string) (crypto.PublicKey, bool) {
	r.mu.RLock()
	k, ok := r.public[kid]
	last := r.lastReload
	r.mu.RUnlock()
	if ok || kid == "" || r.cfg.Now().Sub(last) < 5*time.Second {
		return k, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Reload(ctx); err != nil {
		r.cfg.Logger.Warn("smart: reload signing keys for an unknown key id", "error", err)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok = r.public[kid]
	return k, ok
}

// JWKS is the published key set document (/.well-known/jwks.json).
func (r *KeyRing) JWKS() []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jwks
}

// Sign signs claims with the current signing key, naming it in the kid header.
func (r *KeyRing) Sign(claims jwt.Claims) (string, error) {
	r.mu.RLock()
	s := r.signer
	r.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}
