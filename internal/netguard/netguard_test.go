package netguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/netguard"
)

// Every refused range, with an address inside it.
func TestCheckAddrRefusesEachRange(t *testing.T) {
	t.Parallel()
	cases := []struct{ addr, what string }{
		{"169.254.169.254", "a cloud metadata address"},
		{"fd00:ec2::254", "a cloud metadata address"},
		{"100.100.100.200", "a cloud metadata address"},
		{"0.0.0.0", "an unspecified address"},
		{"::", "an unspecified address"},
		{"127.0.0.1", "a loopback address"},
		{"127.10.20.30", "a loopback address"},
		{"::1", "a loopback address"},
		{"::ffff:127.0.0.1", "a loopback address"}, // IPv4-mapped
		{"10.1.2.3", "a private address"},
		{"172.16.0.1", "a private address"},
		{"172.31.255.254", "a private address"},
		{"192.168.1.1", "a private address"},
		{"100.64.0.1", "a private address"},
		{"fc00::1", "a private address"},
		{"fd12:3456::1", "a private address"},
		{"169.254.1.1", "a link-local address"},
		{"fe80::1", "a link-local address"},
		{"fe80::1%eth0", "a link-local address"},
		{"224.0.0.1", "a multicast address"},
		{"239.255.255.250", "a multicast address"},
		{"ff02::1", "a multicast address"},
		{"255.255.255.255", "a reserved or broadcast address"},
		{"64:ff9b::a9fe:a9fe", "a cloud metadata address"}, // NAT64 of 169.254.169.254
	}
	var p *netguard.Policy // nil: the strict default
	for _, tc := range cases {
		err := p.CheckAddr(netip.MustParseAddr(tc.addr))
		require.ErrorIs(t, err, netguard.ErrRefused, tc.addr)
		var re *netguard.RefusedError
		require.ErrorAs(t, err, &re)
		require.Equal(t, tc.what, re.What, tc.addr)
		require.Contains(t, err.Error(), "INTEROP_OWNER_ALLOW")
	}
	for _, ok := range []string{"8.8.8.8", "93.184.215.14", "172.32.0.1", "2606:4700::1111", "64:ff9b::808:808"} {
		require.NoError(t, p.CheckAddr(netip.MustParseAddr(ok)), ok)
	}
}

// The allow-list lets an operator name what an owner may use: CIDRs, addresses, host names.
func TestAllowList(t *testing.T) {
	t.Parallel()
	p, err := netguard.Parse("10.20.0.0/16, 192.168.7.7 fhir.internal.example,*.lab.example")
	require.NoError(t, err)
	require.NoError(t, p.CheckAddr(netip.MustParseAddr("10.20.3.4")))
	require.ErrorIs(t, p.CheckAddr(netip.MustParseAddr("10.21.3.4")), netguard.ErrRefused)
	require.NoError(t, p.CheckAddr(netip.MustParseAddr("192.168.7.7")))
	require.ErrorIs(t, p.CheckAddr(netip.MustParseAddr("192.168.7.8")), netguard.ErrRefused)
	require.ErrorIs(t, p.CheckAddr(netip.MustParseAddr("169.254.169.254")), netguard.ErrRefused)

	ctx := context.Background()
	res := fakeResolver{"fhir.internal.example": "10.99.0.1", "a.lab.example": "10.98.0.1", "rebind.example": "127.0.0.1",
		"public.example": "93.184.215.14"}
	require.NoError(t, p.CheckURL(ctx, res, "http://fhir.internal.example/fhir"), "an allowed name")
	require.NoError(t, p.CheckURL(ctx, res, "https://a.lab.example/fhir"), "a name under an allowed domain")
	require.NoError(t, p.CheckURL(ctx, res, "https://public.example/fhir"))
	require.NoError(t, p.CheckURL(ctx, res, "https://unknown.example/fhir"), "a name that does not resolve now is checked when dialled")
	err = p.CheckURL(ctx, res, "http://rebind.example:8080/fhir")
	require.ErrorIs(t, err, netguard.ErrRefused)
	require.Contains(t, err.Error(), "rebind.example resolves to 127.0.0.1, a loopback address")
	require.ErrorIs(t, p.CheckURL(ctx, res, "http://LOCALHOST:8080/fhir"), netguard.ErrRefused)
	require.ErrorIs(t, p.CheckURL(ctx, res, "http://[::1]:8080/fhir"), netguard.ErrRefused)
	require.ErrorIs(t, p.CheckURL(ctx, res, "http://169.254.169.254/latest/meta-data"), netguard.ErrRefused)

	_, err = netguard.Parse("10.0.0.0/8, not a/host")
	require.Error(t, err)

	dev, err := p.With(netguard.Loopback)
	require.NoError(t, err)
	require.NoError(t, dev.CheckURL(ctx, res, "http://localhost:8080/fhir"))
	require.NoError(t, dev.CheckAddr(netip.MustParseAddr("::1")))
	require.ErrorIs(t, p.CheckAddr(netip.MustParseAddr("127.0.0.1")), netguard.ErrRefused, "With copies: p is unchanged")
}

type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[strings.ToLower(host)]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// At connect time the resolved address is checked: a host name that resolves to loopback
// (here "localhost", as a rebinding name would) is refused when dialled, whatever the URL
// looked like when it was saved; allowed, the same request goes through.
func TestClientRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	strict := (*netguard.Policy)(nil).Client(5 * time.Second)
	for _, u := range []string{"http://localhost:" + port + "/", srv.URL + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		resp, err := strict.Get(u)
		if resp != nil {
			resp.Body.Close()
		}
		require.ErrorIs(t, err, netguard.ErrRefused, u)
		var re *netguard.RefusedError
		require.True(t, errors.As(err, &re), u)
		require.True(t, re.Addr.IsLoopback(), u)
	}

	allowed, err := netguard.Parse(netguard.Loopback)
	require.NoError(t, err)
	resp, err := allowed.Client(5 * time.Second).Get("http://localhost:" + port + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ok", string(b))

	byName, err := netguard.Parse("localhost")
	require.NoError(t, err)
	resp, err = byName.Client(5 * time.Second).Get("http://localhost:" + port + "/")
	require.NoError(t, err, "an allowed host name is dialled whatever it resolves to")
	resp.Body.Close()
	resp, err = byName.Client(5 * time.Second).Get(srv.URL + "/")
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, netguard.ErrRefused, "allowing the name does not allow the address")
}
