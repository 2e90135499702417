package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/internal/tlscert/tlscerttest"
)

// TestTLSStartupRefusesMismatchedKey: a certificate with another certificate's key, or a
// missing file, stops the gateway and dev at start-up — before any database or Temporal —
// with a message naming the files, and a non-zero exit status.
func TestTLSStartupRefusesMismatchedKey(t *testing.T) {
	dir := t.TempDir()
	a := tlscerttest.Write(t, dir, "a", "a")
	b := tlscerttest.Write(t, dir, "b", "b")
	cfg := config.Default()
	cfg.DatabaseURL = "postgres://nobody@127.0.0.1:1/none?sslmode=disable" // never reached
	cfg.TLSCertFile, cfg.TLSKeyFile = a.CertFile, b.KeyFile
	cfg.DataDir = dir

	err := gatewayCmd{}.Run(context.Background(), &cfg)
	require.ErrorContains(t, err, "private key does not match public key")
	require.ErrorContains(t, err, a.CertFile)
	err = devCmd{}.Run(context.Background(), &cfg)
	require.ErrorContains(t, err, "private key does not match public key")

	cfg.TLSKeyFile = dir + "/missing.key"
	err = gatewayCmd{}.Run(context.Background(), &cfg)
	require.ErrorContains(t, err, "INTEROP_TLS_KEY")

	t.Setenv("DATABASE_URL", cfg.DatabaseURL)
	t.Setenv("INTEROP_TLS_CERT", a.CertFile)
	t.Setenv("INTEROP_TLS_KEY", b.KeyFile)
	require.Equal(t, 1, run([]string{"gateway"}))
	t.Setenv("INTEROP_TLS_KEY", "")
	require.Equal(t, 1, run([]string{"gateway"}), "a certificate without a key")
}
