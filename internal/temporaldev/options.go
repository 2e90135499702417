package temporaldev

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
)

// Defaults applied by Start to zero-valued Options fields.
const (
	DefaultDatabaseName           = "temporal"
	DefaultVisibilityDatabaseName = "temporal_visibility"
	DefaultFrontendAddr           = "127.0.0.1:7233"
	DefaultUIAddr                 = "127.0.0.1:8233"
	DefaultNamespace              = "default"
	DefaultNamespaceRetention     = 72 * time.Hour
	DefaultNumHistoryShards       = int32(4)
	DefaultStartTimeout           = 2 * time.Minute
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
	// Defaults to DefaultDatabaseName.
	DatabaseName string
	// VisibilityDatabaseName is the database holding the visibility store
	// (workflow listing and search attributes). Defaults to
	// DefaultVisibilityDatabaseName.
	VisibilityDatabaseName string

	// FrontendAddr is the host:port the frontend gRPC service binds to.
	// Port 0 picks a free port; FrontendHostPort reports the result.
	// Defaults to DefaultFrontendAddr.
	FrontendAddr string
	// UIAddr is the host:port the Web UI binds to; port 0 picks a free port.
	// Defaults to DefaultUIAddr unless DisableUI is set.
	UIAddr string
	// DisableUI turns the Web UI off.
	DisableUI bool

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
	// info level.
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
		"system.enableEagerWorkflowStart":                true,
		"frontend.enableUpdateWorkflowExecution":         true,
		"system.forceSearchAttributesCacheRefreshOnRead": true,
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
	return nil
}

// uiEnabled reports whether the UI is wanted; DisableUI wins over UIAddr.
func (o Options) uiEnabled() bool {
	return !o.DisableUI && o.UIAddr != ""
}

// pgTarget is a parsed DatabaseURL.
type pgTarget struct {
	// base carries connection settings; DatabaseName is filled per use.
	base config.SQL
	// maintenanceDB is where CREATE DATABASE is issued from.
	maintenanceDB string
}

// parseDatabaseURL turns a libpq-style URL into the server's SQL config for
// the postgres12 plugin, which builds its own DSN from these fields.
func parseDatabaseURL(raw string) (pgTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return pgTarget{}, fmt.Errorf("parse database url: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return pgTarget{}, fmt.Errorf("database url: unsupported scheme %q, want postgres", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return pgTarget{}, fmt.Errorf("database url: invalid port %q", port)
	}
	user := u.User.Username()
	if user == "" {
		user = "postgres"
	}
	password, _ := u.User.Password()
	maintenanceDB := u.Path
	if len(maintenanceDB) > 0 && maintenanceDB[0] == '/' {
		maintenanceDB = maintenanceDB[1:]
	}
	if maintenanceDB == "" {
		maintenanceDB = "postgres"
	}
	attrs := map[string]string{}
	for k, vs := range u.Query() {
		if len(vs) > 0 {
			attrs[k] = vs[len(vs)-1]
		}
	}
	return pgTarget{
		base: config.SQL{
			PluginName:        postgresql.PluginName,
			User:              user,
			Password:          password,
			ConnectAddr:       net.JoinHostPort(host, port),
			ConnectProtocol:   "tcp",
			ConnectAttributes: attrs,
			// Every service opens its own pools, so the server's default of
			// unlimited connections can exhaust max_connections (100 by
			// default) when dev servers and test runs share one cluster.
			MaxConns:     10,
			MaxIdleConns: 5,
		},
		maintenanceDB: maintenanceDB,
	}, nil
}

// sqlConfig returns a copy of the base config pointed at database name.
func (t pgTarget) sqlConfig(name string) *config.SQL {
	c := t.base
	c.DatabaseName = name
	c.ConnectAttributes = maps.Clone(t.base.ConnectAttributes)
	return &c
}
