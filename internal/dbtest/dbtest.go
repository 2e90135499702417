// Package dbtest gives tests a fresh, migrated PostgreSQL database of their own, so that tests
// run in parallel and never touch a user's data. The cluster comes from TEST_DATABASE_URL, else
// DATABASE_URL, else the local trust-auth server on 127.0.0.1:5432.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nhp/interop/db"
)

// ClusterURL is the URL of the test cluster's maintenance database.
func ClusterURL() string {
	for _, key := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(key); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// WithDatabase returns base with its database name replaced by name.
func WithDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// UniqueName returns prefix plus a random suffix, valid as a PostgreSQL identifier.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + "_" + hex.EncodeToString(b)
}

// CreateDatabase creates an empty database called name in the test cluster and drops it when
// the test ends. It returns the new database's URL.
func CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL is not reachable at %s (set TEST_DATABASE_URL): %v", ClusterURL(), err)
	}
	defer func() { _ = conn.Close(ctx) }() // the statement's error is the one that counts
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() { DropDatabase(t, name) })
	u, err := WithDatabase(ClusterURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// SkipUnlessReachable skips t when the test cluster does not answer: for tests that start
// something of their own against the cluster rather than use a database of dbtest's.
func SkipUnlessReachable(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(ctx)
	}
	if err != nil {
		t.Skipf("PostgreSQL unreachable at %s (set TEST_DATABASE_URL): %v", ClusterURL(), err)
	}
}

// DropDatabase drops name, disconnecting whoever is still connected.
func DropDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err != nil {
		t.Logf("dbtest: drop %s: %v", name, err)
		return
	}
	defer func() { _ = conn.Close(ctx) }() // the statement's error is the one that counts
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("dbtest: drop %s: %v", name, err)
	}
}

// DefaultPoolMaxConns sizes New's pools unless INTEROP_TEST_DB_MAX_CONNS says otherwise: tests
// run many at once on one cluster (beside a running `interop dev`), so each holds few
// connections; a test that needs more queues for them.
const DefaultPoolMaxConns = 6

// ApplicationName names the tests' sessions in pg_stat_activity.
const ApplicationName = "interop-test"

// PoolMaxConns is the size of New's pools: INTEROP_TEST_DB_MAX_CONNS, else DefaultPoolMaxConns.
func PoolMaxConns() int32 {
	if v, err := strconv.Atoi(os.Getenv("INTEROP_TEST_DB_MAX_CONNS")); err == nil && v > 0 && v <= 1000 {
		return int32(v) //nolint:gosec // bounded above
	}
	return DefaultPoolMaxConns
}

// New creates a fresh database migrated to the latest schema and returns its URL and a pool
// (PoolMaxConns connections) closed at cleanup.
func New(t testing.TB) (string, *db.Pool) {
	t.Helper()
	u := CreateDatabase(t, UniqueName("itest"))
	if err := db.MigrateUp(u); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := db.OpenWith(ctx, u, db.Options{MaxConns: PoolMaxConns(), ApplicationName: ApplicationName})
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close) // registered after the drop, so it runs before it
	return u, pool
}

// Connect opens one connection of its own to url, closed at cleanup: for tests that need a
// session (a held lock, a prepared statement, SET) rather than the pool's connections.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Collect reads every row of rows into a T, its fields in the columns' order, and closes rows.
func Collect[T any](t testing.TB, rows pgx.Rows) []T {
	t.Helper()
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		t.Fatalf("dbtest: collect rows: %v", err)
	}
	return out
}

// Reachable reports why the test cluster does not answer, nil when it does.
func Reachable(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
