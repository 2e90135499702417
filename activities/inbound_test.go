package activities

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

// The activities against a real, freshly migrated PostgreSQL database (internal/dbtest), run
// through Temporal's TestActivityEnvironment so that activity.GetInfo and the error conversion
// at the activity boundary are the SDK's own.

const tenant = "t1"

// The fixture's patient: PID-3 MR "PATID1234", assigning authority namespace "test1".
const fixtureKey = "urn:id:test1|PATID1234"

type harness struct {
	t    *testing.T
	pool *pgxpool.Pool
	q    *db.Queries
	acts *Activities
	env  *testsuite.TestActivityEnvironment
	conn db.InteropConnector
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	_, pool := dbtest.New(t)
	acts := &Activities{
		Pool: pool, Store: &store.Store{Pool: pool}, DefaultOwner: "builtin",
		Logger: slog.New(slog.DiscardHandler),
	}
	env := newActivityEnv(acts)
	q := db.New(pool)
	conn, err := q.ConnectorInsert(context.Background(), db.ConnectorInsertParams{
		TenantID: tenant, FacilityID: "f1", Name: "adt-in", Protocol: db.ConnectorProtocolMllp,
		Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(`{}`),
	})
	require.NoError(t, err)
	return &harness{t: t, pool: pool, q: q, acts: acts, env: env, conn: conn}
}

// newActivityEnv is a test activity environment with every activity of acts registered.
func newActivityEnv(acts *Activities) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	env.RegisterActivityWithOptions(runOfActivity, activity.RegisterOptions{Name: "runOfActivity"})
	return env
}

// runOfActivity reports the workflow execution an activity of the test environment belongs to.
func runOfActivity(ctx context.Context) (workflow.Execution, error) {
	return activity.GetInfo(ctx).WorkflowExecution, nil
}

func fixture(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/adt_a01.hl7")
	require.NoError(t, err)
	return raw
}

// insertMessage stores raw as a received message, the way the gateway does before the ACK.
func (h *harness) insertMessage(controlID string, raw []byte) uuid.UUID {
	h.t.Helper()
	sum := sha256.Sum256(raw)
	row, err := h.q.Hl7MessageInsert(context.Background(), db.Hl7MessageInsertParams{
		TenantID: tenant, ConnectorID: h.conn.ID, MessageControlID: controlID, SendingApp: "ADTApp",
		MessageCode: "ADT", TriggerEvent: "A01", MessageStructure: "ADT_A01", Hl7Version: "2.8",
		Raw: raw, RawSHA256: sum[:], AckCode: "AA", Ack: []byte("MSH|^~\\&|ack"),
		WorkflowID: "HL7Message:" + tenant + ":" + h.conn.ID.String() + ":ADTApp:" + controlID,
	})
	require.NoError(h.t, err)
	return row.ID
}

