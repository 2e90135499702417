package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Export files are downloaded with a signed, expiring URL alone (requiresAccessToken is
// false): the query carries the expiry and an HMAC-SHA256 over the path and that expiry.
var (
	// ErrURLExpired is a correctly signed file URL whose expiry has passed.
	ErrURLExpired = errors.New("signed url expired")
	// ErrURLInvalid is a file URL whose signature or expiry is missing, malformed or does not
	// match its path: tampered with, truncated, or signed with another key.
	ErrURLInvalid = errors.New("signed url invalid")
	// ErrNoSigningKey is a server without a key to sign or verify file URLs with.
	ErrNoSigningKey = errors.New("no signing key for export file urls")
)

// Query parameters of a signed file URL.
const (
	signedExpiresParam = "expires"
	signedSigParam     = "sig"
)

// SignFilePath returns path (unescaped, as url.URL.Path holds it) escaped, with
// "?expires=<unix seconds>&sig=<base64url HMAC-SHA256>" appended. The URL is valid until
// expires, truncated to the second. key should be 32 random bytes, the same on every replica
// that serves files; SignFilePath panics on an empty key, a configuration error that must not
// yield URLs anyone could forge.
func SignFilePath(key []byte, path string, expires time.Time) string {
	if len(key) == 0 {
		panic("export: SignFilePath: " + ErrNoSigningKey.Error())
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := url.Values{signedExpiresParam: {exp}, signedSigParam: {base64.RawURLEncoding.EncodeToString(fileMAC(key, path, exp))}}
	return (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// VerifyFilePath checks the signature SignFilePath gave path, against the request's
// (decoded) path and query: ErrURLInvalid when it is missing or does not match,
// ErrURLExpired when it matches but its expiry is not after now, ErrNoSigningKey when key is
// empty. Other query parameters are allowed and not covered by the signature.
func VerifyFilePath(key []byte, path string, query url.Values, now time.Time) error {
	if len(key) == 0 {
		return ErrNoSigningKey
	}
	exps, sigs := query[signedExpiresParam], query[signedSigParam]
	if len(exps) != 1 || len(sigs) != 1 {
		return fmt.Errorf("%w: want one %s and one %s", ErrURLInvalid, signedExpiresParam, signedSigParam)
	}
	// Only the canonical decimal form is ever signed, so anything else is not ours.
	sec, err := strconv.ParseInt(exps[0], 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != exps[0] {
		return fmt.Errorf("%w: malformed expiry", ErrURLInvalid)
	}
	got, err := base64.RawURLEncoding.DecodeString(sigs[0])
	if err != nil {
		return fmt.Errorf("%w: malformed signature", ErrURLInvalid)
	}
	// A changed expiry fails here: a tampered URL is invalid, never merely expired.
	if !hmac.Equal(got, fileMAC(key, path, exps[0])) {
		return fmt.Errorf("%w: signature does not match", ErrURLInvalid)
	}
	if !now.Before(time.Unix(sec, 0)) {
		return ErrURLExpired
	}
	return nil
}

// fileMAC is the HMAC-SHA256 of a purpose label, the path and the expiry. The expiry comes
// last and is a decimal integer (no newline), so (path, expiry) → message is one-to-one.
func fileMAC(key []byte, path, expires string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("interop bulk-export file v1\n"))
	m.Write([]byte(path))
	m.Write([]byte("\n"))
	m.Write([]byte(expires))
	return m.Sum(nil)
}
