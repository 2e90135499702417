package fhirclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirclient"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/store"
)

const newestTenant = "t-newest"

var ident = fhir.Identifier{System: "urn:oid:1.2.3", Value: "MRN-1"}

func patientAt(family string, event time.Time) []byte {
	return []byte(`{"resourceType":"Patient","meta":{"extension":[{"url":"` + fhir.ExtSourceEventTime + `","valueDateTime":"` +
		event.UTC().Format(time.RFC3339Nano) + `"}]},"identifier":[{"system":"urn:oid:1.2.3","value":"MRN-1"}],"name":[{"family":"` + family + `"}]}`)
}

// ownerServer is the built-in store's FHIR API over real PostgreSQL, as an external owner
// would serve it, with the requests it received recorded and a hook run before each one.
type ownerServer struct {
	st     *store.Store
	mu     sync.Mutex
	seen   []string
	before func(r *http.Request)
}

func newOwner(t *testing.T) (*ownerServer, *fhirclient.Client) {
	t.Helper()
	_, pool := dbtest.New(t)
	o := &ownerServer{st: &store.Store{Pool: pool}}
	h := fhirserver.New(o.st, fhirserver.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("If-Match"))
		before := o.before
		o.mu.Unlock()
		if before != nil {
			before(r)
		}
		r.URL.Path = r.URL.Path[len("/fhir"):]
		h.ServeHTTP(w, r.WithContext(fhirserver.WithTenant(r.Context(), newestTenant)))
	}))
	t.Cleanup(srv.Close)
	return o, &fhirclient.Client{BaseURL: srv.URL + "/fhir", HTTP: srv.Client()}
}

func (o *ownerServer) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.seen
	o.seen = nil
	return out
}

func (o *ownerServer) family(t *testing.T) string {
	t.Helper()
	res, err := o.st.Search(context.Background(), newestTenant, "Patient", store.Query{Params: []store.Param{{Name: "identifier", Values: []string{ident.Token()}}}})
	require.NoError(t, err)
	require.Len(t, res.Resources, 1, "one Patient carries the identifier")
	var p struct {
		Name []struct{ Family string }
	}
	require.NoError(t, jsonUnmarshal(res.Resources[0].Body, &p))
	return p.Name[0].Family
}

// Whatever the owner itself does, an older event never overwrites a newer one: the client
// compares before it writes, and writes with If-Match on the version it compared.
func TestConditionalUpdateNewest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o, c := newOwner(t)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

	// None stored: created.
	res, err := c.ConditionalUpdateNewest(ctx, "Patient", patientAt("First", t0), ident)
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Equal(t, "First", o.family(t))
	o.requests()

	// Newer: written by id, on the version read.
	res, err = c.ConditionalUpdateNewest(ctx, "Patient", patientAt("Newer", t0.Add(time.Hour)), ident)
	require.NoError(t, err)
	require.False(t, res.Stale)
	require.Equal(t, "Newer", o.family(t))
	reqs := o.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "GET /fhir/Patient ", reqs[0])
	require.Equal(t, "PUT /fhir/Patient/"+res.ID+` W/"1"`, reqs[1], "written on the version read")

	// Older: not written at all (no PUT reaches the owner).
	res, err = c.ConditionalUpdateNewest(ctx, "Patient", patientAt("Older", t0.Add(30*time.Minute)), ident)
	require.NoError(t, err)
	require.True(t, res.Stale)
	require.Equal(t, "Newer", o.family(t))
	require.Equal(t, []string{"GET /fhir/Patient "}, o.requests())

	// A concurrent writer lands a still newer event between the read and the write: the If-Match
	// write is refused (412), the client reads again, and now finds its event older.
	var once sync.Once
	o.before = func(r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(func() {
				_, err := o.st.ConditionalUpdate(context.Background(), newestTenant, patientAt("Concurrent", t0.Add(3*time.Hour)), ident)
				require.NoError(t, err)
			})
		}
	}
	res, err = c.ConditionalUpdateNewest(ctx, "Patient", patientAt("Late", t0.Add(2*time.Hour)), ident)
	require.NoError(t, err)
	require.True(t, res.Stale)
	require.Equal(t, "Concurrent", o.family(t))
	reqs = o.requests()
	require.Len(t, reqs, 3, "read, refused write, read again: %v", reqs)
	require.Contains(t, reqs[1], `PUT /fhir/Patient/`)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
