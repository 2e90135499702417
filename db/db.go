// Package db is the service's only door to PostgreSQL: sqlc-generated queries (files ending in
// _sqlc.go, compiled from queries/*.sql), one transaction helper, migrations, and the mapping of
// driver errors to a few sentinels so that callers never inspect pgx errors.
package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a query that must find one row finds none.
var ErrNotFound = errors.New("not found")

// DefaultMaxConns sizes the pool unless the URL sets pool_max_conns.
const DefaultMaxConns = 20

// Open connects a pool to url and checks that the server answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default, max(4, NumCPU), starves the local activities and the ingest
		// path, which wait on I/O, not CPU (bench/system: tune pool-32).
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %s: %w", redact(cfg.ConnConfig), err)
	}
	return pool, nil
}

// Beginner is what InTx needs: a pool, a connection or an outer transaction.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling back otherwise.
func InTx(ctx context.Context, b Beginner, fn func(q *Queries) error) error {
	return pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error {
		return fn(New(tx))
	})
}

// Interpret maps driver errors to this package's sentinels: pgx.ErrNoRows becomes ErrNotFound.
// Other errors are returned unchanged.
func Interpret(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// IsUniqueViolation reports whether err is a unique-constraint violation, and if constraint is
// not empty, whether it is that constraint (or unique index).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}

// IsCheckViolation reports whether err was raised by a CHECK constraint or by one of the
// schema's invariant triggers (which raise check_violation).
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}

// ConstraintMessage returns the database's message for a constraint or trigger violation, which
// our triggers word for users; "" for other errors.
func ConstraintMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23514" || pgErr.Code == "23505") {
		return pgErr.Message
	}
	return ""
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}
