package inbound

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/tlscert"
	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

// TestListenersTLS: a connector whose settings ask for TLS listens with the process's MLLP
// certificate and refuses a plain sender at the handshake; with a clientCA it also refuses a
// sender without a certificate, or with one from another authority, and accepts one the CA
// vouches for. Each refusal is a closed connection, never an ACK, and stores nothing.
func TestListenersTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	dir := t.TempDir()
	server := tlscerttest.Write(t, dir, "server", "interop.test")
	sender := tlscerttest.Write(t, dir, "sender", "Central Lab sender")
	stranger := tlscerttest.Write(t, dir, "stranger", "Somebody else")
	senderPEM, err := os.ReadFile(sender.CertFile)
	require.NoError(t, err)
	caJSON, err := json.Marshal(string(senderPEM))
	require.NoError(t, err)

	certs, err := tlscert.New(server.CertFile, server.KeyFile, discardLogger())
	require.NoError(t, err)
	l := newListeners(t, pool)
	l.TLSCertificate = certs.GetCertificate
	plainTLS := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f1", Name: "tls", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: `{"tls": {}}`})
	mutual := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f2", Name: "mutual", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: `{"tls": {"clientCA": ` + string(caJSON) + `}}`})
	require.NoError(t, l.Reconcile(ctx))

	trusting := &tls.Config{RootCAs: server.Pool, MinVersion: tls.VersionTLS12}
	withCert := func(p tlscerttest.Pair) *tls.Config {
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		require.NoError(t, err)
		c := trusting.Clone()
		c.Certificates = []tls.Certificate{cert}
		return c
	}

	// Server-authenticated TLS: a TLS sender is acknowledged; a plain one is cut off.
	requireTLSAccepts(t, l.Addr(plainTLS.ID), trusting, "TLS-1")
	requireTLSRefused(t, l.Addr(plainTLS.ID), nil, "PLAIN-1")
	// TLS older than 1.2 is refused by the listener, in the handshake.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	old := &tls.Config{RootCAs: server.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // G402: the old sender the listener must refuse
	_, err = mllp.Dial(dctx, l.Addr(plainTLS.ID), mllp.WithTLSConfig(old))
	cancel()
	require.ErrorContains(t, err, "protocol version")

	// Mutual TLS.
	requireTLSAccepts(t, l.Addr(mutual.ID), withCert(sender), "MTLS-1")
	requireTLSRefused(t, l.Addr(mutual.ID), trusting, "MTLS-NOCERT")
	requireTLSRefused(t, l.Addr(mutual.ID), withCert(stranger), "MTLS-STRANGER")
	requireTLSRefused(t, l.Addr(mutual.ID), nil, "MTLS-PLAIN")

	require.Equal(t, 2, count(t, pool, "SELECT count(*) FROM hl7_messages"), "only the two accepted messages are stored")
	require.Equal(t, 1, count(t, pool, "SELECT count(*) FROM hl7_messages WHERE message_control_id = 'MTLS-1' AND connector_id = $1", mutual.ID))
}

// TestListenersTLSWithoutCertificate: a connector that asks for TLS in a process with no MLLP
// certificate does not listen in plain text instead; its health names what to set.
func TestListenersTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	l := newListeners(t, pool)
	c := insertConnector(t, q, connectorSpec{Tenant: "t-one", Facility: "f1", Name: "tls", Port: freePort(t),
		Status: db.ConnectorStatusActive, Settings: `{"tls": {}}`})
	err := l.Reconcile(ctx)
	require.Error(t, err)
	require.Empty(t, l.Addr(c.ID))
	state, ok := l.State(c.ID)
	require.True(t, ok)
	require.False(t, state.Listening)
	require.Contains(t, state.LastError, "INTEROP_MLLP_TLS_CERT")
	requireRefused(t, state.Addr)
}

// requireTLSAccepts sends id over TLS (cfg) and requires its AA.
func requireTLSAccepts(t *testing.T, addr string, cfg *tls.Config, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr, mllp.WithTLSConfig(cfg))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	_, ack := sendOn(t, c, message(t, id))
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, id, ack.ControlID)
}

// requireTLSRefused sends id over TLS (cfg), or plain TCP when cfg is nil, and requires that
// no reply comes: the connection fails or closes, promptly, not by the test's own deadline.
// (A TLS 1.3 client learns of a refused certificate only when it reads, hence the send.)
func requireTLSRefused(t *testing.T, addr string, cfg *tls.Config, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var opts []mllp.DialOption
	if cfg != nil {
		opts = append(opts, mllp.WithTLSConfig(cfg))
	}
	c, err := mllp.Dial(ctx, addr, opts...)
	if err != nil {
		return
	}
	defer func() { _ = c.Close() }()
	reply, err := c.Send(ctx, message(t, id))
	require.Error(t, err, "reply %q", reply)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "closed, not left waiting: %v", err)
}