// at returns h reporting to t, for subtests that share h's database.
func (h *harness) at(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

func (h *harness) start(messageID uuid.UUID) MessageRef {
	h.t.Helper()
	var res StartAttemptResult
	h.must(&res, h.acts.StartAttempt, messageID)
	return MessageRef{MessageID: messageID, AttemptID: res.AttemptID}
}

// must runs an activity that has to succeed and decodes its result into out (nil: no result).
func (h *harness) must(out any, fn any, args ...any) {
	h.t.Helper()
	val, err := h.env.ExecuteActivity(fn, args...)
	require.NoError(h.t, err)
	if out != nil {
		require.NoError(h.t, val.Get(out))
	}
}

// process runs StartAttempt → Parse → Map → Route on the fixture, as InboundHL7 does.
func (h *harness) process(controlID string) (MessageRef, RouteResult) {
	h.t.Helper()
	ref := h.start(h.insertMessage(controlID, fixture(h.t)))
	h.must(nil, h.acts.ParseMessage, ref)
	h.must(nil, h.acts.MapMessage, ref)
	var routed RouteResult
	h.must(&routed, h.acts.RouteBundle, ref)
	return ref, routed
}

func (h *harness) message(id uuid.UUID) db.Hl7Message {
	h.t.Helper()
	m, err := h.q.Hl7MessageGet(context.Background(), id)
	require.NoError(h.t, err)
	return m
}

func (h *harness) attempt(id uuid.UUID) db.Hl7ProcessingAttempt {
	h.t.Helper()
	a, err := h.q.Hl7ProcessingAttemptGet(context.Background(), id)
	require.NoError(h.t, err)
	return a
}

func (h *harness) links(messageID uuid.UUID) []db.Hl7ResourceLink {
	h.t.Helper()
	links, err := h.q.Hl7ResourceLinkListByMessage(context.Background(), messageID)
	require.NoError(h.t, err)
	return links
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	require.NoError(h.t, h.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func (h *harness) patients() int {
	h.t.Helper()
	return h.count(`SELECT count(*) FROM fhir_resources WHERE tenant_id = $1 AND resource_type = 'Patient'`, tenant)
}

type event struct {
	Type, AggregateType, AggregateID string
	Payload                          map[string]any
}

func (h *harness) events() []event {
	h.t.Helper()
	rows, err := h.pool.Query(context.Background(),
		`SELECT event_type, aggregate_type, aggregate_id, payload FROM domain_events WHERE tenant_id = $1 ORDER BY seq`, tenant)
	require.NoError(h.t, err)
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var payload []byte
		require.NoError(h.t, rows.Scan(&e.Type, &e.AggregateType, &e.AggregateID, &payload))
		require.NoError(h.t, json.Unmarshal(payload, &e.Payload))
		out = append(out, e)
	}
	require.NoError(h.t, rows.Err())
	return out
}

// refuseEvents makes every domain event insert whose payload matches condition (SQL over NEW)
// fail, to prove that a change and its events commit together or not at all.
func (h *harness) refuseEvents(condition string) {
	h.t.Helper()
	_, err := h.pool.Exec(context.Background(), `
		CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF `+condition+` THEN RAISE EXCEPTION 'event refused by the test'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_refuse_event BEFORE INSERT ON domain_events
			FOR EACH ROW EXECUTE FUNCTION test_refuse_event();`)
	require.NoError(h.t, err)
}

func (h *harness) addRoute(resourceType, owner string) {
	h.t.Helper()
	_, err := h.pool.Exec(context.Background(),
		`INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ($1, $2, $3)`, tenant, resourceType, owner)
	require.NoError(h.t, err)
}

// appError returns the application error err carries, failing the test when there is none.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %T: %v", err, err)
	return appErr
}

func requireNonRetryable(t *testing.T, err error, typ string) {
	t.Helper()
	appErr := appError(t, err)
	require.Equal(t, typ, appErr.Type(), "error: %v", err)
	require.True(t, appErr.NonRetryable(), "%s must be non-retryable", typ)
}

// requireRetryable: a transient failure must reach the retry policy as retryable — either not an
// application error at all, or one that is neither marked non-retryable nor of a type the
// InboundHL7 retry policy lists as non-retryable.
func requireRetryable(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		require.False(t, appErr.NonRetryable(), "transient error marked non-retryable: %v", err)
		permanent := []string{ErrTypeParse, ErrTypeMapping, ErrTypeRouting, ErrTypeOwnerRefused, ErrTypeNotFound}
		require.NotContains(t, permanent, appErr.Type(), "transient error has a permanent type: %v", err)
	}
}

// --- StartAttempt ----------------------------------------------------------------------------

func TestStartAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.insertMessage("MSG00001", fixture(t))
	require.Equal(t, db.Hl7MessageStatusPending, h.message(id).Status)

	var first StartAttemptResult
	h.must(&first, h.acts.StartAttempt, id)
	require.Equal(t, int32(1), first.AttemptNumber)
	require.NotEqual(t, uuid.Nil, first.AttemptID)
	require.Equal(t, db.Hl7MessageStatusProcessing, h.message(id).Status)

	var run workflow.Execution
	h.must(&run, "runOfActivity")
	require.NotEmpty(t, run.ID)
	require.NotEmpty(t, run.RunID)
	att := h.attempt(first.AttemptID)
	require.Equal(t, id, att.MessageID)
	require.Equal(t, tenant, att.TenantID)
	require.Equal(t, run.ID, att.WorkflowID)
	require.Equal(t, run.RunID, att.RunID)
	require.Equal(t, db.Hl7AttemptStatusRunning, att.Status)
	require.Nil(t, att.FinishedAt)
	require.Nil(t, att.MappedBundle)

	// An activity retry within the same run gets the same attempt back.
	var again StartAttemptResult
	h.must(&again, h.acts.StartAttempt, id)
	require.Equal(t, first, again)
	require.Equal(t, 1, h.count(`SELECT count(*) FROM hl7_processing_attempts WHERE message_id = $1`, id))
	require.Equal(t, db.Hl7MessageStatusProcessing, h.message(id).Status)
}

func TestStartAttemptUnknownMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := h.env.ExecuteActivity(h.acts.StartAttempt, uuid.New())
	requireNonRetryable(t, err, ErrTypeNotFound)
	require.Zero(t, h.count(`SELECT count(*) FROM hl7_processing_attempts`))
}

// --- ParseMessage ----------------------------------------------------------------------------

func TestParseMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("ADT^A01", func(t *testing.T) {
		h := h.at(t)
		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		var res ParseResult
		h.must(&res, h.acts.ParseMessage, ref)
		require.Equal(t, "ADT^A01^ADT_A01", res.MessageType)
		require.Equal(t, "ADT_A01", res.Structure)
	})
	t.Run("not HL7", func(t *testing.T) {
		h := h.at(t)
		ref := h.start(h.insertMessage("GARBAGE", []byte("this is not an HL7 message\r")))
		_, err := h.env.ExecuteActivity(h.acts.ParseMessage, ref)
		requireNonRetryable(t, err, ErrTypeParse)
	})
	t.Run("unknown message", func(t *testing.T) {
		h := h.at(t)
		_, err := h.env.ExecuteActivity(h.acts.ParseMessage, MessageRef{MessageID: uuid.New(), AttemptID: uuid.New()})
		requireNonRetryable(t, err, ErrTypeNotFound)
	})
}

// --- MapMessage ------------------------------------------------------------------------------

func TestMapMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("stores a conditional transaction bundle", func(t *testing.T) {
		h := h.at(t)
		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		var res MapResult
		h.must(&res, h.acts.MapMessage, ref)
		require.Equal(t, 1, res.Entries)

		stored := h.attempt(ref.AttemptID).MappedBundle
		require.NotNil(t, stored)
		var bundle fhir.Bundle
		require.NoError(t, json.Unmarshal(stored, &bundle))
		require.Equal(t, "Bundle", bundle.ResourceType)
		require.Equal(t, fhir.BundleTransaction, bundle.Type)
		require.Len(t, bundle.Entry, res.Entries)
		for i, e := range bundle.Entry {
			require.NotNil(t, e.Request, "entry %d", i)
			require.Equal(t, "PUT", e.Request.Method, "entry %d is not a conditional update", i)
			require.Contains(t, e.Request.URL, "?identifier=", "entry %d is not a conditional update", i)
		}
		head, err := fhir.ReadHead(bundle.Entry[0].Resource)
		require.NoError(t, err)
		require.Equal(t, "Patient", head.ResourceType)
		require.Equal(t, "Patient?identifier="+url.QueryEscape(fixtureKey), bundle.Entry[0].Request.URL)
	})
	t.Run("no PID", func(t *testing.T) {
		h := h.at(t)
		raw := []byte("MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000||ACK^A01^ACK|ACK1|P|2.5.1\rMSA|AA|MSG00001\r")
		ref := h.start(h.insertMessage("ACK1", raw))
		_, err := h.env.ExecuteActivity(h.acts.MapMessage, ref)
		requireNonRetryable(t, err, ErrTypeMapping)
		require.Nil(t, h.attempt(ref.AttemptID).MappedBundle)
	})
	t.Run("not HL7", func(t *testing.T) {
		h := h.at(t)
		ref := h.start(h.insertMessage("GARBAGE", []byte("garbage")))
		_, err := h.env.ExecuteActivity(h.acts.MapMessage, ref)
		requireNonRetryable(t, err, ErrTypeParse)
	})
}

