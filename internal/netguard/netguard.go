// Package netguard keeps the service's outbound connections to FHIR owners off addresses an
// owner URL must not reach (SSRF): loopback, private (RFC 1918, RFC 6598, ULA), link-local,
// unspecified, multicast, broadcast and the cloud metadata services, unless the operator's
// allow-list (INTEROP_OWNER_ALLOW) names them. The check runs twice: on the URL when an
// administrator sets it (CheckURL: a literal address or what the name resolves to now), and
// on every connection, after DNS resolution (Dialer: a net.Dialer Control hook), so a name
// that resolves to a public address when the rule is saved and to a private one later (DNS
// rebinding) is refused too.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Policy is the set of refused address ranges minus the operator's allow-list. The zero value
// and nil refuse every range below and allow nothing extra.
type Policy struct {
	allowNets  []netip.Prefix
	allowHosts []string // lower case, without a trailing dot
}

// A refused range and why it is refused.
type refusedRange struct {
	prefix netip.Prefix
	what   string
}

// refused lists the ranges owner connections may not reach, the most specific first (the
// metadata addresses before the range that holds them).
var refused = func() []refusedRange {
	var out []refusedRange
	add := func(what string, prefixes ...string) {
		for _, p := range prefixes {
			out = append(out, refusedRange{netip.MustParsePrefix(p), what})
		}
	}
	add("a cloud metadata address", "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32", "192.0.0.192/32")
	add("an unspecified address", "0.0.0.0/8", "::/128")
	add("a loopback address", "127.0.0.0/8", "::1/128")
	add("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
	add("a link-local address", "169.254.0.0/16", "fe80::/10")
	add("a multicast address", "224.0.0.0/4", "ff00::/8")
	add("a reserved or broadcast address", "240.0.0.0/4")
	return out
}()

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4 address in their last
// four bytes.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Parse reads an allow-list: CIDRs, single addresses and host names, separated by commas or
// white space. A host name allows whatever it resolves to; "*.example.org" allows every name
// under example.org.
func Parse(spec string) (*Policy, error) {
	p := &Policy{}
	var bad []string
	for _, f := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if pre, err := netip.ParsePrefix(f); err == nil {
			p.allowNets = append(p.allowNets, pre.Masked())
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			p.allowNets = append(p.allowNets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		h := strings.TrimSuffix(strings.ToLower(f), ".")
		if !validHostPattern(h) {
			bad = append(bad, f)
			continue
		}
		p.allowHosts = append(p.allowHosts, h)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("owner allow-list: %q: not a CIDR, an address or a host name", strings.Join(bad, ", "))
	}
	return p, nil
}

func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
				return false
			}
		}
	}
	return true
}

// With returns a copy of p that also allows the given CIDRs, addresses or host names.
func (p *Policy) With(spec string) (*Policy, error) {
	more, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	out := &Policy{}
	if p != nil {
		out.allowNets = slices.Clone(p.allowNets)
		out.allowHosts = slices.Clone(p.allowHosts)
	}
	out.allowNets = append(out.allowNets, more.allowNets...)
	out.allowHosts = append(out.allowHosts, more.allowHosts...)
	return out, nil
}

// Loopback is the allow-list entry for this machine's loopback addresses, which `interop dev`
// and tests with owners on 127.0.0.1 add.
const Loopback = "127.0.0.0/8, ::1"

// String is the allow-list, for the log.
func (p *Policy) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, 0, len(p.allowNets)+len(p.allowHosts))
	for _, n := range p.allowNets {
		parts = append(parts, n.String())
	}
	return strings.Join(append(parts, p.allowHosts...), ",")
}

// RefusedError is an owner address the policy refuses.
type RefusedError struct {
	// Host is the host name or address as given; Addr the address it was refused for.
	Host string
	Addr netip.Addr
	// What names the range ("a loopback address", "a cloud metadata address", …).
	What string
}

func (e *RefusedError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, %s, which owners may not use unless INTEROP_OWNER_ALLOW allows it", e.Host, e.Addr, e.What)
	}
	return fmt.Sprintf("%s is %s, which owners may not use unless INTEROP_OWNER_ALLOW allows it", e.Addr, e.What)
}

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = errors.New("owner address refused")

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// CheckAddr refuses an address in a refused range that the allow-list does not name.
func (p *Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("") // a zoned address is in no prefix
	if p != nil {
		for _, n := range p.allowNets {
			if n.Contains(a) {
				return nil
			}
		}
	}
	if nat64.Contains(a) {
		b := a.As16()
		if err := p.CheckAddr(netip.AddrFrom4([4]byte(b[12:]))); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Addr = a
			}
			return err
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(a) {
			return &RefusedError{Addr: a, What: r.what}
		}
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return &RefusedError{Addr: a, What: "a broadcast address"}
	}
	return nil
}

// hostAllowed reports whether the allow-list names host (a host name).
func (p *Policy) hostAllowed(host string) bool {
	if p == nil {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range p.allowHosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

// Resolver looks host names up for CheckHost; net.DefaultResolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckHost checks a URL's host as an administrator sets it: a literal address against the
// ranges; "localhost" and names under it as loopback; any other name by what it resolves to
// now (within 2 s). A name that does not resolve is let through: the connection is checked
// again when it is made.
func (p *Policy) CheckHost(ctx context.Context, r Resolver, host string) error {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(a); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
			return err
		}
		return nil
	}
	if p.hostAllowed(host) {
		return nil
	}
	lower := strings.ToLower(host)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		if err := p.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
			return &RefusedError{Host: host, Addr: netip.MustParseAddr("127.0.0.1"), What: "a loopback address"}
		}
		return nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil //nolint:nilerr // checked again at connect time, when it must resolve
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
			return err
		}
	}
	return nil
}

// CheckURL checks raw's host with CheckHost. An unparseable URL is an error too.
func (p *Policy) CheckURL(ctx context.Context, r Resolver, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("owner url: %w", err)
	}
	return p.CheckHost(ctx, r, u.Hostname())
}

// control is the net.Dialer Control hook: address is the resolved ip:port being dialled.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("owner address %q: %w", address, err)
	}
	return p.CheckAddr(ap.Addr())
}

// DialContext dials like d (a zero Dialer when nil), refusing, after resolution, any address
// the policy refuses; a host name the allow-list names is dialled without the check.
func (p *Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := &net.Dialer{}
	if d != nil {
		cp := *d
		guarded = &cp
	}
	open := *guarded
	guarded.Control = p.control
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil {
			if _, aerr := netip.ParseAddr(host); aerr != nil && p.hostAllowed(host) {
				return open.DialContext(ctx, network, addr)
			}
		}
		conn, err := guarded.DialContext(ctx, network, addr)
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
		}
		return conn, err
	}
}

// Transport is an HTTP transport for owners: HTTP/2 when offered, connections pooled, every
// dial through DialContext. It uses no proxy from the environment: a proxy would dial the
// owner itself, out of the policy's reach.
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           p.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client is an HTTP client over Transport with the given overall timeout (0: none).
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Transport(), Timeout: timeout}
}
