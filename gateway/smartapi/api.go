// Package smartapi is the SMART Backend Services authorization server's HTTP side: the token
// endpoint (POST /auth/token, client_credentials with a private_key_jwt client assertion), the
// discovery document (/.well-known/smart-configuration, at the root and under /fhir, where
// SMART clients look for it) and the access tokens' public keys (/.well-known/jwks.json). The
// logic is internal/smart; clients are registered through the admin API (/admin/clients).
package smartapi

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/smart"
)

// Paths of the room.
const (
	TokenPath     = "/auth/token" //nolint:gosec // G101: a URL path, not a credential
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/smart-configuration"
)

// maxFormBytes bounds a token request: a client assertion is a few KiB.
const maxFormBytes = 64 << 10

// ScopesSupported are the scopes the discovery document advertises: SMART v2 system scopes on
// any type (clients may narrow them to types and letters) and the admin scope.
var ScopesSupported = []string{"system/*.cruds", "system/*.rs", "system/*.r", "system/*.s", "system/*.c", "system/*.u", "system/*.d", "interop/admin"}

// API serves the room.
type API struct {
	Server *smart.Server
	// BaseURL is the gateway's public base (the token URL is BaseURL + TokenPath).
	BaseURL string
	Logger  *slog.Logger
	// Audit, when set, records each token request (auditlog.Middleware of the Token room).
	Audit echo.MiddlewareFunc
}

// Routes registers the room on e.
func (a *API) Routes(e *echo.Echo) {
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	mw := []echo.MiddlewareFunc{httpkit.BodyLimit(maxFormBytes)}
	if a.Audit != nil {
		mw = append([]echo.MiddlewareFunc{a.Audit}, mw...)
	}
	e.POST(TokenPath, a.token, mw...)
	e.GET(JWKSPath, a.jwks)
	e.GET(DiscoveryPath, a.discovery)
	e.GET("/fhir"+DiscoveryPath, a.discovery)
}

// TokenURL is the token endpoint of a gateway at baseURL.
func TokenURL(baseURL string) string { return baseURL + TokenPath }

// oauthError is RFC 6749 §5.2's error response.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func noStore(c echo.Context) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}

func (a *API) token(c echo.Context) error {
	noStore(c)
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationForm {
		return c.JSON(http.StatusBadRequest, oauthError{"invalid_request", "send the token request as application/x-www-form-urlencoded"})
	}
	if err := c.Request().ParseForm(); err != nil {
		if httpkit.IsBodyTooLarge(err) {
			return c.JSON(http.StatusRequestEntityTooLarge, oauthError{"invalid_request", "the token request is too large"})
		}
		return c.JSON(http.StatusBadRequest, oauthError{"invalid_request", "the form body cannot be read"})
	}
	// Parameters travel in the body only: a client assertion in a URL ends up in logs.
	form := url.Values(c.Request().PostForm)
	resp, err := a.Server.Token(c.Request().Context(), form)
	var refused *smart.Error
	if errors.As(err, &refused) {
		// A refusal of a registered client is its tenant's security event; one naming no
		// client is in the log only.
		note := auditlog.Note(c)
		note.Tenant, note.Agent = refused.TenantID, refused.ClientID
		return c.JSON(refused.Status, oauthError{refused.Code, refused.Description})
	}
	if err != nil {
		return err
	}
	note := auditlog.Note(c)
	note.Tenant, note.Agent = resp.TenantID, resp.ClientID
	return c.JSON(http.StatusOK, resp)
}

func (a *API) jwks(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=60")
	return c.Blob(http.StatusOK, "application/jwk-set+json", a.Server.Keys.JWKS())
}

func (a *API) discovery(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                a.BaseURL,
		"jwks_uri":                              a.BaseURL + JWKSPath,
		"token_endpoint":                        TokenURL(a.BaseURL),
		"grant_types_supported":                 []string{smart.GrantClientCredentials},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": smart.AssertionAlgorithms,
		"scopes_supported": ScopesSupported,
		"capabilities":     []string{"client-confidential-asymmetric", "permission-v2"},
	})
}
