package temporaldev

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
)

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
			PluginName:        postgresql.PluginNamePGX, // pgx, as sharedpool.go connects: the plugin reads pgx errors
			User:              user,
			Password:          password,
			ConnectAddr:       net.JoinHostPort(host, port),
			ConnectProtocol:   "tcp",
			ConnectAttributes: attrs,
			// Every service opens its own pools, so the server's default of
			// unlimited connections can exhaust max_connections (100 by
			// default) when dev servers and test runs share one cluster;
			// Options.MaxConns sets the bound the services share (shared).
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

// shared returns a copy of the base config pointed at database name whose pools, one per
// service, share maxConns connections (sharedPool), with sessions named app (unless the URL
// names them).
func (t pgTarget) shared(name string, maxConns int, app string) *config.SQL {
	c := t.sqlConfig(name)
	c.MaxConns, c.MaxIdleConns = maxConns, sharedMaxIdle(maxConns)
	if _, set := c.ConnectAttributes["application_name"]; !set && app != "" {
		c.ConnectAttributes["application_name"] = app
	}
	c.Connect = newSharedPool(maxConns).connect
	return c
}
