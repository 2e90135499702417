package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
)

// Every driver error that leaves the package is interpreted once, at the boundary: callers
// test the sentinels, and still read the database's own words.

func TestErrorsAreInterpretedAtTheBoundary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	conn := newConnector(t, q, "t1", "a", 3201)

	t.Run("no row is ErrNotFound", func(t *testing.T) {
		_, err := q.ConnectorGetByName(ctx, db.ConnectorGetByNameParams{TenantID: "t1", Name: "nobody"})
		require.ErrorIs(t, err, db.ErrNotFound)
		require.ErrorIs(t, err, pgx.ErrNoRows, "the driver's error stays reachable")
		require.Equal(t, pgx.ErrNoRows.Error(), err.Error(), "the text is the driver's")

		var n int
		err = pool.QueryRow(ctx, "SELECT 1 WHERE false").Scan(&n)
		require.ErrorIs(t, err, db.ErrNotFound, "QueryRow on the pool too")
	})

	t.Run("unique violation is ErrConflict, naming the constraint", func(t *testing.T) {
		_, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
			TenantID: "t1", FacilityID: "f1", Name: "a", Protocol: db.ConnectorProtocolMLLP,
			Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(`{}`),
		})
		require.ErrorIs(t, err, db.ErrConflict)
		require.NotErrorIs(t, err, db.ErrCheckViolation)
		require.Equal(t, "interop_connectors_tenant_name", db.ConstraintName(err))
		require.Contains(t, err.Error(), "duplicate key value violates unique constraint")
		require.NotEmpty(t, db.ConstraintMessage(err))
	})

	t.Run("check violation is ErrCheckViolation", func(t *testing.T) {
		_, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
			TenantID: "not a tenant!", FacilityID: "f1", Name: "b", Protocol: db.ConnectorProtocolMLLP,
			Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(`{}`),
		})
		require.ErrorIs(t, err, db.ErrCheckViolation)
		require.Equal(t, "interop_connectors_tenant_id_check", db.ConstraintName(err))

		// The invariant triggers raise check_violation with a message worded for users.
		_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: conn.ID, Status: db.ConnectorStatusRetired})
		require.NoError(t, err)
		_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: conn.ID, Status: db.ConnectorStatusActive})
		require.ErrorIs(t, err, db.ErrCheckViolation)
		require.NotEmpty(t, db.ConstraintMessage(err))
	})

	t.Run("a missing parent is ErrForeignKey", func(t *testing.T) {
		other := db.InteropConnector{TenantID: "t1", ID: uuid.New()}
		_, err := insertMessage(t, pool, other, "FK1", []byte("MSH|fk"))
		require.ErrorIs(t, err, db.ErrForeignKey)
	})

	t.Run("data the database cannot store is ErrInvalidData", func(t *testing.T) {
		insert := func(name string, settings []byte) error {
			_, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
				TenantID: "t1", FacilityID: "f1", Name: name, Protocol: db.ConnectorProtocolMLLP,
				Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: settings,
			})
			return err
		}
		for _, c := range []struct {
			what, name, settings, code string
		}{
			{"invalid UTF-8 in text", "bad\xff", `{}`, "22021"},
			{"a NUL byte in text", "nul\x00", `{}`, "22021"},
			{"malformed JSON", "json", `{"a":`, "22P02"},
			{`\u0000 in jsonb`, "jsonb-nul", `{"a":"\u0000"}`, "22P05"},
		} {
			err := insert(c.name, []byte(c.settings))
			require.ErrorIs(t, err, db.ErrInvalidData, c.what)
			require.NotErrorIs(t, err, db.ErrCheckViolation, c.what)
			require.Contains(t, err.Error(), "SQLSTATE "+c.code, c.what)
		}
	})

	t.Run("other errors pass unchanged", func(t *testing.T) {
		_, err := pool.Exec(ctx, "SELECT * FROM no_such_table")
		require.Error(t, err)
		for _, s := range []error{db.ErrNotFound, db.ErrConflict, db.ErrCheckViolation, db.ErrForeignKey, db.ErrInvalidData} {
			require.NotErrorIs(t, err, s)
		}
		var dbErr *db.Error
		require.False(t, errors.As(err, &dbErr))
	})
}

func TestInTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	insert := func(q *db.Queries, name string) error {
		_, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
			TenantID: "t1", FacilityID: "f1", Name: name, Protocol: db.ConnectorProtocolMLLP,
			Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(`{}`),
		})
		return err
	}
	exists := func(name string) bool {
		_, err := db.New(pool).ConnectorGetByName(ctx, db.ConnectorGetByNameParams{TenantID: "t1", Name: name})
		if errors.Is(err, db.ErrNotFound) {
			return false
		}
		require.NoError(t, err)
		return true
	}

	t.Run("commits when fn returns nil", func(t *testing.T) {
		require.NoError(t, db.InTx(ctx, pool, func(q *db.Queries) error { return insert(q, "committed") }))
		require.True(t, exists("committed"))
	})

	t.Run("rolls back and returns fn's error as is", func(t *testing.T) {
		mine := errors.New("changed my mind")
		err := db.InTx(ctx, pool, func(q *db.Queries) error {
			require.NoError(t, insert(q, "rolled-back"))
			require.True(t, exists("committed"), "the pool sees committed rows meanwhile")
			return mine
		})
		require.Same(t, mine, err, "fn's error is not wrapped (a Temporal application error must stay one)")
		require.False(t, exists("rolled-back"))
	})

	t.Run("interprets statement errors inside the transaction", func(t *testing.T) {
		err := db.InTx(ctx, pool, func(q *db.Queries) error {
			require.NoError(t, insert(q, "first"))
			return insert(q, "first")
		})
		require.ErrorIs(t, err, db.ErrConflict)
		require.False(t, exists("first"), "the whole transaction is undone")
	})

	t.Run("rolls back on panic, and the panic goes on", func(t *testing.T) {
		func() {
			defer func() { require.Equal(t, "boom", recover()) }()
			_ = db.InTx(ctx, pool, func(q *db.Queries) error {
				require.NoError(t, insert(q, "panicked"))
				panic("boom")
			})
		}()
		require.False(t, exists("panicked"))
		require.NoError(t, db.InTx(ctx, pool, func(q *db.Queries) error { return insert(q, "panicked") }),
			"nothing of the panicked transaction is left to conflict with")
	})
}
