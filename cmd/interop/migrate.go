package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/config"
)

type migrateCmd struct {
	Up      migrateUpCmd      `cmd:"" help:"Apply every pending migration."`
	Down    migrateDownCmd    `cmd:"" help:"Revert migrations (one by default)."`
	Version migrateVersionCmd `cmd:"" help:"Print the applied schema version."`
}

type migrateUpCmd struct {
	CreateDatabase bool `name:"create-database" help:"Create the database in DATABASE_URL first when it does not exist."`
}

func (m migrateUpCmd) Run(ctx context.Context, cfg *config.Config) error {
	if m.CreateDatabase {
		if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	return withMigrator(cfg, func(mg *db.Migrator) error {
		if err := mg.Up(); err != nil {
			return err
		}
		return printVersion(mg)
	})
}

type migrateDownCmd struct {
	Steps int  `default:"1" help:"How many migrations to revert."`
	All   bool `help:"Revert every migration (drops the whole schema)."`
}

func (m migrateDownCmd) Run(cfg *config.Config) error {
	steps := m.Steps
	if m.All {
		steps = 0
	} else if steps < 1 {
		return fmt.Errorf("--steps must be at least 1 (use --all to revert everything)")
	}
	return withMigrator(cfg, func(mg *db.Migrator) error {
		if err := mg.Down(steps); err != nil {
			return err
		}
		return printVersion(mg)
	})
}

type migrateVersionCmd struct{}

func (migrateVersionCmd) Run(cfg *config.Config) error {
	return withMigrator(cfg, printVersion)
}

func withMigrator(cfg *config.Config, fn func(*db.Migrator) error) (err error) {
	mg, err := db.NewMigrator(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	// The migrator holds the migration source and a database connection: a failure to
	// release them is reported with the command's result, not dropped.
	defer func() {
		if cerr := mg.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close migrator: %w", cerr))
		}
	}()
	return fn(mg)
}

func printVersion(mg *db.Migrator) error {
	v, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	state := "clean"
	if dirty {
		state = "dirty: a migration failed half-way; fix it, then force the version"
	}
	fmt.Printf("schema version %d (%s)\n", v, state)
	return nil
}
