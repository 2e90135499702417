package gateway

import "github.com/labstack/echo/v4"

// connectorRoutes serves /admin/connectors: the InteropConnector aggregate.
func connectorRoutes(admin *echo.Group, h *handlers) {
}
