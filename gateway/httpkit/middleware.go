package httpkit

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

// Verifier checks bearer tokens.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

const principalKey = "principal"

// Authenticate verifies the bearer token with v and stores the principal for handlers
// (Principal); a refused token is logged at info level on logger.
func Authenticate(v Verifier, logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return authenticate(v, logger, next)
	}
}

func authenticate(v Verifier, logger *slog.Logger, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		// The auth scheme is case-insensitive (RFC 7235 §2.1): "bearer" is as good as "Bearer".
		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="interop"`)
			return NewOutcome(http.StatusUnauthorized, fhir.IssueLogin, "missing bearer token: send Authorization: Bearer <token> (see `interop token`)")
		}
		p, err := v.Verify(token)
		if err != nil {
			logger.Info("token refused", "error", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="interop", error="invalid_token"`)
			return NewOutcome(http.StatusUnauthorized, fhir.IssueLogin, "invalid or expired bearer token")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// Principal is the caller Authenticate verified; the zero Principal on a route without it.
func Principal(c echo.Context) auth.Principal {
	p, _ := c.Get(principalKey).(auth.Principal)
	return p
}

// RequireScope refuses callers without scope with 403.
func RequireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !Principal(c).Scopes.Has(scope) {
				return NewOutcome(http.StatusForbidden, fhir.IssueForbidden, "this endpoint needs scope "+scope)
			}
			return next(c)
		}
	}
}

// RequireInteraction is a 403 error unless the caller's scopes allow in on resourceType.
func RequireInteraction(c echo.Context, resourceType string, in auth.Interaction) error {
	if !Principal(c).Scopes.Allows(resourceType, in) {
		return NewOutcome(http.StatusForbidden, fhir.IssueForbidden,
			"token scopes do not grant '"+string(rune(in))+"' on "+resourceType)
	}
	return nil
}

// FHIRFormat honours _format and Accept: JSON only (XML is not offered), answered as
// application/fhir+json.
func FHIRFormat(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		format := c.QueryParam("_format")
		switch format {
		case "", "json", "application/json", "application/fhir+json", "application/json+fhir":
		default:
			return NewOutcome(http.StatusNotAcceptable, fhir.IssueNotSupported, "_format "+format+" is not supported; use json")
		}
		if accept := c.Request().Header.Get(echo.HeaderAccept); format == "" && !acceptsJSON(accept) {
			return NewOutcome(http.StatusNotAcceptable, fhir.IssueNotSupported, "Accept: "+accept+" names no format served here; this server answers application/fhir+json")
		}
		return next(c)
	}
}

// acceptsJSON reports whether an Accept header admits a JSON answer: absent, a JSON media
// type, or a wildcard that covers one. The server speaks FHIR JSON only; a client that can
// read only XML (or anything else) is told so (406) rather than sent what it cannot read.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		media, params, _ := strings.Cut(part, ";")
		media = strings.ToLower(strings.TrimSpace(media))
		if strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") && !strings.Contains(params, "q=0.") {
			continue // q=0: not acceptable
		}
		if media == "*/*" || media == "application/*" || strings.HasSuffix(media, "json") || strings.HasSuffix(media, "+json") {
			return true
		}
	}
	return false
}

// BodyLimit refuses request bodies over limit bytes with 413; a handler reading past limit
// gets an error IsBodyTooLarge recognises.
func BodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// IsBodyTooLarge reports whether err is the read error of a body over BodyLimit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// RequestLogger logs each request (debug, or warn for 5xx) after the error handler ran.
func RequestLogger(logger *slog.Logger) echo.MiddlewareFunc {
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

// HSTSValue is the Strict-Transport-Security header of a TLS listener: one year, as browsers'
// preload lists expect at least.
const HSTSValue = "max-age=31536000"

// HSTS sets Strict-Transport-Security on every response, errors and unknown routes included.
// Mount it (with echo's Pre) only when the listener serves TLS: over plain HTTP the header is
// meaningless, and it must never claim HTTPS for a host that does not serve it.
func HSTS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Strict-Transport-Security", HSTSValue)
		return next(c)
	}
}
