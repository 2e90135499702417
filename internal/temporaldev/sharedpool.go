package temporaldev

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/iancoleman/strcase"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/server/common/config"
)

// sharedPool bounds the connections that every pool of one store opens together. Each of the
// server's four services opens its own pool per store; a fixed bound per pool either starves
// the busy one (history) or lets the four together hold four times what was meant. Here the
// pools draw their physical connections from one set of tokens: any pool may use the whole
// budget, and all of them together never exceed it. Idle connections are few and short-lived,
// so that a quiet service hands its tokens back.
type sharedPool struct {
	tokens chan struct{}
}

func newSharedPool(n int) *sharedPool {
	return &sharedPool{tokens: make(chan struct{}, max(n, 1))}
}

// sharedMaxIdleTime is how long a pool of a shared store keeps an idle connection: a service
// that has gone quiet hands its tokens back within it.
const sharedMaxIdleTime = 15 * time.Second

// sharedMaxIdle is how many idle connections one pool of a store with budget n keeps: half the
// budget. With one (as before), every connection a burst took beyond the first was closed on
// release and opened again for the next statement: the soak benchmark (bench/soak) counted
// 2.3 new PostgreSQL sessions per message. Half leaves the other half for another service
// while a quiet one still holds tokens, until sharedMaxIdleTime frees them.
func sharedMaxIdle(n int) int { return max(1, n/2) }

// connect is a config.SQL.Connect: the plugin's own connection (the pgx driver with the
// server's type mapping) whose physical connections each hold a token of p.
func (p *sharedPool) connect(cfg *config.SQL) (*sqlx.DB, error) {
	pc, err := pgx.ParseConfig(dsn(cfg))
	if err != nil {
		return nil, fmt.Errorf("temporal database config: %w", err)
	}
	inner := stdlib.GetConnector(*pc, stdlib.OptionAfterConnect(registerCustomTypes))
	db := sql.OpenDB(&tokenConnector{inner: inner, pool: p})
	db.SetMaxOpenConns(cap(p.tokens))
	db.SetMaxIdleConns(sharedMaxIdle(cap(p.tokens)))
	db.SetConnMaxIdleTime(sharedMaxIdleTime)
	x := sqlx.NewDb(db, "pgx")
	// As the plugin's own connections: struct fields in CamelCase map to snake_case columns.
	x.MapperFunc(strcase.ToSnake)
	if err := x.Ping(); err != nil {
		_ = x.Close()
		return nil, err
	}
	return x, nil
}

// dsn is the URL the server's postgres plugin would build from cfg.
func dsn(cfg *config.SQL) string {
	q := url.Values{}
	for k, v := range cfg.ConnectAttributes {
		q.Set(k, v)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, cfg.Password), Host: cfg.ConnectAddr,
		Path: "/" + cfg.DatabaseName, RawQuery: q.Encode()}
	if cfg.Password == "" {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// registerCustomTypes is the server's pgx type mapping (its postgresql driver package):
// durations are stored as bigint nanoseconds.
func registerCustomTypes(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterDefaultPgType(time.Duration(0), "int8")
	conn.TypeMap().RegisterDefaultPgType((*time.Duration)(nil), "int8")
	return nil
}

// tokenConnector takes a token before each physical connection, waiting as long as the
// caller's context allows.
type tokenConnector struct {
	inner driver.Connector
	pool  *sharedPool
}

func (c *tokenConnector) Connect(ctx context.Context) (driver.Conn, error) {
	select {
	case c.pool.tokens <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("temporal database: waiting for a connection of the budget: %w", ctx.Err())
	}
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		<-c.pool.tokens
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		_ = conn.Close()
		<-c.pool.tokens
		return nil, errors.New("temporal database: unexpected driver connection")
	}
	return &tokenConn{Conn: sc, release: sync.OnceFunc(func() { <-c.pool.tokens })}, nil
}

func (c *tokenConnector) Driver() driver.Driver { return c.inner.Driver() }

// tokenConn is a pgx connection that gives its token back when closed; every other method is
// pgx's own.
type tokenConn struct {
	*stdlib.Conn
	release func()
}

func (c *tokenConn) Close() error {
	defer c.release()
	return c.Conn.Close()
}
