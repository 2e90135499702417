package main

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

// TestSendTLS: `interop send` speaks MLLP over TLS with --ca, and presents --cert/--key to a
// listener that requires a client certificate; without the certificate, or over plain TCP, it
// fails with an error instead of printing an ACK.
func TestSendTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	server := tlscerttest.Write(t, dir, "server", "listener")
	sender := tlscerttest.Write(t, dir, "sender", "sender")
	serverCert, err := tls.LoadX509KeyPair(server.CertFile, server.KeyFile)
	require.NoError(t, err)
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ mllp.ConnInfo, msg []byte) []byte {
		h, err := hl7v2.ReadHeader(msg)
		if err != nil {
			return nil
		}
		ack, err := hl7v2.BuildAck(h, hl7v2.AckInput{Code: hl7v2.AppAccept, ControlID: "ACK-" + h.ControlID})
		if err != nil {
			return nil
		}
		return ack
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		_ = srv.Serve(tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: sender.Pool,
		}))
	}()
	t.Cleanup(func() { _ = srv.Close() })

	file := filepath.Join(dir, "a01.hl7")
	require.NoError(t, os.WriteFile(file, []byte("MSH|^~\\&|LAB|CENTRAL|INTEROP|NHP|20250101120000||ADT^A01|TLS-1|P|2.5.1\rPID|||123^^^HOSP^MR||Doe^Jane\r"), 0o600))
	run := func(cmd sendCmd) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd.To, cmd.Timeout, cmd.Files = ln.Addr().String(), 5*time.Second, []string{file}
		return cmd.Run(ctx)
	}

	require.NoError(t, run(sendCmd{CA: server.CertFile, Cert: sender.CertFile, Key: sender.KeyFile}))
	require.Error(t, run(sendCmd{CA: server.CertFile}), "no client certificate")
	require.Error(t, run(sendCmd{}), "plain TCP")
	require.ErrorContains(t, run(sendCmd{TLS: true}), "certificate", "the listener's certificate is not trusted without --ca")
	require.ErrorContains(t, run(sendCmd{CA: server.CertFile, Cert: sender.CertFile}), "--cert and --key go together")
}
