// Package db is the service's only door to PostgreSQL: the connection pool (Pool), sqlc-generated
// queries (files ending in _sqlc.go, compiled from queries/*.sql), one transaction helper
// (InTx), migrations, and the mapping of driver errors to a few sentinels (ErrNotFound,
// ErrConflict, …) so that callers never inspect pgx errors.
package db

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns sizes the pool unless Options or the URL (pool_max_conns) say otherwise.
const DefaultMaxConns = 20

// Pool is the service's connection pool. Its Exec, Query and QueryRow (the DBTX that New and
// InTx hand to the generated queries) return interpreted errors.
type Pool struct {
	pool *pgxpool.Pool
}

// Options size and name a pool.
type Options struct {
	// MaxConns bounds the pool's connections; 0 means DefaultMaxConns. The URL's
	// pool_max_conns, when present, wins.
	MaxConns int32
	// ApplicationName is the sessions' application_name (pg_stat_activity shows it), unless
	// the URL sets one.
	ApplicationName string
}

// Open connects a pool of DefaultMaxConns connections to url and checks that the server
// answers.
func Open(ctx context.Context, url string) (*Pool, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with the pool sized and named by o.
func OpenWith(ctx context.Context, url string, o Options) (*Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default, max(4, NumCPU), starves the local activities and the ingest
		// path, which wait on I/O, not CPU (bench/system: tune pool-32).
		cfg.MaxConns = DefaultMaxConns
		if o.MaxConns > 0 {
			cfg.MaxConns = o.MaxConns
		}
		if cfg.MinConns > cfg.MaxConns {
			cfg.MinConns = cfg.MaxConns
		}
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set && o.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.ApplicationName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %s: %w", redact(cfg.ConnConfig), err)
	}
	return &Pool{pool: pool}, nil
}

// Close closes every connection, waiting for those in use to be released.
func (p *Pool) Close() { p.pool.Close() }

// MaxConns is the pool's size.
func (p *Pool) MaxConns() int32 { return p.pool.Config().MaxConns }

// Ping checks that the server answers (the gateway's readiness).
func (p *Pool) Ping(ctx context.Context) error { return interpret(p.pool.Ping(ctx)) }

// Exec runs sql on a pooled connection.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.pool.Exec(ctx, sql, args...)
	return tag, interpret(err)
}

// Query runs sql on a pooled connection; the rows' errors are interpreted.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, interpret(err)
	}
	return rows{r}, nil
}

// QueryRow runs sql on a pooled connection; Scan's error is interpreted.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{p.pool.QueryRow(ctx, sql, args...)}
}

// EnsureDatabase creates the database named in databaseURL when it does not exist, connecting
// to the cluster's maintenance database (postgres) to do so. Only development commands use
// it: production databases are provisioned, not conjured.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s:%s: %w (is it running? `make run` starts one)", u.Hostname(), u.Port(), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}
