package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	uiapi "github.com/temporalio/ui-server/v2/server/api"
	uiauth "github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uicors "github.com/temporalio/ui-server/v2/server/cors"
	uicsrf "github.com/temporalio/ui-server/v2/server/csrf"
	uiheaders "github.com/temporalio/ui-server/v2/server/headers"
	uiroute "github.com/temporalio/ui-server/v2/server/route"
	uiassets "github.com/temporalio/ui-server/v2/ui"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// uiShutdownTimeout bounds how long Stop waits for in-flight UI requests
// (the UI keeps long polls open, so waiting forever is not an option).
const uiShutdownTimeout = 5 * time.Second

// webUI is the Temporal Web UI served from this process.
//
// It assembles the routes of ui-server's server.NewServer (v2.54.1) on our
// own listener instead of calling NewServer and Start, because Start exits
// the process when the port is taken, cannot report a port chosen by the
// kernel, and the gRPC connection it opens is never closed. The middleware
// chain below must be kept in sync with NewServer when upgrading ui-server.
type webUI struct {
	http *http.Server
	conn *grpc.ClientConn
	cfg  *uiconfig.ConfigProviderWithRefresh
	url  string
	done chan struct{}
}

// listenUI binds the UI address. Start calls it before starting the server
// so that a taken port fails fast instead of after the whole startup.
func listenUI(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on ui addr %q: %w", addr, err)
	}
	return ln, nil
}

// uiOptions configure the UI.
type uiOptions struct {
	frontend  string
	namespace string
	readOnly  bool
	// oidc, when not nil, requires sign-in (see OIDC).
	oidc *OIDC
	// callbackURL is where the provider sends the browser back; startUI derives it from the
	// listen address unless oidc names one.
	callbackURL string
}

// startUI serves the UI on ln, pointed at the frontend, in the background.
// It takes ownership of ln.
func startUI(ln net.Listener, opts uiOptions, logger *slog.Logger) (*webUI, error) {
	base := "http://" + browsableAddr(ln.Addr())
	if opts.oidc != nil {
		opts.callbackURL = opts.oidc.CallbackURL
		if opts.callbackURL == "" {
			opts.callbackURL = base + "/auth/sso/callback"
		}
	}
	ui, err := newWebUI(opts)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	ui.url = base
	go func() {
		defer close(ui.done)
		if err := ui.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("temporal ui stopped", slog.Any("error", err))
		}
	}()
	return ui, nil
}

func newWebUI(opts uiOptions) (*webUI, error) {
	c := &uiconfig.Config{
		TemporalGRPCAddress: opts.frontend,
		EnableUI:            true,
		DefaultNamespace:    opts.namespace,
		// Plain HTTP on localhost: a Secure CSRF cookie would never be sent
		// back and every write action in the UI would fail.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
		// ui-server hides every write action and its API refuses them.
		DisableWriteActions: opts.readOnly,
	}
	if o := opts.oidc; o != nil {
		cb, err := url.Parse(opts.callbackURL)
		if err != nil || cb.Host == "" || (cb.Scheme != "https" && cb.Scheme != "http") {
			// ui-server would exit the process on it.
			return nil, fmt.Errorf("oidc callback url %q: want an absolute http(s) URL", opts.callbackURL)
		}
		// ui-server keeps the ID token verifier of its API in a package variable: one signed-in
		// UI per process (a second one's provider would replace the first's).
		c.Auth = uiconfig.Auth{Enabled: true, Providers: []uiconfig.AuthProvider{{
			Label: "OpenID Connect", Type: "oidc", ProviderURL: o.Issuer,
			ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes, CallbackURL: opts.callbackURL,
			// The frontend verifies the ID token (its audience is our client, its claims hold
			// the roles); the access token may be opaque or meant for another audience.
			UseIDTokenAsBearer: true,
		}}}
		// Browsers reach the UI the way the provider sends them back: over HTTPS (a proxy in
		// front) the cookies are Secure, as ui-server makes its own sign-in cookies.
		c.CORS.CookieInsecure = cb.Scheme != "https"
	}
	cfg, err := uiconfig.NewConfigProviderWithRefresh(c)
	if err != nil {
		return nil, fmt.Errorf("ui config: %w", err)
	}
	conn, err := uiapi.CreateGRPCConnection(cfg)
	if err != nil {
		cfg.Close()
		return nil, fmt.Errorf("ui connection to frontend: %w", err)
	}
	e, err := uiHandler(cfg, conn)
	if err != nil {
		_ = conn.Close()
		cfg.Close()
		return nil, err
	}
	return &webUI{
		http: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second},
		conn: conn,
		cfg:  cfg,
		done: make(chan struct{}),
	}, nil
}