// --- RouteBundle -----------------------------------------------------------------------------

func TestRouteBundleBuiltin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()

	ref, routed := h.process("MSG00001")
	require.Equal(t, RouteResult{Created: 1}, routed)
	require.Equal(t, 1, h.patients())

	found, err := h.acts.Store.Search(ctx, tenant, "Patient", store.Query{Identifier: &fhir.Identifier{System: "urn:id:test1", Value: "PATID1234"}})
	require.NoError(t, err)
	require.Len(t, found.Resources, 1)
	patient := found.Resources[0]

	links := h.links(ref.MessageID)
	require.Len(t, links, 1)
	l := links[0]
	require.Equal(t, "Patient", l.ResourceType)
	require.Equal(t, patient.ID, l.ResourceID)
	require.Equal(t, string(store.ActionCreated), l.Action)
	require.Equal(t, "builtin", l.Owner)
	require.Equal(t, tenant, l.TenantID)
	require.NotNil(t, l.AttemptID)
	require.Equal(t, ref.AttemptID, *l.AttemptID)

	// An activity retry of Route converges: no second Patient, no second version, no second link.
	var again RouteResult
	h.must(&again, h.acts.RouteBundle, ref)
	require.Equal(t, RouteResult{Unchanged: 1}, again)
	require.Equal(t, 1, h.patients())
	require.Len(t, h.links(ref.MessageID), 1)

	// So does a replay: a second attempt (another run) maps and routes the message again.
	second, err := h.q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{
		MessageID: ref.MessageID, WorkflowID: "replay", RunID: "replay-run",
	})
	require.NoError(t, err)
	require.Equal(t, int32(2), second.AttemptNumber)
	ref2 := MessageRef{MessageID: ref.MessageID, AttemptID: second.ID}
	h.must(nil, h.acts.MapMessage, ref2)
	var replayed RouteResult
	h.must(&replayed, h.acts.RouteBundle, ref2)
	require.Equal(t, RouteResult{Unchanged: 1}, replayed)
	require.Equal(t, 1, h.patients())
	require.Equal(t, 1, h.count(`SELECT count(*) FROM fhir_resource_history WHERE tenant_id = $1 AND id = $2`, tenant, patient.ID))
	links = h.links(ref.MessageID)
	require.Len(t, links, 1, "the message is linked to its patient once")
	require.Equal(t, patient.ID, links[0].ResourceID)

	// Another message about the same patient finds it too.
	other, routedOther := h.process("MSG00002")
	require.Equal(t, RouteResult{Unchanged: 1}, routedOther)
	require.Equal(t, 1, h.patients())
	otherLinks := h.links(other.MessageID)
	require.Len(t, otherLinks, 1)
	require.Equal(t, patient.ID, otherLinks[0].ResourceID)
	require.Equal(t, string(store.ActionUnchanged), otherLinks[0].Action)
}

// ownerCall is one request an external owner received.
type ownerCall struct {
	Method, Path, Query, IfNoneExist string
	Body                             []byte
}

// fakeOwner is an external FHIR owner answering every request with status, and with a Location
// of locationPath on its own URL when locationPath is set.
func fakeOwner(t *testing.T, status int, locationPath string) (*httptest.Server, func() []ownerCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []ownerCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, ownerCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, IfNoneExist: r.Header.Get("If-None-Exist"), Body: body})
		mu.Unlock()
		if locationPath != "" {
			w.Header().Set("Location", "http://"+r.Host+locationPath)
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(status)
		if status >= 400 {
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"refused by fake owner"}]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []ownerCall {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
}

