package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
)

const principalKey = "principal"

// authenticate verifies the bearer token and stores the principal for handlers.
func (h *handlers) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		// The auth scheme is case-insensitive (RFC 7235 §2.1): "bearer" is as good as "Bearer".
		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="interop"`)
			return newOutcome(http.StatusUnauthorized, fhir.IssueLogin, "missing bearer token: send Authorization: Bearer <token> (see `interop token`)")
		}
		p, err := h.d.Auth.Verify(token)
		if err != nil {
			h.d.Logger.Info("token refused", "error", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="interop", error="invalid_token"`)
			return newOutcome(http.StatusUnauthorized, fhir.IssueLogin, "invalid or expired bearer token")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principal(c echo.Context) auth.Principal {
	p, _ := c.Get(principalKey).(auth.Principal)
	return p
}

func requireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !principal(c).Scopes.Has(scope) {
				return newOutcome(http.StatusForbidden, fhir.IssueForbidden, "this endpoint needs scope "+scope)
			}
			return next(c)
		}
	}
}

func requireInteraction(c echo.Context, resourceType string, in auth.Interaction) error {
	if !principal(c).Scopes.Allows(resourceType, in) {
		return newOutcome(http.StatusForbidden, fhir.IssueForbidden,
			"token scopes do not grant '"+string(rune(in))+"' on "+resourceType)
	}
	return nil
}

// fhirFormat honours _format and Accept: JSON only (XML is not offered), answered as
// application/fhir+json.
func fhirFormat(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		format := c.QueryParam("_format")
		switch format {
		case "", "json", "application/json", "application/fhir+json", "application/json+fhir":
		default:
			return newOutcome(http.StatusNotAcceptable, fhir.IssueNotSupported, "_format "+format+" is not supported; use json")
		}
		return next(c)
	}
}

func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > max {
				return newOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, max)
			return next(c)
		}
	}
}

func isBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			level := slog.LevelDebug
			if c.Response().Status >= 500 {
				level = slog.LevelWarn
			}
			logger.Log(c.Request().Context(), level, "http request",
				"method", c.Request().Method, "route", c.Path(), "status", c.Response().Status,
				"duration_ms", time.Since(start).Milliseconds(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			return nil
		}
	}
}
