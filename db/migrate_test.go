package db_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
)

// Up, down to nothing, and up again must all work: a broken down file is found here, not
// during an incident.
func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	u := dbtest.CreateDatabase(t, dbtest.UniqueName("migrate"))
	m, err := db.NewMigrator(u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	require.NoError(t, m.Up())
	top, dirty, err := m.Version()
	require.NoError(t, err)
	require.False(t, dirty)
	require.GreaterOrEqual(t, top, uint(7))

	require.NoError(t, m.Up(), "a second up is a no-op")
	require.NoError(t, m.Down(1))
	v, _, err := m.Version()
	require.NoError(t, err)
	require.Less(t, v, top)

	require.NoError(t, m.Down(0))
	v, _, err = m.Version()
	require.NoError(t, err)
	require.Zero(t, v)

	require.NoError(t, m.Up())
	v, dirty, err = m.Version()
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, top, v)
}
