// Package migrations holds the database schema as golang-migrate files, embedded into the binary
// so that `interop migrate up` and `interop dev` need nothing but the executable.
package migrations

import "embed"

// FS holds every NNNNNN_name.up.sql and .down.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS
