package fhirapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
)

// cursorParam is the search parameter that carries the gateway's paging cursor.
const cursorParam = "_cursor"

// cursorTTL is how long a paging cursor stays valid.
const cursorTTL = time.Hour

// maxCursorLen bounds a cursor a client may send.
const maxCursorLen = 16 << 10

// pageCursor is where a search continues: per owner, the owner's page in progress and how many
// of its matches were already returned. It is opaque to clients: base64url JSON and an
// HMAC-SHA256 over it bound to the tenant, the resource type and the search's parameters, so
// that a cursor altered, moved to another search, or presented by another tenant is refused.
// Owner pages are kept relative to the owner's base: no owner address is in a cursor.
type pageCursor struct {
	// Owners is a digest of the owner list the search was routed to; a routing change
	// invalidates the cursor.
	Owners string      `json:"o"`
	Pages  []ownerPage `json:"p"`
	Expiry int64       `json:"e"`
}

// ownerPage is one owner's position in a paged search.
type ownerPage struct {
	// Page is the owner's page in progress, relative to its base; "" is the first page.
	Page string `json:"u,omitempty"`
	// Skip counts the matches of Page already returned.
	Skip int `json:"k,omitempty"`
	// Done marks an owner with nothing more; Failed one that failed on an earlier page and is
	// left out of the rest of the search (each page says so).
	Done   bool `json:"d,omitempty"`
	Failed bool `json:"f,omitempty"`
	// Total is the owner's total from its first answer, for the totals of later pages.
	Total *int `json:"t,omitempty"`
}

var errBadCursor = errors.New("bad cursor")

func badCursor() error {
	return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "invalid or expired paging cursor: start the search again")
}

// cursorQuery is the canonical form of a search's parameters a cursor is bound to.
func cursorQuery(q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != cursorParam && k != "_format" {
			c[k] = v
		}
	}
	return c.Encode()
}

func ownersDigest(owners []string) string {
	sum := sha256.Sum256([]byte(strings.Join(owners, "\n")))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func (g *fhirGateway) cursorMAC(tenant, typ, query, payload string) []byte {
	m := hmac.New(sha256.New, g.key)
	for _, s := range []string{"interop fhir cursor v1", tenant, typ, query, payload} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// signCursor encodes c for tenant's search of typ with q.
func (g *fhirGateway) signCursor(tenant, typ string, q url.Values, c pageCursor) string {
	c.Expiry = time.Now().Add(cursorTTL).Unix()
	raw, _ := json.Marshal(c)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	mac := g.cursorMAC(tenant, typ, cursorQuery(q), payload)
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// openCursor verifies and decodes a cursor of tenant's search of typ with q.
func (g *fhirGateway) openCursor(tenant, typ string, q url.Values, token string) (pageCursor, error) {
	var c pageCursor
	if len(token) > maxCursorLen {
		return c, errBadCursor
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, errBadCursor
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, g.cursorMAC(tenant, typ, cursorQuery(q), payload)) {
		return c, errBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(raw, &c) != nil || time.Now().Unix() > c.Expiry {
		return c, errBadCursor
	}
	for _, p := range c.Pages {
		if p.Skip < 0 || (p.Page != "" && !strings.HasPrefix(p.Page, "/")) {
			return c, errBadCursor
		}
	}
	return c, nil
}
