package gateway

import "github.com/labstack/echo/v4"

// messageRoutes serves /admin/messages: support staff's view of the inbound message log.
func messageRoutes(admin *echo.Group, h *handlers) {
	admin.GET("/messages/:id", h.getMessage)
}
