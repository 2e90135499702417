package tlscert

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

// serve runs an HTTP server on a TLS listener configured by r and returns its URL.
func serve(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { _, _ = io.WriteString(w, req.Proto) }), //nolint:gosec // G705: the test server echoes its own protocol name
		TLSConfig:         r.ServerConfig(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

func client(t *testing.T, p tlscerttest.Pair) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
	}}
}

func TestServesHTTP2OverTLS12Plus(t *testing.T) {
	t.Parallel()
	p := tlscerttest.Write(t, t.TempDir(), "server", "interop-test")
	r, err := New(p.CertFile, p.KeyFile, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	url := serve(t, r)

	resp, err := client(t, p).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 2, resp.ProtoMajor, "h2 negotiated")
	require.Equal(t, "h2", resp.TLS.NegotiatedProtocol)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))

	// A TLS 1.1 client is refused.
	oldTLS := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // G402: the client that must be refused
	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: oldTLS}}
	_, err = old.Get(url)
	require.Error(t, err)
}

func TestRefusesMismatchedOrMissingFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := tlscerttest.Write(t, dir, "a", "a")
	b := tlscerttest.Write(t, dir, "b", "b")
	_, err := New(a.CertFile, b.KeyFile, nil)
	require.ErrorContains(t, err, "private key does not match public key")
	require.ErrorContains(t, err, a.CertFile)

	_, err = New(dir+"/missing.crt", a.KeyFile, nil)
	require.ErrorContains(t, err, "INTEROP_TLS_CERT")
	_, err = New(a.CertFile, "", nil)
	require.ErrorContains(t, err, "set together")

	garbage := dir + "/garbage.crt"
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))
	_, err = New(garbage, a.KeyFile, nil)
	require.ErrorContains(t, err, garbage)
}

func TestReloadsAChangedCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := tlscerttest.Write(t, dir, "server", "first")
	r, err := New(first.CertFile, first.KeyFile, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	url := serve(t, r)
	resp, err := client(t, first).Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "first", resp.TLS.PeerCertificates[0].Subject.CommonName)

	// A renewal rewrites both files; a half-done one (the key not yet written) keeps the old.
	second := tlscerttest.Write(t, t.TempDir(), "server", "second")
	certPEM, err := os.ReadFile(second.CertFile)
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(second.KeyFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(first.CertFile, certPEM, 0o600))
	later := time.Now().Add(2 * time.Second)
	require.NoError(t, os.Chtimes(first.CertFile, later, later))
	r.mu.Lock()
	r.lastStat = time.Time{}
	r.mu.Unlock()
	resp, err = client(t, first).Get(url)
	require.NoError(t, err, "the old certificate is still served while the key does not match")
	resp.Body.Close()

	require.NoError(t, os.WriteFile(first.KeyFile, keyPEM, 0o600))
	require.NoError(t, os.Chtimes(first.KeyFile, later, later))
	r.mu.Lock()
	r.lastStat = time.Time{}
	r.mu.Unlock()
	c := client(t, second)
	resp, err = c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "second", resp.TLS.PeerCertificates[0].Subject.CommonName)
}
