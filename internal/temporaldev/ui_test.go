package temporaldev

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// A read-only UI refuses every write action at its API, whatever the browser shows; a
// writable one passes them to the frontend.
func TestUIReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	terminate := func(readOnly bool) int {
		// The frontend address is never dialled for a refused write (gRPC connects lazily).
		ui, err := newWebUI(uiOptions{frontend: "127.0.0.1:1", namespace: "default", readOnly: readOnly})
		require.NoError(t, err)
		t.Cleanup(func() { _ = ui.conn.Close(); ui.cfg.Close() })

		// The UI's own CSRF handshake: the cookie from a GET, sent back as the header.
		get := httptest.NewRecorder()
		ui.http.Handler.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/api/v1/settings", nil))
		require.Equal(t, http.StatusOK, get.Code)
		var token string
		for _, c := range get.Result().Cookies() {
			if c.Name == "_csrf" {
				token = c.Value
			}
		}
		require.NotEmpty(t, token, "the UI issues its CSRF cookie")

		req := httptest.NewRequest(http.MethodPost, "/api/v1/namespaces/default/workflows/HL7Message:x/terminate", nil)
		req.AddCookie(&http.Cookie{Name: "_csrf", Value: token}) //nolint:gosec // G124: a cookie a test client sends back, not one it sets
		req.Header.Set("X-CSRF-Token", token)
		rec := httptest.NewRecorder()
		ui.http.Handler.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusMethodNotAllowed, terminate(true))
	code := terminate(false)
	require.NotEqual(t, http.StatusMethodNotAllowed, code, "a writable UI lets the write through to the frontend")
	require.NotEqual(t, http.StatusForbidden, code, "the CSRF handshake passed: only the read-only switch refuses")
}
