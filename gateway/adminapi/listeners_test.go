package adminapi

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/inbound"
	"github.com/nhp/interop/gateway/internal/gatewaytest"
)

// The connector tests follow a connector through the admin API to the MLLP listeners it opens
// (gateway/inbound), with the shared MLLP test kit under the names those tests use.
var (
	freePort        = gatewaytest.FreePort
	hostPort        = gatewaytest.HostPort
	requireRefused  = gatewaytest.RequireRefused
	requireAccepts  = gatewaytest.RequireAccepts
	insertConnector = gatewaytest.InsertConnector
	count           = gatewaytest.Count
)

type connectorSpec = gatewaytest.ConnectorSpec

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newListeners returns Listeners on pool whose listeners all close when the test ends.
func newListeners(t testing.TB, pool *db.Pool) *inbound.Listeners {
	t.Helper()
	in := &inbound.Ingestor{Pool: pool, Logger: discardLogger()}
	l := &inbound.Listeners{Pool: pool, Ingestor: in, Logger: discardLogger(), DefaultHost: "127.0.0.1", Interval: 20 * time.Millisecond}
	t.Cleanup(l.Close) // registered after dbtest.New: runs before the pool closes
	return l
}
