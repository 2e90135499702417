package export

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	testKey     = []byte("0123456789abcdef0123456789abcdef")
	testExpires = time.Date(2024, 6, 1, 13, 0, 0, 0, time.UTC)
)

// splitSigned parses a signed URL the way the server receives it: decoded path and query.
func splitSigned(t *testing.T, signed string) (string, url.Values) {
	t.Helper()
	u, err := url.Parse(signed)
	require.NoError(t, err)
	return u.Path, u.Query()
}

func TestSignFilePathShape(t *testing.T) {
	t.Parallel()
	signed := SignFilePath(testKey, "/fhir/_export/files/job-1/file-1", testExpires)
	require.Regexp(t, regexp.MustCompile(`^/fhir/_export/files/job-1/file-1\?expires=1717246800&sig=[A-Za-z0-9_-]{43}$`), signed)
	// Deterministic: the same inputs sign the same.
	require.Equal(t, signed, SignFilePath(testKey, "/fhir/_export/files/job-1/file-1", testExpires))
	// The path comes first and unchanged, so a caller may cut a known prefix off.
	require.True(t, strings.HasPrefix(signed, "/fhir/_export/files/job-1/file-1?"))
}

func TestSignFilePathEmptyKeyPanics(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { SignFilePath(nil, "/f", testExpires) })
	require.Panics(t, func() { SignFilePath([]byte{}, "/f", testExpires) })
}

func TestVerifyFilePath(t *testing.T) {
	t.Parallel()
	const path = "/fhir/_export/files/job-1/file-1"
	signed := SignFilePath(testKey, path, testExpires)
	_, good := splitSigned(t, signed)
	before := testExpires.Add(-time.Second)

	with := func(mutate func(q url.Values)) url.Values {
		q := url.Values{}
		for k, v := range good {
			q[k] = append([]string(nil), v...)
		}
		mutate(q)
		return q
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	otherKey := []byte("fedcba9876543210fedcba9876543210")

	for _, tc := range []struct {
		name  string
		key   []byte
		path  string
		query url.Values
		now   time.Time
		want  error
	}{
		{name: "valid", key: testKey, path: path, query: good, now: before},
		{name: "valid long before", key: testKey, path: path, query: good, now: testExpires.Add(-24 * time.Hour)},
		{name: "valid with other query parameters", key: testKey, path: path, query: with(func(q url.Values) { q.Set("x", "1") }), now: before},
		{name: "expired at the instant", key: testKey, path: path, query: good, now: testExpires, want: ErrURLExpired},
		{name: "expired after", key: testKey, path: path, query: good, now: testExpires.Add(time.Hour), want: ErrURLExpired},
		{name: "other path", key: testKey, path: "/fhir/_export/files/job-1/file-2", query: good, now: before, want: ErrURLInvalid},
		{name: "path with a suffix", key: testKey, path: path + "x", query: good, now: before, want: ErrURLInvalid},
		{name: "other key", key: otherKey, path: path, query: good, now: before, want: ErrURLInvalid},
		{name: "expiry extended", key: testKey, path: path, query: with(func(q url.Values) { q.Set("expires", "1717250400") }), now: before, want: ErrURLInvalid},
		{name: "expiry extended, checked after it passed", key: testKey, path: path, query: with(func(q url.Values) { q.Set("expires", "1717250400") }), now: testExpires.Add(2 * time.Hour), want: ErrURLInvalid},
		{name: "expiry with a leading zero", key: testKey, path: path, query: with(func(q url.Values) { q.Set("expires", "0"+q.Get("expires")) }), now: before, want: ErrURLInvalid},
		{name: "expiry with a plus sign", key: testKey, path: path, query: with(func(q url.Values) { q.Set("expires", "+"+q.Get("expires")) }), now: before, want: ErrURLInvalid},
		{name: "expiry not a number", key: testKey, path: path, query: with(func(q url.Values) { q.Set("expires", "soon") }), now: before, want: ErrURLInvalid},
		{name: "expiry missing", key: testKey, path: path, query: with(func(q url.Values) { q.Del("expires") }), now: before, want: ErrURLInvalid},
		{name: "expiry twice", key: testKey, path: path, query: with(func(q url.Values) { q.Add("expires", q.Get("expires")) }), now: before, want: ErrURLInvalid},
		{name: "signature altered", key: testKey, path: path, query: with(func(q url.Values) { q.Set("sig", flip(q.Get("sig"))) }), now: before, want: ErrURLInvalid},
		{name: "signature truncated", key: testKey, path: path, query: with(func(q url.Values) { q.Set("sig", q.Get("sig")[:20]) }), now: before, want: ErrURLInvalid},
		{name: "signature padded", key: testKey, path: path, query: with(func(q url.Values) { q.Set("sig", q.Get("sig")+"=") }), now: before, want: ErrURLInvalid},
		{name: "signature not base64url", key: testKey, path: path, query: with(func(q url.Values) { q.Set("sig", "***") }), now: before, want: ErrURLInvalid},
		{name: "signature empty", key: testKey, path: path, query: with(func(q url.Values) { q.Set("sig", "") }), now: before, want: ErrURLInvalid},
		{name: "signature missing", key: testKey, path: path, query: with(func(q url.Values) { q.Del("sig") }), now: before, want: ErrURLInvalid},
		{name: "signature twice", key: testKey, path: path, query: with(func(q url.Values) { q.Add("sig", q.Get("sig")) }), now: before, want: ErrURLInvalid},
		{name: "no query", key: testKey, path: path, query: nil, now: before, want: ErrURLInvalid},
		{name: "empty key", key: nil, path: path, query: good, now: before, want: ErrNoSigningKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyFilePath(tc.key, tc.path, tc.query, tc.now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			for _, other := range []error{ErrURLExpired, ErrURLInvalid, ErrNoSigningKey} {
				if other != tc.want {
					require.False(t, errors.Is(err, other), "%v is also %v", err, other)
				}
			}
		})
	}
}

func TestSignFilePathEscaping(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/files/a b/ü", "/files/a%2Fb", "/files/$export/x;y", "/files/q?x=1"} {
		signed := SignFilePath(testKey, path, testExpires)
		gotPath, q := splitSigned(t, signed)
		require.Equal(t, path, gotPath, "the server sees the signed path")
		require.NoError(t, VerifyFilePath(testKey, gotPath, q, testExpires.Add(-time.Minute)), path)
	}
}

func TestSignFilePathExpiryTruncatedToSecond(t *testing.T) {
	t.Parallel()
	exp := testExpires.Add(900 * time.Millisecond)
	path, q := splitSigned(t, SignFilePath(testKey, "/f", exp))
	require.NoError(t, VerifyFilePath(testKey, path, q, testExpires.Add(-time.Nanosecond)))
	require.ErrorIs(t, VerifyFilePath(testKey, path, q, testExpires), ErrURLExpired)
}

func TestSignFilePathBeforeEpoch(t *testing.T) {
	t.Parallel()
	path, q := splitSigned(t, SignFilePath(testKey, "/f", time.Unix(-10, 0)))
	require.Equal(t, "-10", q.Get("expires"))
	require.ErrorIs(t, VerifyFilePath(testKey, path, q, testNow), ErrURLExpired)
	require.NoError(t, VerifyFilePath(testKey, path, q, time.Unix(-11, 0)))
}
