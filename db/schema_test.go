package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
)

// The domain invariants that the database enforces, each proven by a write it refuses.

func newConnector(t *testing.T, q *db.Queries, tenant, name string, port int32) db.InteropConnector {
	t.Helper()
	c, err := q.ConnectorInsert(context.Background(), db.ConnectorInsertParams{
		TenantID: tenant, FacilityID: "f1", Name: name, Protocol: db.ConnectorProtocolMLLP,
		Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft,
		ListenPort: &port, Settings: []byte(`{}`),
	})
	require.NoError(t, err)
	return c
}

func TestOneActiveConnectorPerTenantFacilityProtocolDirection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)

	a := newConnector(t, q, "t1", "a", 3001)
	b := newConnector(t, q, "t1", "b", 3002)
	_, err := q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: a.ID, Status: db.ConnectorStatusActive})
	require.NoError(t, err)
	_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: b.ID, Status: db.ConnectorStatusActive})
	require.True(t, conflictOn(err, "interop_connectors_one_active"), "got %v", err)

	// Another tenant may use the same facility name, but never the same active port.
	c := newConnector(t, q, "t2", "c", 3001)
	_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t2", ID: c.ID, Status: db.ConnectorStatusActive})
	require.True(t, conflictOn(err, "interop_connectors_active_port"), "got %v", err)

	// Deactivating frees the slot; a retired connector never comes back.
	_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: a.ID, Status: db.ConnectorStatusRetired})
	require.NoError(t, err)
	_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: b.ID, Status: db.ConnectorStatusActive})
	require.NoError(t, err)
	_, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: "t1", ID: a.ID, Status: db.ConnectorStatusActive})
	require.True(t, errors.Is(err, db.ErrCheckViolation), "got %v", err)
}

func insertMessage(t *testing.T, pool *db.Pool, conn db.InteropConnector, controlID string, raw []byte) (db.Hl7MessageInsertRow, error) {
	t.Helper()
	sum := sha256.Sum256(raw)
	return db.New(pool).Hl7MessageInsert(context.Background(), db.Hl7MessageInsertParams{
		TenantID: conn.TenantID, ConnectorID: conn.ID, MessageControlID: controlID, SendingApp: "LAB",
		Raw: raw, RawSHA256: sum[:], AckCode: "AA", Ack: []byte("MSH|ack"), WorkflowID: "wf-" + controlID,
	})
}

func TestHl7MessageDedupAndImmutability(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	conn := newConnector(t, db.New(pool), "t1", "a", 3101)

	first, err := insertMessage(t, pool, conn, "C1", []byte("MSH|1"))
	require.NoError(t, err)

	// The same key inserts nothing: the caller learns it is a resend.
	_, err = insertMessage(t, pool, conn, "C1", []byte("MSH|1"))
	require.ErrorIs(t, err, db.ErrNotFound)

	// Processing state moves; raw bytes and identity never do.
	_, err = db.New(pool).Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{ID: first.ID, Status: db.Hl7MessageStatusProcessing})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "UPDATE hl7_messages SET raw = 'x' WHERE id = $1", first.ID)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "got %v", err)
	_, err = pool.Exec(ctx, "UPDATE hl7_messages SET message_control_id = 'C2' WHERE id = $1", first.ID)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "got %v", err)
	_, err = pool.Exec(ctx, "DELETE FROM hl7_messages WHERE id = $1", first.ID)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "append-only: got %v", err)

	// Deactivation preserves the message log: the connector cannot be deleted under it.
	_, err = pool.Exec(ctx, "DELETE FROM interop_connectors WHERE id = $1", conn.ID)
	require.Error(t, err)
}

func TestOneActiveExportPerTenantGroupAndImmutableFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	insert := func(tenant, group string) (uuid.UUID, error) {
		var id uuid.UUID
		err := pool.QueryRow(ctx, `INSERT INTO bulk_export_jobs (tenant_id, level, group_key, request_url, workflow_id)
			VALUES ($1, 'group', $2, 'u', 'w') RETURNING id`, tenant, group).Scan(&id)
		return id, err
	}
	job, err := insert("t1", "g1")
	require.NoError(t, err)
	_, err = insert("t1", "g1")
	require.True(t, conflictOn(err, "bulk_export_jobs_one_active"), "got %v", err)
	_, err = insert("t2", "g1")
	require.NoError(t, err, "another tenant's export of a same-named group is independent")

	_, err = pool.Exec(ctx, `INSERT INTO bulk_export_files (tenant_id, job_id, resource_type, blob_key, count, size_bytes)
		VALUES ('t1', $1, 'Patient', 'k1', 1, 10)`, job)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE bulk_export_jobs SET status = 'completed' WHERE id = $1`, job)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO bulk_export_files (tenant_id, job_id, resource_type, blob_key, count, size_bytes)
		VALUES ('t1', $1, 'Patient', 'k2', 1, 10)`, job)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "got %v", err)
	_, err = pool.Exec(ctx, `UPDATE bulk_export_files SET count = 2 WHERE job_id = $1`, job)
	require.True(t, errors.Is(err, db.ErrCheckViolation), "got %v", err)

	_, err = insert("t1", "g1")
	require.NoError(t, err, "a finished export frees its group")
}

func TestRoutingRulesOnePrimaryOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	add := func(typ, category string) error {
		_, err := pool.Exec(ctx, `INSERT INTO fhir_routing_rules (tenant_id, resource_type, category, owner_url)
			VALUES ('t1', $1, $2, 'http://owner')`, typ, category)
		return err
	}
	require.NoError(t, add("Observation", "vital-signs"))
	require.NoError(t, add("Observation", "laboratory"))
	require.True(t, conflictOn(add("Observation", "laboratory"), "fhir_routing_rules_primary"))
	require.True(t, errors.Is(add("Observation", ""), db.ErrConflict), "whole-type owner beside split owners is ambiguous")
	require.NoError(t, add("Patient", ""))
	require.True(t, errors.Is(add("Patient", "x"), db.ErrConflict))
}

func TestDomainEventsCursorOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, pool := dbtest.New(t)
	q := db.New(pool)

	// An event whose transaction is still open must not be visible, and when it commits it
	// must come after the cursor a reader already holds — never behind it.
	slow, err := dbtest.Connect(t, u).Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, q.WithTx(slow).DomainEventInsert(ctx, db.DomainEventInsertParams{
		TenantID: "t1", EventType: "Hl7MessageReceived", AggregateType: "Hl7Message", AggregateID: "slow", Payload: []byte(`{}`),
	}))
	require.NoError(t, q.DomainEventInsert(ctx, db.DomainEventInsertParams{
		TenantID: "t1", EventType: "Hl7MessageReceived", AggregateType: "Hl7Message", AggregateID: "fast", Payload: []byte(`{}`),
	}))
	require.NoError(t, q.DomainEventInsert(ctx, db.DomainEventInsertParams{
		TenantID: "t2", EventType: "Hl7MessageReceived", AggregateType: "Hl7Message", AggregateID: "other", Payload: []byte(`{}`),
	}))

	page, err := q.DomainEventListAfter(ctx, db.DomainEventListAfterParams{TenantID: "t1", AfterTxID: "0", AfterSeq: 0, MaxRows: 10})
	require.NoError(t, err)
	require.Empty(t, page, "nothing is visible while an older transaction is open")

	require.NoError(t, slow.Commit(ctx))
	// Other tests' transactions in the same cluster may still hold the horizon back for a moment.
	require.Eventually(t, func() bool {
		page, err = q.DomainEventListAfter(ctx, db.DomainEventListAfterParams{TenantID: "t1", AfterTxID: "0", AfterSeq: 0, MaxRows: 10})
		return err == nil && len(page) == 2
	}, time.Minute, 20*time.Millisecond)
	require.Equal(t, "slow", page[0].AggregateID)
	require.Equal(t, "fast", page[1].AggregateID)

	last := page[1]
	page, err = q.DomainEventListAfter(ctx, db.DomainEventListAfterParams{TenantID: "t1", AfterTxID: last.TxID, AfterSeq: last.Seq, MaxRows: 10})
	require.NoError(t, err)
	require.Empty(t, page)
}

// conflictOn reports whether err is a unique violation of constraint.
func conflictOn(err error, constraint string) bool {
	return errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == constraint
}

// Audit records are append-only: never updated, deleted only by a retention job that says so
// in its transaction. A batch written twice (a retry whose commit was not acknowledged) adds
// nothing.
func TestAuditEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	q := db.New(pool)
	batch := []byte(`[{"id":"0190f1d2-0000-7000-8000-000000000001","tenant_id":"t1","recorded":"2026-03-01T10:00:00Z",
		"type_code":"rest","subtype":"read","action":"R","outcome":0,"http_status":200,"agent":"c",
		"entity_refs":["Patient/p1"],"patient_refs":["Patient/p1"],"source_address":"","request_id":"",
		"event":{"resourceType":"AuditEvent"}}]`)
	n, err := q.AuditEventInsertBatch(ctx, batch)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = q.AuditEventInsertBatch(ctx, batch)
	require.NoError(t, err)
	require.Zero(t, n, "the same record again inserts nothing")

	_, err = pool.Exec(ctx, "UPDATE audit_events SET agent = 'someone else'")
	require.ErrorIs(t, err, db.ErrCheckViolation)
	_, err = pool.Exec(ctx, "DELETE FROM audit_events")
	require.ErrorIs(t, err, db.ErrCheckViolation)
	require.NoError(t, db.InTx(ctx, pool, func(q *db.Queries) error {
		if _, err := q.Conn().Exec(ctx, "SET LOCAL interop.allow_purge = 'on'"); err != nil {
			return err
		}
		_, err := q.Conn().Exec(ctx, "DELETE FROM audit_events WHERE recorded < now()")
		return err
	}))
	var left int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&left))
	require.Zero(t, left)

	// The checks hold what the search relies on.
	bad := strings.Replace(string(batch), `"action":"R"`, `"action":"X"`, 1)
	bad = strings.Replace(bad, "000000000001", "000000000002", 1)
	_, err = q.AuditEventInsertBatch(ctx, []byte(bad))
	require.ErrorIs(t, err, db.ErrCheckViolation)
}
