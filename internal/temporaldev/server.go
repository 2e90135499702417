package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"
)

// Server is a running Temporal server and, optionally, its Web UI.
type Server struct {
	server    temporal.Server
	ui        *webUI
	frontend  string
	namespace string
	logger    *slog.Logger
	// serviceToken is the process's own credential when OIDC is on: its clients present it
	// and the claim mapper grants it the system admin role. Empty without OIDC.
	serviceToken string
	// stopDynConfig ends the dynamic config file poller.
	stopDynConfig chan any
	// muteServerLogs silences server logs once Stop begins: the services
	// leave the membership ring one by one and the remaining ones log dozens
	// of errors about unreachable peers, none of them actionable.
	muteServerLogs *atomic.Bool
	// registering forces search attribute cache refreshes from start until every
	// service's cache has expired once after our registration.
	registering *atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start prepares the databases, starts the server, waits until its frontend
// answers, registers the namespace and search attributes, then starts the UI.
// ctx bounds the waiting; Options.StartTimeout applies when ctx has no
// deadline. On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("temporaldev options: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.StartTimeout)
		defer cancel()
	}
	target, err := parseDatabaseURL(o.DatabaseURL)
	if err != nil {
		return nil, err
	}
	muted := new(atomic.Bool)
	logger := newServerLogger(o.Logger, o.ServerLogLevel, muted)

	// Ports first: a second `interop dev` must fail on the taken port before
	// it touches the databases the running one is using.
	ep, err := pickEndpoints(o.FrontendAddr, o.OIDC != nil)
	if err != nil {
		return nil, err
	}
	if o.OIDC != nil && !net.ParseIP(ep.internalIP).IsLoopback() {
		// The internal services (the internal frontend above all) trust every caller.
		return nil, fmt.Errorf("frontend addr %q: with OIDC the frontend must listen on loopback or on all interfaces "+
			"(0.0.0.0), because on one specific address the server's internal services, which trust every caller, "+
			"would listen there too", o.FrontendAddr)
	}
	var uiListener net.Listener
	if o.uiEnabled() {
		if uiListener, err = listenUI(o.UIAddr); err != nil {
			return nil, err
		}
	}
	access := serverAccess{authorizer: authorization.NewNoopAuthorizer(), claimMapper: authorization.NewNoopClaimMapper()}
	if o.OIDC != nil {
		if access, err = oidcAccess(ctx, o, o.Logger); err != nil {
			closeListener(uiListener)
			return nil, err
		}
	}

	began := time.Now()
	if err := ensureSchemas(target, o.DatabaseName, o.VisibilityDatabaseName, logger); err != nil {
		closeListener(uiListener)
		return nil, fmt.Errorf("prepare databases: %w", err)
	}
	if err := forgetPreviousMembers(target, o.DatabaseName, logger); err != nil {
		closeListener(uiListener)
		return nil, fmt.Errorf("reset cluster membership: %w", err)
	}
	o.Logger.Debug("temporal databases ready", "elapsed", time.Since(began))
	s := &Server{
		frontend:       ep.frontendDial,
		namespace:      o.Namespace,
		logger:         o.Logger,
		serviceToken:   access.serviceToken,
		stopDynConfig:  make(chan any),
		muteServerLogs: muted,
		registering:    new(atomic.Bool),
	}
	s.registering.Store(true)
	srv, err := newTemporalServer(o, target, ep, access, logger, s.stopDynConfig, s.registering)
	if err == nil {
		if err = srv.Start(); err != nil {
			err = fmt.Errorf("start temporal server: %w", err)
		}
	}
	if err != nil {
		close(s.stopDynConfig)
		closeListener(uiListener)
		return nil, err
	}
	s.server = srv
	o.Logger.Debug("temporal server started", "elapsed", time.Since(began), "frontend", s.frontend)

	if err := s.initialize(ctx, o, uiListener); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	o.Logger.Debug("temporal server ready", "elapsed", time.Since(began), "namespace", s.namespace, "ui", s.UIURL())
	return s, nil
}

func closeListener(ln net.Listener) {
	if ln != nil {
		_ = ln.Close() // never served, nothing to flush
	}
}

// serverAccess is how the frontend authorizes its callers.
type serverAccess struct {
	authorizer  authorization.Authorizer
	claimMapper authorization.ClaimMapper
	// serviceToken is the process's own credential; empty when the frontend is open.
	serviceToken string
}

// oidcAccess is the frontend's access with OIDC on: the default authorizer (every call needs
// the role its API demands) over our claim mapper (ID tokens → roles, the process's own token
// → system admin).
func oidcAccess(ctx context.Context, o Options, logger *slog.Logger) (serverAccess, error) {
	token, err := newServiceToken()
	if err != nil {
		return serverAccess{}, err
	}
	mapper, err := newClaimMapper(ctx, o.OIDC, o.Namespace, token, logger)
	if err != nil {
		return serverAccess{}, fmt.Errorf("temporal ui sign-in: %w", err)
	}
	return serverAccess{authorizer: authorization.NewDefaultAuthorizer(), claimMapper: mapper, serviceToken: token}, nil
}

