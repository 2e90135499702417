package mllp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientRoundTrip(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialClient(t, addr)
	require.Equal(t, addr, c.RemoteAddr().String())
	msg := "MSH|^~\\&|SND|FAC|RCV|FAC|20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H||Müller^Zoë\r"
	require.Equal(t, "ACK|"+msg, send(t, c, msg))
	require.Equal(t, "ACK|", send(t, c, ""))
}

func TestClientNoReplyDeadline(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		if string(msg) == "silent" {
			return nil
		}
		return append([]byte("ACK|"), msg...)
	})
	addr := serve(t, &Server{Handler: h})
	c := dialClient(t, addr)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, []byte("silent"))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The late reply of a failed exchange could be taken for the next
	// one's, so the client refuses to go on.
	_, err = c.Send(t.Context(), []byte("next"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "unusable")
}

func TestClientCancel(t *testing.T) {
	started := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, _ ConnInfo, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		return nil
	})
	s := &Server{Handler: h}
	addr, _ := startServer(t, s)
	c := dialClient(t, addr)

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.Send(ctx, []byte("1"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestClientContextAlreadyDone(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialClient(t, addr)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Send(ctx, []byte("1"))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "ACK|2", send(t, c, "2"), "nothing was sent, so the client is still usable")
}

func TestClientDeadlineClearedBetweenSends(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialClient(t, addr)
	deadline := time.Now().Add(500 * time.Millisecond)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	reply, err := c.Send(ctx, []byte("1"))
	cancel()
	require.NoError(t, err)
	require.Equal(t, "ACK|1", string(reply))
	time.Sleep(time.Until(deadline) + 50*time.Millisecond)
	reply, err = c.Send(context.Background(), []byte("2"))
	require.NoError(t, err)
	require.Equal(t, "ACK|2", string(reply))
}

func TestClientInvalidPayloadKeepsClientUsable(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	c := dialClient(t, addr)
	_, err := c.Send(t.Context(), []byte("MSH\v"))
	require.ErrorIs(t, err, ErrInvalidPayload)
	require.Equal(t, "ACK|ok", send(t, c, "ok"))
}

func TestClientServerClosesWithoutReply(t *testing.T) {
	h := HandlerFunc(func(context.Context, ConnInfo, []byte) []byte { panic("no reply") })
	addr := serve(t, &Server{Handler: h})
	c := dialClient(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := c.Send(ctx, []byte("1"))
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "Send must fail on close, not on the deadline")
}

func TestClientReplyTooLarge(t *testing.T) {
	addr := serve(t, &Server{Handler: ackHandler()})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, addr, WithMaxMessageSize(8))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Send(ctx, []byte("longer than eight"))
	require.ErrorIs(t, err, ErrFrameTooLarge)
}

func TestDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err = Dial(ctx, addr, WithDialer(&net.Dialer{Timeout: testTimeout}))
	require.Error(t, err)
	require.ErrorContains(t, err, addr)
}

// selfSignedTLS returns a server configuration for 127.0.0.1 and a client
// configuration trusting it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mllp test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// TestServerTLSPeer: behind a mutual-TLS listener the handler sees the subject of the client
// certificate the handshake verified; a peer that connects and never handshakes is closed
// after ReadTimeout like an idle one.
func TestServerTLSPeer(t *testing.T) {
	serverCfg, clientCfg := selfSignedTLS(t)
	serverCfg.ClientAuth = tls.RequireAndVerifyClientCert
	serverCfg.ClientCAs = clientCfg.RootCAs
	clientCfg.Certificates = serverCfg.Certificates // self-signed: its own CA
	peers := make(chan string, 1)
	s := &Server{
		Handler: HandlerFunc(func(_ context.Context, conn ConnInfo, msg []byte) []byte {
			peers <- conn.TLSPeer
			return append([]byte("ACK|"), msg...)
		}),
		ReadTimeout: 300 * time.Millisecond,
		Logger:      slog.New(slog.DiscardHandler),
	}
	l, served := serveTLS(t, s, serverCfg)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, l.Addr().String(), WithTLSConfig(clientCfg))
	require.NoError(t, err)
	reply, err := c.Send(ctx, []byte("MSH|peer"))
	require.NoError(t, err)
	require.Equal(t, "ACK|MSH|peer", string(reply))
	require.Equal(t, "CN=mllp test", <-peers)
	require.NoError(t, c.Close())

	silent, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer func() { _ = silent.Close() }()
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(testTimeout)))
	_, err = silent.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "closed by the server, not by the test's deadline")

	require.NoError(t, s.Shutdown(ctx))
	require.ErrorIs(t, <-served, ErrServerClosed)
}

func TestClientTLS(t *testing.T) {
	serverCfg, clientCfg := selfSignedTLS(t)
	s := &Server{Handler: ackHandler(), Logger: slog.New(slog.DiscardHandler)}
	l, served := serveTLS(t, s, serverCfg)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, l.Addr().String(), WithTLSConfig(clientCfg))
	require.NoError(t, err)
	reply, err := c.Send(ctx, []byte("MSH|tls"))
	require.NoError(t, err)
	require.Equal(t, "ACK|MSH|tls", string(reply))
	require.NoError(t, c.Close())

	// A client that does not trust the certificate fails to connect.
	_, err = Dial(ctx, l.Addr().String(), WithTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	require.Error(t, err)

	require.NoError(t, s.Shutdown(ctx))
	require.ErrorIs(t, <-served, ErrServerClosed)
}

// serveTLS runs s on a TLS listener on loopback; served gets what Serve returns.
func serveTLS(t *testing.T, s *Server, cfg *tls.Config) (net.Listener, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(tls.NewListener(l, cfg)) }()
	return l, served
}