func TestRouteBundleExternalOwner(t *testing.T) {
	t.Parallel()

	t.Run("201 with Location", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusCreated, "/fhir/Patient/ext-42/_history/1")
		h.acts.HTTP = srv.Client()
		owner := srv.URL + "/fhir"
		h.addRoute("Patient", owner)

		ref, routed := h.process("MSG00001")
		require.Equal(t, RouteResult{Created: 1}, routed)
		got := calls()
		require.Len(t, got, 1)
		require.Equal(t, http.MethodPut, got[0].Method, "Patient is a conditional update")
		require.Equal(t, "/fhir/Patient", got[0].Path)
		require.Equal(t, "identifier="+url.QueryEscape(fixtureKey), got[0].Query)
		head, err := fhir.ReadHead(got[0].Body)
		require.NoError(t, err)
		require.Equal(t, "Patient", head.ResourceType)

		links := h.links(ref.MessageID)
		require.Len(t, links, 1)
		require.Equal(t, "ext-42", links[0].ResourceID)
		require.Equal(t, owner, links[0].Owner)
		require.Equal(t, string(store.ActionCreated), links[0].Action)
		require.Zero(t, h.patients(), "the builtin store does not own Patient here")
	})
	t.Run("422 is a permanent refusal", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusUnprocessableEntity, "")
		h.acts.HTTP = srv.Client()
		h.addRoute("Patient", srv.URL)

		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		h.must(nil, h.acts.MapMessage, ref)
		_, err := h.env.ExecuteActivity(h.acts.RouteBundle, ref)
		requireNonRetryable(t, err, ErrTypeOwnerRefused)
		require.Contains(t, err.Error(), "refused by fake owner")
		require.Len(t, calls(), 1)
		require.Empty(t, h.links(ref.MessageID))
		require.Zero(t, h.patients())
	})
	t.Run("503 is transient", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusServiceUnavailable, "")
		h.acts.HTTP = srv.Client()
		h.addRoute("Patient", srv.URL)

		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		h.must(nil, h.acts.MapMessage, ref)
		_, err := h.env.ExecuteActivity(h.acts.RouteBundle, ref)
		requireRetryable(t, err)
		require.Contains(t, err.Error(), "503")
		require.Len(t, calls(), 1)
		require.Empty(t, h.links(ref.MessageID))
		require.Zero(t, h.patients())
	})
}

// --- CompleteMessage -------------------------------------------------------------------------

func TestCompleteMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	ref, _ := h.process("MSG00001")
	// A second linked resource, as a richer mapping would produce: one event per link.
	require.NoError(t, h.q.Hl7ResourceLinkInsert(ctx, db.Hl7ResourceLinkInsertParams{
		TenantID: tenant, MessageID: ref.MessageID, AttemptID: &ref.AttemptID,
		ResourceType: "Encounter", ResourceID: "enc-1", Action: "created", Owner: "builtin",
	}))
	links := h.links(ref.MessageID)
	require.Len(t, links, 2)

	h.must(nil, h.acts.CompleteMessage, ref)

	m := h.message(ref.MessageID)
	require.Equal(t, db.Hl7MessageStatusProcessed, m.Status)
	require.NotNil(t, m.ProcessedAt)
	require.Empty(t, m.LastErrorCode)
	att := h.attempt(ref.AttemptID)
	require.Equal(t, db.Hl7AttemptStatusSucceeded, att.Status)
	require.NotNil(t, att.FinishedAt)

	events := h.events()
	require.Len(t, events, len(links))
	var got, want []string
	for _, e := range events {
		require.Equal(t, "Hl7MessageProcessed", e.Type)
		require.Equal(t, "Hl7Message", e.AggregateType)
		require.Equal(t, ref.MessageID.String(), e.AggregateID)
		require.Equal(t, ref.MessageID.String(), e.Payload["messageId"])
		require.Equal(t, tenant, e.Payload["tenantId"])
		got = append(got, e.Payload["resourceType"].(string)+"/"+e.Payload["resourceId"].(string)+" "+e.Payload["action"].(string))
	}
	for _, l := range links {
		want = append(want, l.ResourceType+"/"+l.ResourceID+" "+l.Action)
	}
	require.ElementsMatch(t, want, got)
}

