package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// One setting sizes every pool of a process, and the pools never add up to more than it.
func TestDBBudget(t *testing.T) {
	t.Parallel()
	c := Default()
	b, err := c.DBBudget(true)
	require.NoError(t, err)
	require.Equal(t, DBBudget{Total: 40, Service: 18, Temporal: 12, TemporalVisibility: 10}, b, "interop dev's default")
	b, err = c.DBBudget(false)
	require.NoError(t, err)
	require.Equal(t, DBBudget{Total: 20, Service: 20}, b, "a gateway or worker: its service pool alone")

	for _, total := range []int{16, 17, 24, 33, 40, 100, 1000} {
		c.DBMaxConns = total
		b, err := c.DBBudget(true)
		require.NoError(t, err)
		require.Equal(t, total, int(b.Service)+b.Temporal+b.TemporalVisibility, "budget %d", total)
		require.Positive(t, b.Temporal)
		require.Positive(t, b.TemporalVisibility)
		require.GreaterOrEqual(t, b.Service, int32(7))
	}
	c.DBMaxConns = 15
	_, err = c.DBBudget(true)
	require.ErrorContains(t, err, "at least 16")

	cfg, err := fromLookup(func(k string) (string, bool) {
		return map[string]string{"INTEROP_DB_MAX_CONNS": "30"}[k], k == "INTEROP_DB_MAX_CONNS"
	})
	require.NoError(t, err)
	require.Equal(t, 30, cfg.DBMaxConns)
	_, err = fromLookup(func(k string) (string, bool) { return "many", k == "INTEROP_DB_MAX_CONNS" })
	require.ErrorContains(t, err, "INTEROP_DB_MAX_CONNS")
}
