package owner

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/store"
)

// The store refuses text jsonb cannot hold itself; should the database still refuse a write's
// data (db.ErrInvalidData), the same write fails the same way: a refusal, never retried.
func TestBuiltinResultInvalidDataIsRefusal(t *testing.T) {
	t.Parallel()
	b := &Builtin{Tenant: "t"}
	_, err := b.result(store.WriteResult{}, fmt.Errorf("upsert Patient/p1: %w", db.ErrInvalidData), "Patient")
	require.ErrorIs(t, err, ErrRefused)
	_, err = b.result(store.WriteResult{}, fmt.Errorf("upsert Patient/p1: %w", errTransientForTest), "Patient")
	require.NotErrorIs(t, err, ErrRefused)
}

var errTransientForTest = fmt.Errorf("connection reset")