// CompleteMessage is all or nothing: when the last event cannot be written, the status, the
// attempt and the events written before it roll back together.
func TestCompleteMessageIsAtomic(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	ref, _ := h.process("MSG00001")
	require.NoError(t, h.q.Hl7ResourceLinkInsert(ctx, db.Hl7ResourceLinkInsertParams{
		TenantID: tenant, MessageID: ref.MessageID, AttemptID: &ref.AttemptID,
		ResourceType: "Encounter", ResourceID: "enc-1", Action: "created", Owner: "builtin",
	}))
	h.refuseEvents(`NEW.payload->>'resourceType' = 'Encounter'`)

	_, err := h.env.ExecuteActivity(h.acts.CompleteMessage, ref)
	require.Error(t, err)
	require.Contains(t, err.Error(), "event refused by the test")

	m := h.message(ref.MessageID)
	require.Equal(t, db.Hl7MessageStatusProcessing, m.Status)
	require.Nil(t, m.ProcessedAt)
	att := h.attempt(ref.AttemptID)
	require.Equal(t, db.Hl7AttemptStatusRunning, att.Status)
	require.Nil(t, att.FinishedAt)
	require.Empty(t, h.events(), "the Patient's event must roll back with the rest")
}

// --- FailMessage -----------------------------------------------------------------------------

func TestFailMessage(t *testing.T) {
	t.Parallel()

	t.Run("dead letter", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		in := FailInput{MessageRef: ref, ErrorCode: ErrTypeMapping, Detail: "map: PID-7 birth date \"19881318\": bad", DeadLetter: true}
		h.must(nil, h.acts.FailMessage, in)

		m := h.message(ref.MessageID)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, m.Status)
		require.Equal(t, in.ErrorCode, m.LastErrorCode)
		require.Equal(t, in.Detail, m.LastError)
		require.Nil(t, m.ProcessedAt)
		att := h.attempt(ref.AttemptID)
		require.Equal(t, db.Hl7AttemptStatusFailed, att.Status)
		require.Equal(t, in.ErrorCode, att.ErrorCode)
		require.Equal(t, in.Detail, att.ErrorDetail)
		require.NotNil(t, att.FinishedAt)

		events := h.events()
		require.Len(t, events, 2)
		require.Equal(t, "Hl7MessageFailed", events[0].Type)
		require.Equal(t, in.ErrorCode, events[0].Payload["errorCode"])
		require.Equal(t, "Hl7MessageDeadLettered", events[1].Type)
		for _, e := range events {
			require.Equal(t, "Hl7Message", e.AggregateType)
			require.Equal(t, ref.MessageID.String(), e.AggregateID)
			require.Equal(t, ref.MessageID.String(), e.Payload["messageId"])
			require.Equal(t, tenant, e.Payload["tenantId"])
		}
	})
	t.Run("failed, retry to follow", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		in := FailInput{MessageRef: ref, ErrorCode: "Timeout", Detail: "route: activity timed out"}
		h.must(nil, h.acts.FailMessage, in)

		m := h.message(ref.MessageID)
		require.Equal(t, db.Hl7MessageStatusFailed, m.Status)
		require.Equal(t, in.ErrorCode, m.LastErrorCode)
		require.Equal(t, in.Detail, m.LastError)
		att := h.attempt(ref.AttemptID)
		require.Equal(t, db.Hl7AttemptStatusFailed, att.Status)
		require.Equal(t, in.Detail, att.ErrorDetail)

		events := h.events()
		require.Len(t, events, 1)
		require.Equal(t, "Hl7MessageFailed", events[0].Type)
	})
	t.Run("before any attempt", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := h.insertMessage("MSG00001", fixture(t))
		in := FailInput{MessageRef: MessageRef{MessageID: id}, ErrorCode: "Unknown", Detail: "start-attempt: database down", DeadLetter: true}
		h.must(nil, h.acts.FailMessage, in)
		require.Equal(t, db.Hl7MessageStatusDeadLettered, h.message(id).Status)
		require.Len(t, h.events(), 2)
	})
	t.Run("all or nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		h.refuseEvents(`NEW.event_type = 'Hl7MessageDeadLettered'`)
		_, err := h.env.ExecuteActivity(h.acts.FailMessage, FailInput{MessageRef: ref, ErrorCode: ErrTypeParse, Detail: "x", DeadLetter: true})
		require.Error(t, err)
		require.Equal(t, db.Hl7MessageStatusProcessing, h.message(ref.MessageID).Status)
		require.Equal(t, db.Hl7AttemptStatusRunning, h.attempt(ref.AttemptID).Status)
		require.Empty(t, h.events())
	})
}
