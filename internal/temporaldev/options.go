package temporaldev

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// Defaults applied by Start to zero-valued Options fields.
const (
	// DefaultDatabaseName is the default Options.DatabaseName.
	DefaultDatabaseName = "temporal"
	// DefaultVisibilityDatabaseName is the default
	// Options.VisibilityDatabaseName.
	DefaultVisibilityDatabaseName = "temporal_visibility"
	// DefaultFrontendAddr is the default Options.FrontendAddr, the port
	// Temporal tooling (CLI, SDK defaults) expects.
	DefaultFrontendAddr = "127.0.0.1:7233"
	// DefaultUIAddr is the default Options.UIAddr, the port the Temporal
	// CLI's dev server uses for its UI.
	DefaultUIAddr = "127.0.0.1:8233"
	// DefaultNamespace is the default Options.Namespace.
	DefaultNamespace = "default"
	// DefaultNamespaceRetention is the default Options.NamespaceRetention.
	DefaultNamespaceRetention = 72 * time.Hour
	// DefaultNumHistoryShards is the default Options.NumHistoryShards.
	DefaultNumHistoryShards = int32(4)
	// DefaultStartTimeout is the default Options.StartTimeout.
	DefaultStartTimeout = 2 * time.Minute
	// DefaultMaxConns is the default Options.MaxConns and VisibilityMaxConns.
	DefaultMaxConns = 20
	// DefaultApplicationName is the default Options.ApplicationName.
	DefaultApplicationName = "interop-temporal"
)

// Options configures Start. The zero value of every field except DatabaseURL
// selects a default suitable for a laptop.
type Options struct {
	// DatabaseURL locates the PostgreSQL cluster, e.g.
	// postgres://user:pass@127.0.0.1:5432/postgres?sslmode=disable. The
	// database named in the path is only used to create the server's own
	// databases; query parameters are passed to the driver (sslmode, ...).
	DatabaseURL string
	// DatabaseName is the database holding the server's core state.
	// Defaults to DefaultDatabaseName. Only one server may use a database
	// pair at a time: Start clears the cluster membership table in it.
	DatabaseName string
	// VisibilityDatabaseName is the database holding the visibility store
	// (workflow listing and search attributes). Defaults to
	// DefaultVisibilityDatabaseName.
	VisibilityDatabaseName string
	// MaxConns bounds the connections to the persistence database and VisibilityMaxConns
	// those to the visibility database, all of the server's services together (each opens
	// its own pools; they share these budgets). The server holds at most MaxConns +
	// VisibilityMaxConns connections. Both default to DefaultMaxConns.
	MaxConns           int
	VisibilityMaxConns int
	// ApplicationName names the server's sessions in pg_stat_activity ("<name>" for
	// persistence, "<name>-visibility"), unless DatabaseURL sets application_name.
	// Defaults to DefaultApplicationName.
	ApplicationName string

	// FrontendAddr is the host:port the frontend gRPC service binds to. The
	// host must be an IPv4 address, "localhost" or empty (all interfaces);
	// the internal services always stay on loopback (or on that address).
	// Port 0 picks a free port; FrontendHostPort reports the result.
	// Defaults to DefaultFrontendAddr.
	FrontendAddr string
	// UIAddr is the host:port the Web UI binds to; port 0 picks a free port.
	// An empty UIAddr means DefaultUIAddr; use DisableUI to turn the UI off.
	UIAddr string
	// DisableUI turns the Web UI off.
	DisableUI bool
	// UIReadOnly hides and refuses the UI's write actions (terminate, cancel, reset, signal,
	// update, pause, start, batch) for everyone: without OIDC the UI has no sign-in, so
	// whoever reaches it may act.
	UIReadOnly bool
	// OIDC, when not nil, makes the UI require sign-in and the server authorize every call by
	// the caller's token (see OIDC). Nil leaves the server open, as a laptop wants it.
	OIDC *OIDC

	// Namespace is registered on start when missing. Defaults to
	// DefaultNamespace.
	Namespace string
	// NamespaceRetention is the workflow retention used when the namespace is
	// registered; it is not changed for an existing namespace. Defaults to
	// DefaultNamespaceRetention.
	NamespaceRetention time.Duration
	// SearchAttributes are custom search attributes added to Namespace when
	// missing, on every start. An existing attribute with a different type is
	// an error, because Temporal cannot change the type in place.
	SearchAttributes map[string]enumspb.IndexedValueType

	// NumHistoryShards is used only when the database is created. Temporal
	// fixes the shard count at that moment: when the database already exists
	// the stored count wins and the server logs a warning about the mismatch.
	// Defaults to DefaultNumHistoryShards.
	NumHistoryShards int32

	// DynamicConfig maps dynamic config keys to values, applied as global
	// (unconstrained) values over DefaultDynamicConfig. A value may also be a
	// []dynamicconfig.ConstrainedValue for per-namespace settings.
	DynamicConfig map[string]any
	// DynamicConfigFile is an optional dynamic config YAML file in the
	// server's usual format. It is polled for changes. Keys set in
	// DynamicConfig take precedence over the file; the file takes precedence
	// over DefaultDynamicConfig.
	DynamicConfigFile string

	// Logger receives the server's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// ServerLogLevel is the minimum level of server-internal logs forwarded
	// to Logger. Defaults to slog.LevelWarn because the server is chatty at
	// info level. Server logs are dropped once Stop begins, and the server's
	// Panic and Fatal levels are logged as errors without panicking or
	// exiting.
	ServerLogLevel slog.Leveler

	// StartTimeout bounds how long Start waits for the frontend and for the
	// namespace and search attribute registration when ctx has no deadline.
	// Defaults to DefaultStartTimeout.
	StartTimeout time.Duration
}

