package gateway

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/tlscert"
	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

// TestTLSListenerServesHTTP2WithHSTS serves the whole gateway on a real TLS listener with a
// certificate made here: a client negotiates h2, and every answer (open, refused, unknown
// route) carries HSTS.
func TestTLSListenerServesHTTP2WithHSTS(t *testing.T) {
	t.Parallel()
	pair := tlscerttest.Write(t, t.TempDir(), "gateway", "interop-gateway")
	certs, err := tlscert.New(pair.CertFile, pair.KeyFile, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s := newAPIServer(t, func(d *Deps) { d.TLS = true })
	srv := NewHTTPServer(s.e, certs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = Serve(srv, ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pair.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
	}}
	base := "https://" + ln.Addr().String()
	for path, status := range map[string]int{"/healthz": 200, "/fhir/metadata": 200, "/fhir/Patient": 401, "/nowhere": 404} {
		resp, err := c.Get(base + path)
		require.NoError(t, err, path)
		resp.Body.Close()
		require.Equal(t, status, resp.StatusCode, path)
		require.Equal(t, "HTTP/2.0", resp.Proto, path)
		require.Equal(t, "h2", resp.TLS.NegotiatedProtocol, path)
		require.Equal(t, httpkit.HSTSValue, resp.Header.Get("Strict-Transport-Security"), path)
	}
}

// TestNoHSTSWithoutTLS: a plain listener never claims HTTPS.
func TestNoHSTSWithoutTLS(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	srv := NewHTTPServer(s.e, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = Serve(srv, ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	for _, path := range []string{"/healthz", "/fhir/Patient", "/nowhere"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Empty(t, resp.Header.Get("Strict-Transport-Security"), path)
	}
}
