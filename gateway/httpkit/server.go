package httpkit

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// NewServer is the echo server every room is mounted on: errors answered as
// OperationOutcomes, panics recovered, a request id on every response, each request logged
// and, with m, counted. The gateway's New mounts the rooms on it; a room's tests mount that
// room alone on the same stack.
func NewServer(logger *slog.Logger, m *Metrics) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = ErrorHandler(logger)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true}))
	e.Use(middleware.RequestID())
	e.Use(RequestLogger(logger))
	e.Use(ValidQuery)
	if m != nil {
		e.Use(m.Middleware())
	}
	return e
}