// uiHandler reproduces ui-server's NewServer (v2.54.1, also with auth enabled) plus
// SetAPIRoutes, so that we own (and can close) the gRPC conn. One addition: the raw history
// download, which ui-server serves over its gRPC conn without the caller's token, gets the
// token checked and forwarded like every other API call.
func uiHandler(cfg *uiconfig.ConfigProviderWithRefresh, conn *grpc.ClientConn) (*echo.Echo, error) {
	c, err := cfg.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("ui config: %w", err)
	}
	apiMiddleware := []uiapi.Middleware{
		uiheaders.WithForwardHeaders([]string{uiauth.AuthorizationExtrasHeader, "Caller-Type"}),
	}
	csrfSecure := !c.CORS.CookieInsecure

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(uicors.CORSMiddleware(uicors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, uiauth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfg,
	}))
	e.Use(middleware.Secure())
	e.Use(uicsrf.EnsureTokenCookie(csrfSecure))
	e.Use(middleware.CSRFWithConfig(uicsrf.MiddlewareConfig(cfg, csrfSecure)))
	e.Pre(uiroute.PublicPath(c.PublicPath))

	uiroute.SetHealthRoute(e)

	api := e.Group("/api/v1")
	writeControl := uiroute.DisableWriteMiddleware(cfg)
	api.GET("/settings", uiapi.GetSettings(cfg))
	api.GET(uiapi.WorkflowRawHistoryUrl,
		uiapi.WorkflowRawHistoryHandler(workflowservice.NewWorkflowServiceClient(conn)), writeControl, forwardToken(cfg))
	api.Match([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, "/*",
		uiapi.TemporalAPIHandler(cfg, apiMiddleware, conn), writeControl)

	uiroute.SetAuthRoutes(e, cfg)

	assets, err := uiassets.Assets()
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	if assets, err = fs.Sub(assets, "local"); err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	if err := uiroute.SetUIRoutes(e, c.PublicPath, assets); err != nil {
		return nil, fmt.Errorf("ui routes: %w", err)
	}
	uiroute.SetRenderRoute(e, c.PublicPath)
	return e, nil
}

// forwardToken checks the caller's token as ui-server's API proxy does (present, and with
// sign-in a valid ID token, which then becomes the bearer) and sends it with the handler's
// gRPC calls, so that the frontend authorizes them by the caller.
func forwardToken(cfg *uiconfig.ConfigProviderWithRefresh) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := uiauth.ValidateAuthHeaderExists(c, cfg); err != nil {
				return err
			}
			if token := c.Request().Header.Get(echo.HeaderAuthorization); token != "" {
				r := c.Request()
				c.SetRequest(r.WithContext(metadata.AppendToOutgoingContext(r.Context(), "authorization", token)))
			}
			return next(c)
		}
	}
}

// stop shuts the UI down; in-flight requests get uiShutdownTimeout.
func (u *webUI) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), uiShutdownTimeout)
	defer cancel()
	err := u.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = u.http.Close()
	}
	<-u.done
	u.cfg.Close()
	return errors.Join(err, u.conn.Close())
}

// browsableAddr turns a listener address into one a browser can open:
// a wildcard bind is reachable via loopback.
func browsableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}
