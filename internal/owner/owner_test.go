package owner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/owner"
	"github.com/nhp/interop/internal/owner/ownertest"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

const tenant = "t-owner"

// The built-in store over real PostgreSQL, in-process.
func TestBuiltin(t *testing.T) {
	t.Parallel()
	ownertest.Run(t, ownertest.Options{UpdateTellsUnchanged: true}, func(t *testing.T) owner.Owner {
		_, pool := dbtest.New(t)
		r := &owner.Resolver{Store: &store.Store{Pool: pool}}
		return r.Resolve(tenant, routing.Builtin)
	})
}

// A FHIR server over HTTP: the service's own store served by its FHIR handler, under a path,
// as `interop store` serves it.
func TestRemote(t *testing.T) {
	t.Parallel()
	ownertest.Run(t, ownertest.Options{}, func(t *testing.T) owner.Owner {
		_, pool := dbtest.New(t)
		var h http.Handler
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/fhir/") || r.Header.Get("Authorization") != "Bearer tok-"+tenant {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/fhir")
			h.ServeHTTP(w, r.WithContext(fhirserver.WithTenant(r.Context(), tenant)))
		}))
		t.Cleanup(srv.Close)
		h = fhirserver.New(&store.Store{Pool: pool}, fhirserver.Options{BaseURL: srv.URL + "/fhir"})
		r := &owner.Resolver{HTTP: srv.Client(), Token: func(_ context.Context, tenant, _ string) (string, error) { return "tok-" + tenant, nil }}
		return r.Resolve(tenant, srv.URL+"/fhir")
	})
}