func newTemporalServer(o Options, t pgTarget, ep endpoints, access serverAccess, logger serverLogger, done chan any, registering *atomic.Bool) (temporal.Server, error) {
	cfg := serverConfig(o, t, ep)
	dc, err := newDynamicConfig(o, logger, done, registering)
	if err != nil {
		return nil, err
	}
	services := temporal.DefaultServices
	if _, ok := ep.services[internalFrontendService]; ok {
		services = append(slices.Clone(services), internalFrontendService)
	}
	// Without OIDC the noop authorizer and claim mapper leave the frontend open, which is
	// what a laptop dev server wants.
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(services),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(access.authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return access.claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	return srv, nil
}

// initialize runs the post-start steps that need a live frontend, then
// serves the UI on uiListener when it is not nil (it always takes ownership
// of uiListener).
func (s *Server) initialize(ctx context.Context, o Options, uiListener net.Listener) error {
	served := false
	defer func() {
		if !served {
			closeListener(uiListener)
		}
	}()
	// Lazy, because the frontend may not accept connections yet; the health
	// check below is what waits for it.
	c, err := client.NewLazyClient(s.ClientOptions(client.Options{Namespace: o.Namespace}))
	if err != nil {
		return fmt.Errorf("create temporal client: %w", err)
	}
	defer c.Close()

	if err := waitForFrontend(ctx, c); err != nil {
		return fmt.Errorf("wait for temporal frontend at %s: %w", s.frontend, err)
	}
	if err := ensureNamespace(ctx, c, o.Namespace, o.NamespaceRetention); err != nil {
		return fmt.Errorf("register namespace %q: %w", o.Namespace, err)
	}
	if err := ensureSearchAttributes(ctx, c, o.Namespace, o.SearchAttributes); err != nil {
		return fmt.Errorf("register search attributes on %q: %w", o.Namespace, err)
	}
	// Each service's search attribute cache was loaded before the registration and
	// expires at most saCacheRefresh later; once past that, every cache holds ours.
	time.AfterFunc(saCacheRefresh+10*time.Second, func() { s.registering.Store(false) })
	if uiListener != nil {
		served = true // startUI owns the listener from here, even on error
		ui, err := startUI(uiListener, uiOptions{frontend: s.frontend, namespace: o.Namespace, readOnly: o.UIReadOnly, oidc: o.OIDC}, o.Logger)
		if err != nil {
			return fmt.Errorf("start temporal ui: %w", err)
		}
		s.ui = ui
	}
	return nil
}

// FrontendHostPort returns the host:port clients dial to reach the frontend.
func (s *Server) FrontendHostPort() string { return s.frontend }

// Namespace returns the namespace registered by Start.
func (s *Server) Namespace() string { return s.namespace }

// UIURL returns the Web UI's base URL, or "" when the UI is disabled.
func (s *Server) UIURL() string {
	if s.ui == nil {
		return ""
	}
	return s.ui.url
}

// NewClient dials the server with ClientOptions(opts).
func (s *Server) NewClient(ctx context.Context, opts client.Options) (client.Client, error) {
	c, err := client.DialContext(ctx, s.ClientOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("dial temporal frontend at %s: %w", s.frontend, err)
	}
	return c, nil
}

// ClientOptions completes opts to reach this server: HostPort is always its frontend;
// Namespace defaults to the server's namespace and Logger to the server's slog logger at warn
// level, so callers only set what they care about. With OIDC on, Credentials are the process's
// own (over plain TCP: the frontend listens without TLS), which the frontend trusts as the
// system: never hand them out.
func (s *Server) ClientOptions(opts client.Options) client.Options {
	opts.HostPort = s.frontend
	if s.serviceToken != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(s.serviceToken)
		if opts.ConnectionOptions.TLS == nil {
			opts.ConnectionOptions.TLSDisabled = true
		}
	}
	if opts.Namespace == "" {
		opts.Namespace = s.namespace
	}
	if opts.Logger == nil {
		// The SDK logs every connection at info; warn keeps dev output calm.
		opts.Logger = sdklog.NewStructuredLogger(slog.New(minLevelHandler{inner: s.logger.Handler(), min: slog.LevelWarn}))
	}
	return opts
}

// Stop stops the UI, then the server. It is safe to call more than once;
// later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.muteServerLogs.Store(true)
		var errs []error
		if s.ui != nil {
			if err := s.ui.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop temporal ui: %w", err))
			}
		}
		if err := s.server.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop temporal server: %w", err))
		}
		close(s.stopDynConfig)
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
