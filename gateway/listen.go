package gateway

import (
	"net"
	"net/http"
	"time"

	"github.com/nhp/interop/internal/tlscert"
)

// NewHTTPServer is the http.Server of handler (New's echo): with certs, a TLS 1.2+ server
// that offers HTTP/2 and reads its certificate from certs (reloaded when the files change);
// build handler with Deps.TLS so that its responses carry HSTS. Serve it with Serve.
func NewHTTPServer(handler http.Handler, certs *tlscert.Reloader) *http.Server {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if certs != nil {
		srv.TLSConfig = certs.ServerConfig()
	}
	return srv
}

// Serve serves srv on ln, over TLS when srv has a TLS configuration (NewHTTPServer). net/http
// negotiates HTTP/2 by ALPN on a TLS listener; plain listeners speak HTTP/1.1.
func Serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}
