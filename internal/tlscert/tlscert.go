// Package tlscert serves the HTTP listener's TLS certificate from PEM files and picks up a
// renewed certificate without a restart: GetCertificate re-reads the files when their
// modification time changes (a renewal tool such as certbot or cert-manager rewrites them).
package tlscert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reloader holds the certificate of CertFile and KeyFile and reloads it when either file
// changes. Safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certMod  time.Time
	keyMod   time.Time
	lastStat time.Time
}

// statEvery bounds how often the files are stat'ed: at most once a second, whatever the
// handshake rate.
const statEvery = time.Second

// New loads the certificate (PEM, the leaf first, then its chain) and its private key. A
// missing, unreadable or mismatched pair is an error that names the files, so that start-up
// fails with a message an operator can act on.
func New(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("INTEROP_TLS_CERT and INTEROP_TLS_KEY must be set together")
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger}
	certMod, keyMod, err := r.modTimes()
	if err != nil {
		return nil, err
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.certMod, r.keyMod, r.lastStat = cert, certMod, keyMod, time.Now()
	return r, nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

func (r *Reloader) modTimes() (cert, key time.Time, err error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return cert, key, fmt.Errorf("TLS certificate (INTEROP_TLS_CERT): %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return cert, key, fmt.Errorf("TLS key (INTEROP_TLS_KEY): %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate is tls.Config's GetCertificate: the current certificate, reloaded first when
// a file changed. A reload that fails (a half-written renewal, a key that does not match yet)
// keeps serving the certificate loaded before and is retried on a later handshake.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.lastStat) < statEvery {
		return r.cert, nil
	}
	r.lastStat = now
	certMod, keyMod, err := r.modTimes()
	if err != nil {
		r.logger.Warn("tls: cannot stat the certificate files; serving the loaded certificate", "error", err)
		return r.cert, nil
	}
	if certMod.Equal(r.certMod) && keyMod.Equal(r.keyMod) {
		return r.cert, nil
	}
	cert, err := load(r.certFile, r.keyFile)
	if err != nil {
		r.logger.Warn("tls: reloading the certificate failed; serving the loaded certificate", "error", err)
		return r.cert, nil
	}
	r.cert, r.certMod, r.keyMod = cert, certMod, keyMod
	r.logger.Info("tls: certificate reloaded", "cert_file", r.certFile)
	return r.cert, nil
}

// ServerConfig is the listener's TLS configuration: TLS 1.2 or later, HTTP/2 offered first
// (net/http serves h2 on a TLS listener whose NextProtos include it), the certificate from r.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.GetCertificate,
	}
}
