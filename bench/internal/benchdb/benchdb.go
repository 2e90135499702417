// Package benchdb gives the whole-system benchmarks a fresh, migrated PostgreSQL database of
// their own, dropped at the end.
package benchdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nhp/interop/db"
)

// DB is a fresh migrated database, dropped by Drop.
type DB struct {
	Name string
	URL  string
	Pool *db.Pool
}

// ClusterURL is the PostgreSQL the benchmarks use: TEST_DATABASE_URL, else DATABASE_URL, else
// 127.0.0.1:5432.
func ClusterURL() string {
	for _, key := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(key); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// UniqueName is prefix_<12 hex digits>: a fresh database name (a valid identifier when prefix
// is one).
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// URL is the URL of database name in the benchmarks' cluster (ClusterURL).
func URL(name string) (string, error) {
	u, err := url.Parse(ClusterURL())
	if err != nil {
		return "", fmt.Errorf("parse cluster url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// New creates and migrates a database named prefix_<random>.
func New(ctx context.Context, prefix string) (*DB, error) {
	name := UniqueName(prefix)
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s (set TEST_DATABASE_URL): %w", ClusterURL(), err)
	}
	defer func() { _ = conn.Close(ctx) }() // the statement's error is the one that counts
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	dbURL, err := URL(name)
	if err != nil {
		return nil, err
	}
	d := &DB{Name: name, URL: dbURL}
	if err := db.MigrateUp(d.URL); err != nil {
		d.Drop()
		return nil, err
	}
	if d.Pool, err = db.Open(ctx, d.URL); err != nil {
		d.Drop()
		return nil, err
	}
	return d, nil
}

// Drop closes the pool and drops the database.
func (d *DB) Drop() {
	if d.Pool != nil {
		d.Pool.Close()
	}
	DropNamed(d.Name)
}

// DropNamed drops the database name of the cluster, if it exists (e.g. the embedded Temporal
// server's databases beside a benchmark's).
func DropNamed(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ClusterURL())
	if err != nil {
		return
	}
	defer func() { _ = conn.Close(ctx) }() // the statement's error is the one that counts
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "drop", name, err)
	}
}
