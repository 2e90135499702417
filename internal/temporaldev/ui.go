package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
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

// startUI serves the UI on ln, pointed at the frontend, in the background.
// It takes ownership of ln.
func startUI(ln net.Listener, frontend, namespace string, readOnly bool, logger *slog.Logger) (*webUI, error) {
	ui, err := newWebUI(frontend, namespace, readOnly)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	ui.url = "http://" + browsableAddr(ln.Addr())
	go func() {
		defer close(ui.done)
		if err := ui.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("temporal ui stopped", slog.Any("error", err))
		}
	}()
	return ui, nil
}

func newWebUI(frontend, namespace string, readOnly bool) (*webUI, error) {
	cfg, err := uiconfig.NewConfigProviderWithRefresh(&uiconfig.Config{
		TemporalGRPCAddress: frontend,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Plain HTTP on localhost: a Secure CSRF cookie would never be sent
		// back and every write action in the UI would fail.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
		// ui-server hides every write action and its API refuses them.
		DisableWriteActions: readOnly,
	})
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

// uiHandler reproduces ui-server's NewServer with a non-secure cookie
// config, plus SetAPIRoutes so that we own (and can close) the gRPC conn.
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
		uiapi.WorkflowRawHistoryHandler(workflowservice.NewWorkflowServiceClient(conn)), writeControl)
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
