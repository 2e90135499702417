package owner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
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

// What the database cannot store (text that is not UTF-8, a lone surrogate, NUL) is a
// permanent refusal: the same write fails the same way, so it must never be retried.
func TestBuiltinRefusesTextPostgresCannotStore(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	o := (&owner.Resolver{Store: &store.Store{Pool: pool}}).Resolve(tenant, routing.Builtin)
	ident := fhir.Identifier{System: "urn:x", Value: "1"}
	for _, value := range []string{"\"x\xffy\"", `"x\ud800y"`, `"x\udfffy"`, `"x\u0000y"`} {
		body := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}],"name":[{"family":` + value + `}]}`)
		_, err := o.Update(context.Background(), "Patient", "p1", body)
		require.ErrorIs(t, err, owner.ErrRefused, "update %s: %v", value, err)
		_, err = o.ConditionalUpdate(context.Background(), "Patient", body, ident)
		require.ErrorIs(t, err, owner.ErrRefused, "conditional update %s: %v", value, err)
		_, err = o.ConditionalCreate(context.Background(), "Patient", body, ident)
		require.ErrorIs(t, err, owner.ErrRefused, "conditional create %s: %v", value, err)
	}
}
