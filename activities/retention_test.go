package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// Retention prunes only processed messages past the cutoff; failed and dead-lettered ones stay
// for support staff however old they are, and the append-only guard still holds outside it.
func TestPruneProcessed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()

	old1, _ := h.process("OLD-1")
	h.must(nil, h.acts.CompleteMessage, old1)
	old2, _ := h.process("OLD-2")
	h.must(nil, h.acts.CompleteMessage, old2)
	recent, _ := h.process("NEW-1")
	h.must(nil, h.acts.CompleteMessage, recent)
	dead := h.start(h.insertMessage("DEAD-1", fixture(t)))
	h.must(nil, h.acts.FailMessage, FailInput{MessageRef: dead, ErrorCode: "X", Detail: "d", DeadLetter: true})

	_, err := h.pool.Exec(ctx, `UPDATE hl7_messages SET processed_at = now() - interval '40 days' WHERE id = ANY($1)`,
		[]any{old1.MessageID, old2.MessageID})
	require.NoError(t, err)
	_, err = h.pool.Exec(ctx, `UPDATE hl7_messages SET status_changed_at = now() - interval '400 days' WHERE id = $1`, dead.MessageID)
	require.NoError(t, err)

	n, err := h.acts.PruneProcessed(ctx, time.Now().Add(-30*24*time.Hour), 1)
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "batches of one still reach every old processed message")

	for id, kept := range map[any]bool{old1.MessageID: false, old2.MessageID: false, recent.MessageID: true, dead.MessageID: true} {
		require.Equal(t, kept, h.count(`SELECT count(*) FROM hl7_messages WHERE id = $1`, id) == 1, "%v", id)
	}
	require.Zero(t, h.count(`SELECT count(*) FROM hl7_processing_attempts WHERE message_id = $1`, old1.MessageID))

	_, err = h.pool.Exec(ctx, `DELETE FROM hl7_messages WHERE id = $1`, recent.MessageID)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "outside retention the log stays append-only: %v", err)
}
