package gatewaytest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// Count runs a SELECT count(*) sql on pool.
func Count(t testing.TB, pool *db.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}
