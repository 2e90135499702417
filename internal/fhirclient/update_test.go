package fhirclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUpdate(t *testing.T) {
	t.Parallel()
	var method, path, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		method, path, body = r.Method, r.URL.Path, string(b)
		switch r.URL.Path {
		case "/fhir/MessageHeader/mh-1":
			w.Header().Set("Location", "http://owner/fhir/MessageHeader/mh-1/_history/2")
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/fhir", HTTP: srv.Client()}

	res, err := c.Update(context.Background(), "MessageHeader", "mh-1", []byte(`{"resourceType":"MessageHeader","id":"mh-1"}`))
	require.NoError(t, err)
	require.Equal(t, WriteResult{ID: "mh-1", VersionID: "2"}, res)
	require.Equal(t, http.MethodPut, method)
	require.Equal(t, "/fhir/MessageHeader/mh-1", path)
	require.Equal(t, `{"resourceType":"MessageHeader","id":"mh-1"}`, body)

	_, err = c.Update(context.Background(), "Provenance", "p1", []byte(`{}`))
	require.True(t, IsPermanent(err), "an owner refusing client ids refuses for good")
}
