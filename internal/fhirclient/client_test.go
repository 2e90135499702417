package fhirclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
)

func TestConditionalCreate(t *testing.T) {
	t.Parallel()
	var gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader = r.Header.Get("If-None-Exist")
		switch r.URL.Path {
		case "/fhir/Patient":
			w.Header().Set("Location", "http://owner/fhir/Patient/p1/_history/3")
			w.WriteHeader(http.StatusCreated)
		case "/fhir/Encounter":
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad status"}]}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/fhir/", HTTP: srv.Client()}
	ctx := context.Background()

	res, err := c.ConditionalCreate(ctx, "Patient", []byte(`{"resourceType":"Patient"}`), fhir.Identifier{System: "urn:oid:1.2", Value: "a b"})
	require.NoError(t, err)
	require.Equal(t, WriteResult{ID: "p1", VersionID: "3", Created: true}, res)
	require.Equal(t, "identifier=urn%3Aoid%3A1.2%7Ca+b", gotHeader)

	_, err = c.ConditionalCreate(ctx, "Encounter", []byte(`{}`), fhir.Identifier{Value: "v"})
	require.True(t, IsPermanent(err))
	require.ErrorContains(t, err, "bad status")

	_, err = c.ConditionalCreate(ctx, "Observation", []byte(`{}`), fhir.Identifier{Value: "v"})
	require.Error(t, err)
	require.False(t, IsPermanent(err), "a 503 is worth retrying")
}
