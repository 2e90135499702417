package httpkit

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// Data the database refuses (db.ErrInvalidData, e.g. text with NUL) is answered 400
// invalid, never a 500 with the driver's text.
func TestErrorHandlerInvalidData(t *testing.T) {
	t.Parallel()
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodPost, "/admin/x", nil), rec)
	ErrorHandler(slog.New(slog.DiscardHandler))(fmt.Errorf("insert: %w: ERROR: invalid byte sequence (SQLSTATE 22021)", db.ErrInvalidData), c)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"invalid"`)
	require.NotContains(t, rec.Body.String(), "SQLSTATE")
}
