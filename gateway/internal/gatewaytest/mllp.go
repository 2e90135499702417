package gatewaytest

import (
	"bytes"
	"context"
	_ "embed"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// SendWait bounds one MLLP exchange of SendOn.
const SendWait = 10 * time.Second

//go:embed testdata/adt_a01.hl7
var adtA01 string

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	if port < 1 || port > math.MaxUint16 {
		t.Fatalf("listener on 127.0.0.1 has port %d: not a TCP port", port)
		return 0 // Fatalf does not return; this return shows the bound of the conversion below
	}
	return int32(port)
}

// HostPort is 127.0.0.1:port.
func HostPort(port int32) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) }

// RequireRefused requires that nothing listens on addr.
func RequireRefused(t testing.TB, addr string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		_ = nc.Close()
	}
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "dial %s", addr)
}

// RequireAccepts sends a message with control id id to addr and requires AA.
func RequireAccepts(t testing.TB, addr, id string) {
	t.Helper()
	_, ack := SendOn(t, Dial(t, addr), Message(t, id))
	require.Equal(t, hl7v2.AppAccept, ack.Code)
	require.Equal(t, id, ack.ControlID)
}

// ConnectorSpec is an mllp connector for InsertConnector.
type ConnectorSpec struct {
	Tenant, Facility, Name string
	Host                   *string // nil: the Listeners' DefaultHost
	Port                   int32
	Status                 db.ConnectorStatus // draft when empty
	Direction              db.ConnectorDirection
	Settings               string
}

// InsertConnector inserts an mllp connector as a draft, then moves it to spec.Status.
func InsertConnector(t testing.TB, q *db.Queries, spec ConnectorSpec) db.InteropConnector {
	t.Helper()
	ctx := context.Background()
	if spec.Direction == "" {
		spec.Direction = db.ConnectorDirectionInbound
	}
	if spec.Settings == "" {
		spec.Settings = "{}"
	}
	c, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
		TenantID: spec.Tenant, FacilityID: spec.Facility, Name: spec.Name, Protocol: db.ConnectorProtocolMLLP,
		Direction: spec.Direction, Status: db.ConnectorStatusDraft,
		ListenHost: spec.Host, ListenPort: &spec.Port, Settings: []byte(spec.Settings),
	})
	require.NoError(t, err)
	if spec.Status != "" && spec.Status != db.ConnectorStatusDraft {
		c, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: spec.Tenant, ID: c.ID, Status: spec.Status})
		require.NoError(t, err)
	}
	return c
}

// Fixture returns the ADT^A01 fixture (testdata/adt_a01.hl7) with CR segment terminators, as
// it goes on the wire.
func Fixture(t testing.TB) []byte {
	t.Helper()
	s := strings.ReplaceAll(adtA01, "\r\n", "\n")
	s = strings.TrimRight(s, "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r") + "\r")
}

// WithMSH returns a copy of msg with MSH-n (n >= 3) set to value.
func WithMSH(t testing.TB, msg []byte, n int, value string) []byte {
	t.Helper()
	require.GreaterOrEqual(t, n, 3)
	end := bytes.IndexByte(msg, '\r')
	require.Positive(t, end)
	fields := strings.Split(string(msg[:end]), "|") // fields[k] is MSH-(k+1)
	for len(fields) < n {
		fields = append(fields, "")
	}
	fields[n-1] = value
	out := []byte(strings.Join(fields, "|"))
	return append(out, msg[end:]...)
}

// Message is the fixture with control id id.
func Message(t testing.TB, id string) []byte { return WithMSH(t, Fixture(t), 10, id) }

// Dial opens an MLLP client to addr, closed when the test ends.
func Dial(t testing.TB, addr string) *mllp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// SendOn sends msg on c and returns the raw reply and what it says.
func SendOn(t testing.TB, c *mllp.Client, msg []byte) ([]byte, hl7v2.AckInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), SendWait)
	defer cancel()
	reply, err := c.Send(ctx, msg)
	require.NoError(t, err)
	info, err := hl7v2.ParseAck(reply)
	require.NoError(t, err, "reply: %q", reply)
	return reply, info
}
