package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScopesAllow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes string
		typ    string
		in     Interaction
		want   bool
	}{
		{"system/Patient.rs", "Patient", Read, true},
		{"system/Patient.rs", "Patient", Search, true},
		{"system/Patient.rs", "Patient", Create, false},
		{"system/Patient.rs", "Observation", Read, false},
		{"system/*.cruds", "Observation", Delete, true},
		{"system/*.cruds", "Observation", Create, true},
		{"system/Patient.read", "Patient", Search, true},
		{"system/Patient.write", "Patient", Read, false},
		{"system/Patient.*", "Patient", Update, true},
		{"system/Patient.sr", "Patient", Read, false},            // letters out of order: not a v2 scope
		{"system/Patient.rs?category=x", "Patient", Read, false}, // constrained scopes are not widened
		{"user/Patient.rs", "Patient", Read, false},
		{"patient/*.rs", "Patient", Read, false},
		{"interop/admin", "Patient", Read, false},
		{"", "Patient", Read, false},
	}
	for _, tt := range tests {
		got := ParseScopes(tt.scopes).Allows(tt.typ, tt.in)
		require.Equal(t, tt.want, got, "%q allows %s %c", tt.scopes, tt.typ, tt.in)
	}
}

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := HS256{Secret: []byte(strings.Repeat("k", 32)), Now: func() time.Time { return now }}
	tok, err := h.Issue("alice", "default", "system/*.cruds  interop/admin", time.Hour)
	require.NoError(t, err)

	p, err := h.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, Principal{Subject: "alice", Tenant: "default", Scopes: Scopes{"system/*.cruds", "interop/admin"}}, p)

	other := HS256{Secret: []byte(strings.Repeat("x", 32)), Now: h.Now}
	_, err = other.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "a token signed with another key is refused")

	later := HS256{Secret: h.Secret, Now: func() time.Time { return now.Add(2 * time.Hour) }}
	_, err = later.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken, "an expired token is refused")

	_, err = h.Verify(tok[:len(tok)-2] + "xx")
	require.ErrorIs(t, err, ErrInvalidToken, "a tampered signature is refused")

	_, err = h.Issue("a", "bad tenant", "", time.Hour)
	require.Error(t, err)
}

func TestVerifyRefusesAlgNone(t *testing.T) {
	t.Parallel()
	h := HS256{Secret: []byte(strings.Repeat("k", 32))}
	// {"alg":"none"} header with valid-looking claims and no signature.
	tok := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnQiOiJkZWZhdWx0Iiwic2NvcGUiOiJzeXN0ZW0vKi5jcnVkcyIsImlzcyI6ImludGVyb3AiLCJleHAiOjQxMDI0NDQ4MDB9."
	_, err := h.Verify(tok)
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestDevSecretIsStable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := DevSecret(dir)
	require.NoError(t, err)
	b, err := DevSecret(dir)
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Len(t, a, 32)
}
