package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
)

// ClientKeys resolves a registered client's verification keys: its JWKS by value (parsed once
// per client version) or by URL (fetched with a timeout, cached and refreshed as auth.JWKS
// does; a failed fetch is remembered for a while so that a broken URL is not fetched on every
// request). Safe for concurrent use.
type ClientKeys struct {
	// HTTP fetches key sets by URL; nil means a client with a 10 s timeout that refuses
	// private, loopback and link-local addresses unless AllowPrivate.
	HTTP *http.Client
	// AllowPrivate lets JWKS URLs reach loopback and private addresses (development, tests).
	AllowPrivate bool
	Logger       *slog.Logger

	once sync.Once
	mu   sync.Mutex
	// byValue is keyed by client id and version; byURL by URL.
	byValue map[string]*auth.KeySet
	byURL   map[string]*auth.JWKS
	failed  map[string]time.Time
}

// failedFor is how long a failed JWKS fetch is not retried.
const failedFor = 30 * time.Second

func (k *ClientKeys) init() {
	k.once.Do(func() {
		k.byValue, k.byURL, k.failed = map[string]*auth.KeySet{}, map[string]*auth.JWKS{}, map[string]time.Time{}
		if k.HTTP == nil {
			k.HTTP = GuardedHTTPClient(k.AllowPrivate)
		}
		if k.Logger == nil {
			k.Logger = slog.Default()
		}
	})
}

// For is the jwt.Keyfunc of client's registered keys.
func (k *ClientKeys) For(ctx context.Context, client db.AuthClient) (jwt.Keyfunc, error) {
	k.init()
	if client.JWKSURL == nil {
		key := fmt.Sprintf("%s\x00%d", client.ClientID, client.Version)
		k.mu.Lock()
		set, ok := k.byValue[key]
		k.mu.Unlock()
		if !ok {
			var err error
			if set, _, err = auth.ParseJWKS(client.JWKS); err != nil {
				return nil, err
			}
			k.mu.Lock()
			k.byValue[key] = set
			k.mu.Unlock()
		}
		return set.Keyfunc, nil
	}
	u := *client.JWKSURL
	k.mu.Lock()
	j, ok := k.byURL[u]
	failedAt, failed := k.failed[u]
	k.mu.Unlock()
	if ok {
		return j.Keyfunc, nil
	}
	if failed && time.Since(failedAt) < failedFor {
		return nil, errors.New("its JWKS URL failed moments ago; retry shortly")
	}
	j, err := auth.NewJWKS(ctx, auth.JWKSConfig{URL: u, HTTP: k.HTTP, Algorithms: AssertionAlgorithms, Logger: k.Logger})
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.failed[u] = time.Now()
		k.Logger.Warn("smart: fetch a client's JWKS", "client_id", client.ClientID, "error", err)
		return nil, errors.New("its JWKS URL could not be fetched")
	}
	delete(k.failed, u)
	k.byURL[u] = j
	return j.Keyfunc, nil
}

// GuardedHTTPClient fetches client key sets: a 10 s timeout, no redirects, and (unless
// allowPrivate) no connection to loopback, private, link-local, multicast or unspecified
// addresses, checked on the address actually dialled, so that a tenant's registered URL
// cannot make the gateway reach its own network (SSRF).
func GuardedHTTPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("jwks: dial %s: not an IP address", address)
			}
			if !PublicAddr(ip) {
				return fmt.Errorf("jwks: %s is not a public address", ip)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// PublicAddr reports whether ip is a public unicast address.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("fc00::/7").Contains(ip)
}

// MaxClientScopes bounds a client's registered scopes.
const MaxClientScopes = 100

// ValidateRegistration checks what a tenant registers for a client: a JWKS by value with a
// key usable for RS384 or ES384, or an https JWKS URL (http only on loopback, with
// allowPrivate), and SMART system scopes (or the admin scope). Problems come back worded for
// the person registering.
func ValidateRegistration(jwks json.RawMessage, jwksURL string, scopes []string, allowPrivate bool) []string {
	var problems []string
	switch {
	case len(jwks) > 0 && jwksURL != "":
		problems = append(problems, "give jwks or jwksUrl, not both")
	case len(jwks) == 0 && jwksURL == "":
		problems = append(problems, "jwks (a JSON Web Key Set of the client's public keys) or jwksUrl is required")
	case len(jwks) > 0:
		if len(jwks) > 64<<10 {
			problems = append(problems, "jwks is larger than 64 KiB")
			break
		}
		set, skipped, err := auth.ParseJWKS(jwks)
		if err != nil {
			problems = append(problems, "jwks: "+err.Error()+describeSkipped(skipped))
		} else if !set.Suits("RS384") && !set.Suits("ES384") {
			problems = append(problems, "jwks: no key can verify RS384 or ES384 (an RSA key of 2048 bits or more, or an EC P-384 key)"+describeSkipped(skipped))
		}
	default:
		u, err := url.Parse(jwksURL)
		switch {
		case err != nil || u.Host == "" || len(jwksURL) > 2000:
			problems = append(problems, "jwksUrl must be an absolute https URL")
		case u.Scheme == "https":
		case u.Scheme == "http" && allowPrivate && isLoopbackHost(u.Hostname()):
		default:
			problems = append(problems, "jwksUrl must be an https URL")
		}
		if err == nil && u.User != nil {
			problems = append(problems, "jwksUrl must not carry credentials")
		}
	}
	if len(scopes) == 0 {
		problems = append(problems, "scopes: at least one scope is required (e.g. system/Observation.rs)")
	}
	if len(scopes) > MaxClientScopes {
		problems = append(problems, fmt.Sprintf("scopes: at most %d", MaxClientScopes))
	}
	for _, s := range scopes {
		if err := auth.ValidateClientScope(s); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

func describeSkipped(skipped []string) string {
	if len(skipped) == 0 {
		return ""
	}
	return " (skipped: " + strings.Join(skipped, "; ") + ")"
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
