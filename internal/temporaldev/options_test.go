package temporaldev

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
)

func TestParseDatabaseURL(t *testing.T) {
	got, err := parseDatabaseURL("postgresql://alice:s%3Acret@db.example:6543/maint?sslmode=require&connect_timeout=5")
	require.NoError(t, err)
	require.Equal(t, "maint", got.maintenanceDB)
	c := got.sqlConfig("temporal")
	require.Equal(t, "postgres12_pgx", c.PluginName)
	require.Equal(t, "alice", c.User)
	require.Equal(t, "s:cret", c.Password)
	require.Equal(t, "db.example:6543", c.ConnectAddr)
	require.Equal(t, "temporal", c.DatabaseName)
	require.Equal(t, map[string]string{"sslmode": "require", "connect_timeout": "5"}, c.ConnectAttributes)

	// Defaults mirror libpq's, except the user, which is postgres rather
	// than the OS user so that behaviour does not depend on who runs it.
	got, err = parseDatabaseURL("postgres://")
	require.NoError(t, err)
	require.Equal(t, "postgres", got.maintenanceDB)
	require.Equal(t, "127.0.0.1:5432", got.base.ConnectAddr)
	require.Equal(t, "postgres", got.base.User)

	_, err = parseDatabaseURL("postgres://h:notaport/x")
	require.Error(t, err)
}

func TestDynamicConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dc.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
frontend.enableUpdateWorkflowExecution:
  - value: false
history.maxAutoResetPoints:
  - value: 7
limit.maxIDLength:
  - value: 300
`), 0o600))

	done := make(chan any)
	defer close(done)
	registering := new(atomic.Bool)
	registering.Store(true)
	dc, err := newDynamicConfig(Options{
		DynamicConfigFile: file,
		DynamicConfig:     map[string]any{"limit.maxIDLength": 500},
	}, log.NewNoopLogger(), done, registering)
	require.NoError(t, err)

	value := func(key string) any {
		cvs := dc.GetValue(dynamicconfig.MakeKey(key))
		if len(cvs) == 0 {
			return nil
		}
		return cvs[0].Value
	}
	require.Equal(t, true, value("system.enableEagerWorkflowStart"), "default")
	require.Equal(t, true, value("system.forceSearchAttributesCacheRefreshOnRead"), "while registering")
	registering.Store(false)
	require.Nil(t, value("system.forceSearchAttributesCacheRefreshOnRead"), "after registering: the server's default")
	require.Equal(t, 8, value("history.shardIOConcurrency"), "default")
	require.Equal(t, false, value("frontend.enableUpdateWorkflowExecution"), "file beats default")
	require.Equal(t, 7, value("history.maxAutoResetPoints"), "file only")
	require.Equal(t, 500, value("limit.maxIDLength"), "options beat file")
	require.Nil(t, value("no.such.key"))
}

func TestDynamicConfigBadFile(t *testing.T) {
	done := make(chan any)
	defer close(done)
	_, err := newDynamicConfig(Options{DynamicConfigFile: filepath.Join(t.TempDir(), "missing.yaml")}, log.NewNoopLogger(), done, nil)
	require.ErrorContains(t, err, "load dynamic config file")
}

func TestPickEndpoints(t *testing.T) {
	ep, err := pickEndpoints("127.0.0.1:0", true)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", ep.internalIP)
	require.LessOrEqual(t, ep.frontendPort, maxPickedPort)
	seen := map[int]bool{}
	for name, svc := range ep.services {
		for _, port := range []int{svc.RPC.GRPCPort, svc.RPC.MembershipPort} {
			require.False(t, seen[port], "port %d reused (%s)", port, name)
			seen[port] = true
		}
		// The membership table stores ports as SMALLINT.
		require.LessOrEqual(t, svc.RPC.MembershipPort, maxPickedPort)
	}
	// The internal frontend (asked for with OIDC) trusts every caller: it stays internal.
	require.Len(t, ep.services, 5)
	require.Equal(t, "127.0.0.1", ep.services["internal-frontend"].RPC.BindOnIP)

	ep, err = pickEndpoints(":0", false)
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0", ep.frontendBind)
	require.Equal(t, "127.0.0.1", ep.internalIP)
	require.NotContains(t, ep.services, "internal-frontend")

	_, err = pickEndpoints("example.com:7233", false)
	require.ErrorContains(t, err, "IPv4")
}
