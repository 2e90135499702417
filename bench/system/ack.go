package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/inbound"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/workflows"
)

// loadResult is one measured burst: n operations by conc concurrent senders.
type loadResult struct {
	n       int
	conc    int
	elapsed time.Duration
	lat     []time.Duration // per operation, client side
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i]
}

// runConcurrent runs op(g, i) for i in [0,n) on conc goroutines (goroutine g takes i ≡ g mod
// conc, in order) and times the whole and each op.
func runConcurrent(n, conc int, op func(g, i int) error) (loadResult, error) {
	res := loadResult{n: n, conc: conc, lat: make([]time.Duration, n)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, conc)
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := g; i < n; i += conc {
				t := time.Now()
				if err := op(g, i); err != nil {
					errs[g] = fmt.Errorf("op %d: %w", i, err)
					return
				}
				res.lat[i] = time.Since(t)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.elapsed = time.Since(t0)
	return res, errors.Join(errs...)
}

// ackEnv is the ACK path alone: PostgreSQL, an Ingestor without a Starter behind a real
// mllp.Server on a loopback port. No Temporal.
type ackEnv struct {
	svc  *serviceDB
	addr string
	srv  *mllp.Server
	done chan error
}

func startACKEnv(ctx context.Context, name string, poolMaxConns int, logger *slog.Logger) (*ackEnv, error) {
	ln, port, err := listen()
	if err != nil {
		return nil, err
	}
	svc, err := newServiceDB(ctx, name, poolMaxConns, port)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	c := inbound.Connector{ID: svc.connector.ID, TenantID: svc.connector.TenantID, Name: svc.connector.Name}
	in := &inbound.Ingestor{Pool: svc.pool, Logger: logger}
	e := &ackEnv{svc: svc, addr: ln.Addr().String(), done: make(chan error, 1)}
	e.srv = newMLLPServer(in, c, logger)
	go func() { e.done <- e.srv.Serve(ln) }()
	return e, nil
}

// newMLLPServer wires a connector's server as inbound.Listeners does.
func newMLLPServer(in *inbound.Ingestor, c inbound.Connector, logger *slog.Logger) *mllp.Server {
	return &mllp.Server{
		Handler:      in.Handler(c),
		OnFrameError: in.FrameErrorHandler(c),
		ReadTimeout:  10 * time.Minute,
		WriteTimeout: 30 * time.Second,
		Logger:       logger,
	}
}

func (e *ackEnv) close() {
	_ = e.srv.Close()
	<-e.done //nolint:errcheck // Serve's answer to Close: ErrServerClosed
	e.svc.close()
}

var accepted = []byte("\rMSA|AA|")

// sendMLLP sends msgs over conc connections (message i on connection i mod conc, in order)
// and checks that every reply is an AA.
func sendMLLP(ctx context.Context, addr string, msgs [][]byte, conc int) (loadResult, error) {
	clients := make([]*mllp.Client, conc)
	for g := range clients {
		c, err := mllp.Dial(ctx, addr)
		if err != nil {
			return loadResult{}, err
		}
		defer func() { _ = c.Close() }() //nolint:revive // defer in a loop: every client lives until the load is sent
		clients[g] = c
	}
	return runConcurrent(len(msgs), conc, func(g, i int) error {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		reply, err := clients[g].Send(sctx, msgs[i])
		if err != nil {
			return err
		}
		if !bytes.Contains(reply, accepted) {
			return fmt.Errorf("not accepted: %q", reply)
		}
		return nil
	})
}

// insertParams are what ingest would insert for each message, computed before the clock
// starts: the baseline is the database work alone.
func (e *ackEnv) insertParams(msgs [][]byte) ([]db.Hl7MessageInsertParams, error) {
	c := e.svc.connector
	out := make([]db.Hl7MessageInsertParams, len(msgs))
	for i, m := range msgs {
		h, err := hl7v2.ReadHeader(m)
		if err != nil {
			return nil, err
		}
		ack, err := hl7v2.BuildAck(h, hl7v2.AckInput{Code: hl7v2.AppAccept, ControlID: fmt.Sprintf("BASE%016d", i)})
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(m)
		var msgTime *time.Time
		if t, _, err := hl7v2.ParseTime(h.Timestamp); err == nil {
			msgTime = &t
		}
		key := workflows.MessageKey{TenantID: c.TenantID, ConnectorID: c.ID, SendingApp: h.SendingApplication.String(), ControlID: h.ControlID}
		out[i] = db.Hl7MessageInsertParams{
			TenantID: c.TenantID, ConnectorID: c.ID, MessageControlID: h.ControlID, SendingApp: key.SendingApp,
			SendingFacility: h.SendingFacility.String(), MessageCode: h.Type.Code, TriggerEvent: h.Type.Trigger,
			MessageStructure: h.Type.Structure, HL7Version: h.Version, MessageTime: msgTime,
			Raw: m, RawSHA256: sum[:], AckCode: "AA", Ack: ack,
			WorkflowID: workflows.InboundHL7WorkflowID(key), RemoteAddr: "127.0.0.1:40000",
		}
	}
	return out, nil
}

// bareInsert is the baseline: one autocommit Hl7MessageInsert per message.
func (e *ackEnv) bareInsert(ctx context.Context, params []db.Hl7MessageInsertParams, conc int) (loadResult, error) {
	q := db.New(e.svc.pool)
	return runConcurrent(len(params), conc, func(_, i int) error {
		_, err := q.Hl7MessageInsert(ctx, params[i])
		return err
	})
}

// txInsert is what ingest writes: the message and its Hl7MessageReceived event in one
// transaction.
func (e *ackEnv) txInsert(ctx context.Context, params []db.Hl7MessageInsertParams, conc int) (loadResult, error) {
	c := e.svc.connector
	return runConcurrent(len(params), conc, func(_, i int) error {
		return db.InTx(ctx, e.svc.pool, func(q *db.Queries) error {
			row, err := q.Hl7MessageInsert(ctx, params[i])
			if err != nil {
				return err
			}
			return outbox.Emit(ctx, q, c.TenantID, outbox.Hl7MessageReceived, row.ID.String(), map[string]any{
				"messageId": row.ID, "connectorId": c.ID, "messageType": "ADT^A01",
			})
		})
	})
}

// insertWithEvent writes the message and its outbox event in one statement (one round trip,
// one commit) instead of BEGIN, two INSERTs and COMMIT, as db.Hl7MessageInsertReceived does for
// ingest since this prototype measured it; kept here as the raw-SQL ceiling of that path. The
// event row is the one outbox.Emit writes (same columns, payload keys and defaults).
const insertWithEvent = `WITH m AS (
    INSERT INTO hl7_messages (
        tenant_id, connector_id, message_control_id, sending_app, sending_facility, message_code,
        trigger_event, message_structure, hl7_version, message_time, raw, raw_sha256, ack_code, ack,
        workflow_id, remote_addr
    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (connector_id, message_control_id, sending_app) WHERE duplicate_of IS NULL DO NOTHING
    RETURNING id, received_at
), e AS (
    INSERT INTO domain_events (tenant_id, event_type, aggregate_type, aggregate_id, payload)
    SELECT $1, 'Hl7MessageReceived', 'Hl7Message', m.id::text,
           jsonb_build_object('messageId', m.id, 'connectorId', $2::uuid, 'messageType', $17::text, 'tenantId', $1::text)
    FROM m
)
SELECT id, received_at FROM m`

// stmtInsert writes message and event with insertWithEvent.
func (e *ackEnv) stmtInsert(ctx context.Context, params []db.Hl7MessageInsertParams, conc int) (loadResult, error) {
	return runConcurrent(len(params), conc, func(_, i int) error {
		p := params[i]
		var id uuid.UUID
		var at time.Time
		return e.svc.pool.QueryRow(ctx, insertWithEvent,
			p.TenantID, p.ConnectorID, p.MessageControlID, p.SendingApp, p.SendingFacility, p.MessageCode,
			p.TriggerEvent, p.MessageStructure, p.HL7Version, p.MessageTime, p.Raw, p.RawSHA256, p.AckCode, p.Ack,
			p.WorkflowID, p.RemoteAddr, p.MessageCode+"^"+p.TriggerEvent).Scan(&id, &at)
	})
}

// ackMode is one way of getting messages into hl7_messages.
type ackMode string

const (
	modeBare   ackMode = "bare insert"
	modeTx     ackMode = "insert+event tx"
	modeStmt   ackMode = "insert+event 1 stmt"
	modeIngest ackMode = "MLLP ingest"
)

var ackModes = []ackMode{modeBare, modeTx, modeStmt, modeIngest}

// ackFigures pools the rounds of one mode at one concurrency.
type ackFigures struct {
	rates []float64
	lat   []time.Duration
}

func (f *ackFigures) add(r loadResult) {
	f.rates = append(f.rates, r.rate())
	f.lat = append(f.lat, r.lat...)
}

func (f *ackFigures) medianRate() float64 { return median(f.rates) }

func (f *ackFigures) p(q float64) time.Duration {
	s := slices.Clone(f.lat)
	slices.Sort(s)
	return percentile(s, q)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ackReport holds every figure of the ACK scenario, by concurrency and mode.
type ackReport struct {
	concs   []int
	figures map[int]map[ackMode]*ackFigures
	rounds  int
	n       int
	pool    int32
}

// runACK measures the three modes at each concurrency, rounds times, interleaved (bare, tx,
// ingest, bare, tx, ingest, …) so that drift in the machine's load hits all modes alike.
func runACK(ctx context.Context, cfg config, logger *slog.Logger) (*ackReport, error) {
	name := uniqueName()
	defer func() {
		if err := dropDatabase(name); err != nil {
			logger.Warn("cleanup", "error", err)
		}
	}()
	e, err := startACKEnv(ctx, name, cfg.e2e.poolMaxConns, logger)
	if err != nil {
		return nil, err
	}
	defer e.close()

	rep := &ackReport{concs: []int{1, cfg.conns}, figures: map[int]map[ackMode]*ackFigures{}, rounds: cfg.rounds, n: cfg.n,
		pool: e.svc.pool.MaxConns()}
	if cfg.conns == 1 {
		rep.concs = []int{1}
	}
	seq := 0
	measure := func(mode ackMode, conc, n int) (loadResult, error) {
		seq++
		msgs := messages(fmt.Sprintf("A%03d-", seq), n)
		switch mode {
		case modeIngest:
			return sendMLLP(ctx, e.addr, msgs, conc)
		default:
			params, err := e.insertParams(msgs)
			if err != nil {
				return loadResult{}, err
			}
			switch mode {
			case modeBare:
				return e.bareInsert(ctx, params, conc)
			case modeStmt:
				return e.stmtInsert(ctx, params, conc)
			default:
				return e.txInsert(ctx, params, conc)
			}
		}
	}
	for _, conc := range rep.concs {
		rep.figures[conc] = map[ackMode]*ackFigures{}
		for _, mode := range ackModes {
			rep.figures[conc][mode] = &ackFigures{}
			// Warm-up: connections, prepared statements, buffers.
			if _, err := measure(mode, conc, min(cfg.n, 200)); err != nil {
				return nil, fmt.Errorf("%s warm-up: %w", mode, err)
			}
		}
		for r := range cfg.rounds {
			for _, mode := range ackModes {
				res, err := measure(mode, conc, cfg.n)
				if err != nil {
					return nil, fmt.Errorf("%s, %d concurrent, round %d: %w", mode, conc, r+1, err)
				}
				rep.figures[conc][mode].add(res)
				logger.Info("ack phase", "mode", string(mode), "conc", conc, "round", r+1,
					"msgs_per_s", fmt.Sprintf("%.0f", res.rate()))
			}
		}
	}
	return rep, nil
}
