package db

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/nhp/interop/migrations"
)

// Migrator runs the embedded migrations against one database.
type Migrator struct {
	m *migrate.Migrate
}

// NewMigrator opens a migrator on databaseURL (a postgres:// or postgresql:// URL).
func NewMigrator(databaseURL string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	target, err := pgx5URL(databaseURL)
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, target)
	if err != nil {
		return nil, fmt.Errorf("open migrator: %w", err)
	}
	return &Migrator{m: m}, nil
}

// Up applies every pending migration. Nothing to do is success.
func (m *Migrator) Up() error {
	if err := m.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts steps migrations; steps <= 0 reverts all of them.
func (m *Migrator) Down(steps int) error {
	var err error
	if steps <= 0 {
		err = m.m.Down()
	} else {
		err = m.m.Steps(-steps)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Version reports the applied version and whether a failed migration left the schema dirty.
// A database without migrations reports version 0.
func (m *Migrator) Version() (version uint, dirty bool, err error) {
	version, dirty, err = m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, dirty, nil
}

// Close releases the migrator's connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

// MigrateUp is the one-call form used at start-up.
func MigrateUp(databaseURL string) (err error) {
	m, err := NewMigrator(databaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := m.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close migrator: %w", cerr))
		}
	}()
	return m.Up()
}

func pgx5URL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("database url: unsupported scheme %q (want postgres://)", u.Scheme)
	}
	return u.String(), nil
}
