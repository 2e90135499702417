package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// InTx runs fn in a transaction on p, committing if fn returns nil and rolling back if it
// returns an error or panics. fn's error is returned as is (so a Temporal application error
// stays one); beginning and committing report interpreted errors.
func InTx(ctx context.Context, p *Pool, fn func(q *Queries) error) (err error) {
	t, err := p.pool.Begin(ctx)
	if err != nil {
		return interpret(err)
	}
	defer func() {
		// After a commit this is a no-op (ErrTxClosed); on a panic or an error it undoes fn.
		if rbErr := t.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = interpret(rbErr)
		}
	}()
	if err := fn(New(txConn{t})); err != nil {
		return err
	}
	return interpret(t.Commit(ctx))
}

// Conn is the connection q runs on, with interpreted errors: for the built-in store's dynamic
// search SQL, which sqlc cannot express, to run in the same transaction as q.
func (q *Queries) Conn() DBTX { return q.db }

// txConn is a transaction as a DBTX that interprets errors.
type txConn struct{ tx pgx.Tx }

func (c txConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.tx.Exec(ctx, sql, args...)
	return tag, interpret(err)
}

func (c txConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := c.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, interpret(err)
	}
	return rows{r}, nil
}

func (c txConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{c.tx.QueryRow(ctx, sql, args...)}
}

// row interprets Scan's error, where pgx reports a QueryRow's failure.
type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error { return interpret(r.r.Scan(dest...)) }

// rows interprets the errors of a result set (a statement's error surfaces in Err).
type rows struct{ pgx.Rows }

func (r rows) Scan(dest ...any) error { return interpret(r.Rows.Scan(dest...)) }
func (r rows) Err() error             { return interpret(r.Rows.Err()) }
