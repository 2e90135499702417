package outbox

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c, err := ParseCursor(Cursor{TxID: "812", Seq: 44}.String())
	require.NoError(t, err)
	require.Equal(t, Cursor{TxID: "812", Seq: 44}, c)

	start, err := ParseCursor("")
	require.NoError(t, err)
	require.Equal(t, Cursor{TxID: "0"}, start)

	for _, bad := range []string{"x", "1", "a-1", "1-b", "1--2", "-1-2", "1;drop-2"} {
		_, err := ParseCursor(bad)
		require.ErrorIs(t, err, ErrBadCursor, bad)
	}
}

func TestEveryEventHasAnAggregate(t *testing.T) {
	t.Parallel()
	for _, e := range []EventType{Hl7MessageReceived, Hl7MessageProcessed, Hl7MessageFailed, Hl7MessageDeadLettered,
		FhirRequestRouted, BulkExportStarted, BulkExportCompleted, ConnectorActivated, ConnectorDeactivated} {
		require.NotEmpty(t, aggregateOf[e], e)
	}
}
