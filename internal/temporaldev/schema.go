package temporaldev

import (
	"fmt"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// Embedded schema directories shipped with the server module; using them
// keeps the schema in lockstep with the server version we link.
const (
	coreSchemaName       = "postgresql/v12/temporal"
	visibilitySchemaName = "postgresql/v12/visibility"
)

// ensureSchemas does what the server's auto-setup image does, for both
// databases: create the database, install the version tables, then apply
// every versioned migration newer than the stored version.
func ensureSchemas(t pgTarget, coreDB, visibilityDB string, logger log.Logger) error {
	if err := ensureSchema(t, coreDB, coreSchemaName, logger); err != nil {
		return fmt.Errorf("temporal database %q: %w", coreDB, err)
	}
	if err := ensureSchema(t, visibilityDB, visibilitySchemaName, logger); err != nil {
		return fmt.Errorf("visibility database %q: %w", visibilityDB, err)
	}
	return nil
}

func ensureSchema(t pgTarget, dbName, schemaName string, logger log.Logger) error {
	// The plugin treats "already exists" as success, which is what makes a
	// restart on an existing database work.
	if err := sqltool.DoCreateDatabase(t.sqlConfig(dbName), t.maintenanceDB, logger); err != nil {
		return fmt.Errorf("create database: %w", err)
	}

	conn, err := sqltool.NewConnection(t.sqlConfig(dbName), logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	// No schema file here on purpose: the versioned directory starts at v1.0
	// with the full base schema, so setting up only the version tables at
	// 0.0 lets the update step below create everything, and a setup against
	// an already migrated database is a no-op instead of failing on
	// existing tables.
	setup := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger)
	if err := setup.Run(); err != nil {
		return fmt.Errorf("setup schema: %w", err)
	}

	update := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{
		DBName:     dbName,
		SchemaName: schemaName,
	}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("update schema: %w", err)
	}
	return nil
}