// DefaultDynamicConfig returns the dynamic config values applied unless
// overridden: the features interop relies on and that the server leaves off
// by default.
func DefaultDynamicConfig() map[string]any {
	return map[string]any{
		"system.enableEagerWorkflowStart":        true,
		"frontend.enableUpdateWorkflowExecution": true,
		// Each shard persists its workflows' changes one at a time by default; on
		// 4 shards that serialises a burst of eager starts (bench/system: tune shard-io-8).
		"history.shardIOConcurrency": 8,
	}
}

// withDefaults returns a copy of o with defaults filled in, so that callers'
// Options are never mutated.
func (o Options) withDefaults() Options {
	if o.DatabaseName == "" {
		o.DatabaseName = DefaultDatabaseName
	}
	if o.VisibilityDatabaseName == "" {
		o.VisibilityDatabaseName = DefaultVisibilityDatabaseName
	}
	if o.FrontendAddr == "" {
		o.FrontendAddr = DefaultFrontendAddr
	}
	if o.UIAddr == "" && !o.DisableUI {
		o.UIAddr = DefaultUIAddr
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.NamespaceRetention == 0 {
		o.NamespaceRetention = DefaultNamespaceRetention
	}
	if o.NumHistoryShards == 0 {
		o.NumHistoryShards = DefaultNumHistoryShards
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ServerLogLevel == nil {
		o.ServerLogLevel = slog.LevelWarn
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.VisibilityMaxConns <= 0 {
		o.VisibilityMaxConns = DefaultMaxConns
	}
	if o.ApplicationName == "" {
		o.ApplicationName = DefaultApplicationName
	}
	if o.OIDC != nil {
		o.OIDC = o.OIDC.withDefaults()
	}
	o.SearchAttributes = maps.Clone(o.SearchAttributes)
	o.DynamicConfig = maps.Clone(o.DynamicConfig)
	return o
}

func (o Options) validate() error {
	if o.DatabaseURL == "" {
		return errors.New("database url is required")
	}
	if o.DatabaseName == o.VisibilityDatabaseName {
		return errors.New("database name and visibility database name must differ")
	}
	if o.NumHistoryShards < 1 {
		return fmt.Errorf("num history shards must be positive, got %d", o.NumHistoryShards)
	}
	if o.NamespaceRetention < 0 {
		return fmt.Errorf("namespace retention must be positive, got %s", o.NamespaceRetention)
	}
	if o.OIDC != nil {
		return o.OIDC.validate()
	}
	return nil
}

// uiEnabled reports whether the UI is wanted; DisableUI wins over UIAddr.
func (o Options) uiEnabled() bool {
	return !o.DisableUI && o.UIAddr != ""
}
