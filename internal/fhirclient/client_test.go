package fhirclient

import (
	"context"
	"io"
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

func TestOpen(t *testing.T) {
	t.Parallel()
	var gotAuth, gotPrefer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPrefer = r.Header.Get("Authorization"), r.Header.Get("Prefer")
		switch r.URL.Path {
		case "/fhir/Observation":
			_, _ = w.Write([]byte(`{"resourceType":"Bundle"}`))
		case "/fhir/Unknown":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"unknown parameter"}]}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/fhir", HTTP: srv.Client(), Authorization: "Bearer t"}
	ctx := context.Background()

	resp, err := c.Open(ctx, srv.URL+"/fhir/Observation?_count=2", http.Header{"Prefer": {"handling=strict"}})
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.JSONEq(t, `{"resourceType":"Bundle"}`, string(body))
	require.Equal(t, "Bearer t", gotAuth)
	require.Equal(t, "handling=strict", gotPrefer)

	_, err = c.Open(ctx, srv.URL+"/fhir/Unknown", nil)
	require.True(t, IsPermanent(err))
	require.ErrorContains(t, err, "unknown parameter")
	_, err = c.Open(ctx, srv.URL+"/fhir/Other", nil)
	require.Error(t, err)
	require.False(t, IsPermanent(err))

	gotAuth = ""
	for _, u := range []string{"http://elsewhere.example/fhir/Observation", srv.URL + "/fhirx/Observation", srv.URL + "/Observation", "/fhir/Observation"} {
		_, err = c.Open(ctx, u, nil)
		require.ErrorIs(t, err, ErrNotUnderBase, u)
	}
	require.Empty(t, gotAuth, "the token never leaves the owner")
	require.True(t, c.UnderBase(srv.URL+"/fhir"))
	require.True(t, (&Client{BaseURL: srv.URL + "/fhir/"}).UnderBase(srv.URL+"/fhir/Patient?x=1"))
}
