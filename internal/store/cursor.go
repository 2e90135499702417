package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
)

// ErrBadCursor means a paging cursor was not made by this store with this key for this
// tenant, type and query: tampered, replayed elsewhere, or from before a key change (400).
var ErrBadCursor = errors.New("invalid paging cursor")

// cursorPos is the keyset position a cursor carries: the sort key and id of the page's last row.
type cursorPos struct {
	Key string `json:"k"`
	ID  string `json:"i"`
}

// processCursorKey signs cursors when the caller gives no key.
var processCursorKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go ≥ 1.24)
	return k
})

// Cursor domains: a search's cursor never verifies as a history's, nor the reverse.
const (
	searchCursorDomain  = "fhir-store-cursor/v1"
	historyCursorDomain = "fhir-store-history-cursor/v1"
)

// signCursor returns base64url(position) "." base64url(HMAC-SHA256(key, binding, position)).
// The binding (tenant, type, canonical query) is not in the cursor: it is recomputed from the
// request that presents it, so a cursor replayed for another tenant or query does not verify.
func signCursor(key []byte, binding string, pos cursorPos) string {
	return signPosition(key, searchCursorDomain, binding, pos)
}

func verifyCursor(key []byte, binding, cursor string) (cursorPos, error) {
	var pos cursorPos
	if err := verifyPosition(key, searchCursorDomain, binding, cursor, &pos); err != nil || pos.ID == "" {
		return cursorPos{}, ErrBadCursor
	}
	return pos, nil
}

// signPosition signs pos (a struct of plain fields) in domain for binding.
func signPosition(key []byte, domain, binding string, pos any) string {
	raw, _ := json.Marshal(pos) // plain fields always marshal
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(cursorMAC(key, domain, binding, body))
}

// verifyPosition checks cursor against domain and binding and decodes its position into pos.
func verifyPosition(key []byte, domain, binding, cursor string, pos any) error {
	body, sig, ok := strings.Cut(cursor, ".")
	if !ok || len(cursor) > 1024 {
		return ErrBadCursor
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, cursorMAC(key, domain, binding, body)) {
		return ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, pos) != nil {
		return ErrBadCursor
	}
	return nil
}

func cursorMAC(key []byte, domain, binding, body string) []byte {
	if len(key) == 0 {
		key = processCursorKey()
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write([]byte(body))
	return m.Sum(nil)
}
