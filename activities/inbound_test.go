package activities

import (
	"bytes"
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
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
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
	pool *db.Pool
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
		TenantID: tenant, FacilityID: "f1", Name: "adt-in", Protocol: db.ConnectorProtocolMLLP,
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
		MessageCode: "ADT", TriggerEvent: "A01", MessageStructure: "ADT_A01", HL7Version: "2.8",
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

// mappedBundle is the transaction Bundle the Map step stored on the attempt.
func (h *harness) mappedBundle(attemptID uuid.UUID) fhir.Bundle {
	h.t.Helper()
	stored := h.attempt(attemptID).MappedBundle
	require.NotNil(h.t, stored, "the attempt has no mapped Bundle")
	var b fhir.Bundle
	require.NoError(h.t, json.Unmarshal(stored, &b))
	require.NotEmpty(h.t, b.Entry, "the mapped Bundle has no entries")
	return b
}

// entryTypes returns the resource type of each of b's entries, in order.
func entryTypes(t *testing.T, b fhir.Bundle) []string {
	t.Helper()
	types := make([]string, len(b.Entry))
	for i, e := range b.Entry {
		head, err := fhir.ReadHead(e.Resource)
		require.NoError(t, err, "entry %d", i)
		types[i] = head.ResourceType
	}
	return types
}

// countByType counts types per resource type.
func countByType(types []string) map[string]int {
	n := map[string]int{}
	for _, typ := range types {
		n[typ]++
	}
	return n
}

// linkTypes counts links per resource type.
func linkTypes(links []db.Hl7ResourceLink) map[string]int {
	n := map[string]int{}
	for _, l := range links {
		n[l.ResourceType]++
	}
	return n
}

// linkOf returns the one link of resourceType, failing the test unless there is exactly one.
func linkOf(t *testing.T, links []db.Hl7ResourceLink, resourceType string) db.Hl7ResourceLink {
	t.Helper()
	var found []db.Hl7ResourceLink
	for _, l := range links {
		if l.ResourceType == resourceType {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "links of %s", resourceType)
	return found[0]
}

// resources counts the builtin store's resources of the tenant, of every type.
func (h *harness) resources() int {
	h.t.Helper()
	return h.count(`SELECT count(*) FROM fhir_resources WHERE tenant_id = $1`, tenant)
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

	t.Run("stores an idempotent transaction bundle", func(t *testing.T) {
		h := h.at(t)
		raw := fixture(t)
		ref := h.start(h.insertMessage("MSG00001", raw))
		var res MapResult
		h.must(&res, h.acts.MapMessage, ref)

		stored := h.attempt(ref.AttemptID).MappedBundle
		require.NotNil(t, stored)
		// What is stored is the mapping of the message, as the mapping package maps it.
		msg, err := hl7v2.Parse(raw)
		require.NoError(t, err)
		want, err := (*mapping.Tenants)(nil).ForTenant(tenant).Map(msg)
		require.NoError(t, err)
		wantJSON, err := want.Bundle.AppendJSON(nil)
		require.NoError(t, err)
		require.JSONEq(t, string(wantJSON), string(stored))
		require.Equal(t, len(want.Notes), res.Notes)

		var bundle fhir.Bundle
		require.NoError(t, json.Unmarshal(stored, &bundle))
		require.Equal(t, "Bundle", bundle.ResourceType)
		require.Equal(t, fhir.BundleTransaction, bundle.Type)
		require.Len(t, bundle.Entry, res.Entries)
		types := entryTypes(t, bundle)
		require.Greater(t, len(types), 1, "an ADT^A01 maps to more than its Patient")
		// Every entry is idempotent, so that a retry or a replay converges: a conditional create
		// or update keyed on an identifier, or an update of the resource's own id.
		for i, e := range bundle.Entry {
			typ := types[i]
			require.NotNil(t, e.Request, "entry %d (%s)", i, typ)
			switch e.Request.Method {
			case http.MethodPost:
				require.Equal(t, typ, e.Request.URL, "entry %d", i)
				require.True(t, strings.HasPrefix(e.Request.IfNoneExist, "identifier="), "entry %d (%s) is not a conditional create: %+v", i, typ, *e.Request)
			case http.MethodPut:
				if path, query, ok := strings.Cut(e.Request.URL, "?"); ok {
					require.Equal(t, typ, path, "entry %d", i)
					require.True(t, strings.HasPrefix(query, "identifier="), "entry %d (%s) is not a conditional update: %+v", i, typ, *e.Request)
				} else {
					head, err := fhir.ReadHead(e.Resource)
					require.NoError(t, err)
					require.NotEmpty(t, head.ID, "entry %d (%s): an update of an id must carry it", i, typ)
					require.Equal(t, typ+"/"+head.ID, e.Request.URL, "entry %d is neither a conditional update nor an update of its own id", i)
				}
			default:
				require.Failf(t, "entry is not idempotent", "entry %d (%s): %+v", i, typ, *e.Request)
			}
		}
		// The message's one Patient, a conditional update on its identifier.
		require.Equal(t, 1, countByType(types)["Patient"], "types: %v", types)
		patient := bundle.Entry[slices.Index(types, "Patient")]
		require.Equal(t, http.MethodPut, patient.Request.Method)
		require.Equal(t, "Patient?identifier="+url.QueryEscape(fixtureKey), patient.Request.URL)
	})
	t.Run("no PID", func(t *testing.T) {
		h := h.at(t)
		raw := []byte("MSH|^~\\&|ADT|FAC|EHR|FAC|20240101120000||ADT^A01^ADT_A01|NOPID1|P|2.5.1\rEVN|A01|20240101120000\rPV1|1|I|W^1^1\r")
		ref := h.start(h.insertMessage("NOPID1", raw))
		_, err := h.env.ExecuteActivity(h.acts.MapMessage, ref)
		requireNonRetryable(t, err, ErrTypeMapping)
		// The failure is one sentence naming the field, which the workflow stores as lastError.
		require.Equal(t, "PID: ADT^A01^ADT_A01 has no PID segment", appError(t, err).Message())
		require.Nil(t, h.attempt(ref.AttemptID).MappedBundle)
	})
	t.Run("not HL7", func(t *testing.T) {
		h := h.at(t)
		ref := h.start(h.insertMessage("GARBAGE", []byte("garbage")))
		_, err := h.env.ExecuteActivity(h.acts.MapMessage, ref)
		requireNonRetryable(t, err, ErrTypeParse)
	})
	t.Run("a mapping the database cannot store", func(t *testing.T) {
		// A NUL byte in a name maps to "\u0000", which jsonb refuses (SQLSTATE 22P05): storing
		// it again would fail the same way, so the retries stop at once.
		h := h.at(t)
		require.True(t, bytes.Contains(fixture(t), []byte("|EVERYMAN&")), "fixture changed: PID-5 EVERYMAN not found")
		raw := bytes.Replace(fixture(t), []byte("|EVERYMAN&"), []byte("|EVERY\x00MAN&"), 1)
		ref := h.start(h.insertMessage("NUL1", raw))
		_, err := h.env.ExecuteActivity(h.acts.MapMessage, ref)
		requireNonRetryable(t, err, ErrTypeMapping)
		require.Nil(t, h.attempt(ref.AttemptID).MappedBundle)
	})
}

// --- RouteBundle -----------------------------------------------------------------------------

func TestRouteBundleBuiltin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()

	ref, routed := h.process("MSG00001")
	types := entryTypes(t, h.mappedBundle(ref.AttemptID))
	perType := countByType(types)
	require.Equal(t, 1, perType["Patient"], "types: %v", types)
	require.Equal(t, RouteResult{Created: len(types)}, routed, "every entry of the Bundle is new")
	require.Equal(t, 1, h.patients())
	require.Equal(t, len(types), h.resources(), "the builtin store owns every type here")

	found, err := h.acts.Store.Search(ctx, tenant, "Patient", store.Query{Identifier: &fhir.Identifier{System: "urn:id:test1", Value: "PATID1234"}})
	require.NoError(t, err)
	require.Len(t, found.Resources, 1)
	patient := found.Resources[0]

	// One link per written entry, each to a resource the store holds.
	links := h.links(ref.MessageID)
	require.Len(t, links, len(types))
	require.Equal(t, perType, linkTypes(links))
	for _, l := range links {
		require.Equal(t, string(store.ActionCreated), l.Action, "%s/%s", l.ResourceType, l.ResourceID)
		require.Equal(t, "builtin", l.Owner)
		require.Equal(t, tenant, l.TenantID)
		require.NotNil(t, l.AttemptID)
		require.Equal(t, ref.AttemptID, *l.AttemptID)
		require.Equal(t, 1, h.count(`SELECT count(*) FROM fhir_resources WHERE tenant_id = $1 AND resource_type = $2 AND id = $3`,
			tenant, l.ResourceType, l.ResourceID), "link to %s/%s", l.ResourceType, l.ResourceID)
	}
	require.Equal(t, patient.ID, linkOf(t, links, "Patient").ResourceID)
	linked := func(links []db.Hl7ResourceLink) []string {
		var out []string
		for _, l := range links {
			out = append(out, l.ResourceType+"/"+l.ResourceID)
		}
		return out
	}

	// An activity retry of Route converges: no second Patient, no second version, no second link.
	var again RouteResult
	h.must(&again, h.acts.RouteBundle, ref)
	require.Equal(t, RouteResult{Unchanged: len(types)}, again)
	require.Equal(t, 1, h.patients())
	require.Equal(t, len(types), h.resources())
	require.ElementsMatch(t, linked(links), linked(h.links(ref.MessageID)))

	// So does a replay: a second attempt (another run) maps and routes the message again.
	second, err := h.q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{
		MessageID: ref.MessageID, WorkflowID: "replay", RunID: "replay-run",
	})
	require.NoError(t, err)
	require.Equal(t, int32(2), second.AttemptNumber)
	ref2 := MessageRef{MessageID: ref.MessageID, AttemptID: second.ID}
	h.must(nil, h.acts.MapMessage, ref2)
	require.Equal(t, types, entryTypes(t, h.mappedBundle(ref2.AttemptID)))
	var replayed RouteResult
	h.must(&replayed, h.acts.RouteBundle, ref2)
	require.Equal(t, RouteResult{Unchanged: len(types)}, replayed)
	require.Equal(t, 1, h.patients())
	require.Equal(t, len(types), h.resources())
	require.Equal(t, 1, h.count(`SELECT count(*) FROM fhir_resource_history WHERE tenant_id = $1 AND id = $2`, tenant, patient.ID))
	require.Equal(t, len(types), h.count(`SELECT count(*) FROM fhir_resource_history WHERE tenant_id = $1`, tenant),
		"no resource of the message got a second version")
	replayLinks := h.links(ref.MessageID)
	require.ElementsMatch(t, linked(links), linked(replayLinks), "the message is linked to each of its resources once")
	require.Equal(t, patient.ID, linkOf(t, replayLinks, "Patient").ResourceID)

	// Another message about the same patient finds it too.
	other, routedOther := h.process("MSG00002")
	otherTypes := entryTypes(t, h.mappedBundle(other.AttemptID))
	require.Equal(t, types, otherTypes, "the same content maps to the same entries")
	require.Equal(t, RouteResult{Unchanged: len(otherTypes)}, routedOther)
	require.Equal(t, 1, h.patients())
	require.Equal(t, len(types), h.resources())
	otherLinks := h.links(other.MessageID)
	require.Len(t, otherLinks, len(otherTypes))
	require.ElementsMatch(t, linked(links), linked(otherLinks))
	for _, l := range otherLinks {
		require.Equal(t, string(store.ActionUnchanged), l.Action, "%s/%s", l.ResourceType, l.ResourceID)
	}
	require.Equal(t, patient.ID, linkOf(t, otherLinks, "Patient").ResourceID)
}

// ownerCall is one request an external owner received.
type ownerCall struct {
	Method, Path, Query, IfNoneExist string
	Body                             []byte
}

// fakeOwner is an external FHIR owner under /fhir answering every request with status. When
// created is set, it answers with a Location as a FHIR server does: a conditional create or
// update (POST or PUT /fhir/Type) gets a new id, ext-<n> for its n-th request; an update of an
// id (PUT /fhir/Type/id) keeps that id.
func fakeOwner(t *testing.T, status int, created bool) (*httptest.Server, func() []ownerCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []ownerCall
	writes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, ownerCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, IfNoneExist: r.Header.Get("If-None-Exist"), Body: body})
		if r.Method != http.MethodGet {
			writes++
		}
		n := writes
		mu.Unlock()
		if created {
			path := strings.TrimPrefix(r.URL.Path, "/fhir/")
			if !strings.Contains(path, "/") {
				path += "/" + fakeOwnerID(n)
			}
			w.Header().Set("Location", "http://"+r.Host+"/fhir/"+path+"/_history/1")
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		if r.Method == http.MethodGet && status < 300 {
			// The search before a guarded conditional update: nothing stored yet.
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","total":0}`))
			return
		}
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

// fakeOwnerID is the id fakeOwner assigns to what its n-th write (from 1) creates.
func fakeOwnerID(n int) string { return "ext-" + strconv.Itoa(n) }

func TestRouteBundleExternalOwner(t *testing.T) {
	t.Parallel()

	// The external owner owns every type (the tenant's '*' rule), so that no entry goes to the
	// builtin store: a refusal leaves nothing written.
	t.Run("201 with Location", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusCreated, true)
		h.acts.HTTP = srv.Client()
		owner := srv.URL + "/fhir"
		h.addRoute("*", owner)

		ref, routed := h.process("MSG00001")
		bundle := h.mappedBundle(ref.AttemptID)
		types := entryTypes(t, bundle)
		require.Equal(t, 1, countByType(types)["Patient"], "types: %v", types)
		require.Equal(t, RouteResult{Created: len(types)}, routed)

		// One request per entry, in the Bundle's order, each the entry's idempotent write; a
		// conditional update is preceded by its search (the stale-event guard).
		var got []ownerCall
		searches := 0
		for _, c := range calls() {
			if c.Method == http.MethodGet {
				searches++
				continue
			}
			got = append(got, c)
		}
		updates := 0
		for _, e := range bundle.Entry {
			if e.Request.Method == http.MethodPut && strings.Contains(e.Request.URL, "?") {
				updates++
			}
		}
		require.Equal(t, updates, searches, "one search per conditional update")
		require.Len(t, got, len(bundle.Entry))
		ids := map[string]string{} // fullUrl → Type/id the owner assigned
		for i, e := range bundle.Entry {
			typ, c := types[i], got[i]
			head, err := fhir.ReadHead(c.Body)
			require.NoError(t, err, "request %d", i)
			require.Equal(t, typ, head.ResourceType, "request %d", i)
			require.Equal(t, e.Request.Method, c.Method, "request %d (%s)", i, typ)
			id := fakeOwnerID(i + 1)
			switch path, query, conditional := strings.Cut(e.Request.URL, "?"); {
			case c.Method == http.MethodPost:
				require.Equal(t, "/fhir/"+typ, c.Path, "request %d", i)
				require.Empty(t, c.Query, "request %d", i)
				wantCond, err := url.ParseQuery(e.Request.IfNoneExist)
				require.NoError(t, err)
				gotCond, err := url.ParseQuery(c.IfNoneExist)
				require.NoError(t, err)
				require.Equal(t, wantCond, gotCond, "request %d (%s): If-None-Exist", i, typ)
			case conditional:
				require.Equal(t, "/fhir/"+path, c.Path, "request %d (%s) is a conditional update", i, typ)
				wantCond, err := url.ParseQuery(query)
				require.NoError(t, err)
				gotCond, err := url.ParseQuery(c.Query)
				require.NoError(t, err)
				require.Equal(t, wantCond, gotCond, "request %d (%s): condition", i, typ)
				require.Empty(t, c.IfNoneExist, "request %d", i)
			default: // PUT Type/id keeps the mapping's id
				require.Equal(t, "/fhir/"+e.Request.URL, c.Path, "request %d (%s) is an update of its id", i, typ)
				require.Empty(t, c.Query, "request %d", i)
				id = strings.TrimPrefix(e.Request.URL, typ+"/")
			}
			ids[e.FullURL] = typ + "/" + id
		}
		require.Equal(t, http.MethodPut, got[slices.Index(types, "Patient")].Method, "Patient is a conditional update")
		require.Equal(t, "/fhir/Patient", got[slices.Index(types, "Patient")].Path)
		require.Equal(t, "identifier="+url.QueryEscape(fixtureKey), got[slices.Index(types, "Patient")].Query)
		// References between entries reach the owner rewritten to the ids it assigned.
		for i, c := range got {
			for fullURL := range ids {
				require.NotContains(t, string(c.Body), `"`+fullURL+`"`, "request %d (%s) still references %s", i, types[i], fullURL)
			}
		}

		links := h.links(ref.MessageID)
		require.Len(t, links, len(types))
		require.Equal(t, countByType(types), linkTypes(links))
		var linked, want []string
		for _, l := range links {
			require.Equal(t, owner, l.Owner, "%s/%s", l.ResourceType, l.ResourceID)
			require.Equal(t, string(store.ActionCreated), l.Action, "%s/%s", l.ResourceType, l.ResourceID)
			linked = append(linked, l.ResourceType+"/"+l.ResourceID)
		}
		for _, v := range ids {
			want = append(want, v)
		}
		require.ElementsMatch(t, want, linked)
		require.Equal(t, fakeOwnerID(slices.Index(types, "Patient")+1), linkOf(t, links, "Patient").ResourceID)
		require.Zero(t, h.resources(), "the builtin store owns nothing here")
	})
	t.Run("422 is a permanent refusal", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusUnprocessableEntity, false)
		h.acts.HTTP = srv.Client()
		h.addRoute("*", srv.URL)

		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		h.must(nil, h.acts.MapMessage, ref)
		first := entryTypes(t, h.mappedBundle(ref.AttemptID))[0]
		_, err := h.env.ExecuteActivity(h.acts.RouteBundle, ref)
		requireNonRetryable(t, err, ErrTypeOwnerRefused)
		require.Contains(t, err.Error(), "refused by fake owner")
		require.Contains(t, err.Error(), "refused "+first)
		got := calls()
		require.Len(t, got, 1, "routing stops at the first refusal")
		require.Equal(t, "/"+first, got[0].Path, "the Bundle's first entry")
		require.Empty(t, h.links(ref.MessageID))
		require.Zero(t, h.resources())
	})
	t.Run("503 is transient", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		srv, calls := fakeOwner(t, http.StatusServiceUnavailable, false)
		h.acts.HTTP = srv.Client()
		h.addRoute("*", srv.URL)

		ref := h.start(h.insertMessage("MSG00001", fixture(t)))
		h.must(nil, h.acts.MapMessage, ref)
		first := entryTypes(t, h.mappedBundle(ref.AttemptID))[0]
		_, err := h.env.ExecuteActivity(h.acts.RouteBundle, ref)
		requireRetryable(t, err)
		require.Contains(t, err.Error(), "503")
		got := calls()
		require.Len(t, got, 1, "routing stops at the first failure")
		require.Equal(t, "/"+first, got[0].Path, "the Bundle's first entry")
		require.Empty(t, h.links(ref.MessageID))
		require.Zero(t, h.resources())
	})
}

// --- CompleteMessage -------------------------------------------------------------------------

func TestCompleteMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ref, routed := h.process("MSG00001")
	// The message's resources are linked one by one (RouteBundle); one event per link.
	types := entryTypes(t, h.mappedBundle(ref.AttemptID))
	require.Equal(t, RouteResult{Created: len(types)}, routed)
	links := h.links(ref.MessageID)
	require.Len(t, links, len(types))
	require.Equal(t, countByType(types), linkTypes(links))
	require.Greater(t, len(links), 1, "the fixture maps to several resources")
	require.Empty(t, h.events(), "routing emits no event; completing does")

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
	require.NoError(t, h.q.Hl7ResourceLinkInsertMany(ctx, db.Hl7ResourceLinkInsertManyParams{
		TenantID: tenant, MessageID: ref.MessageID, AttemptID: &ref.AttemptID,
		ResourceTypes: []string{"Encounter"}, ResourceIDs: []string{"enc-1"}, Actions: []string{"created"}, Owners: []string{"builtin"},
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

// The outcome writes retry until they land (workflows.OutcomeRetryPolicy): what they write
// must be storable whatever the cause said, and a message that does not exist is permanent.
func TestOutcomeWritesAlwaysLand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ref := h.start(h.insertMessage("MSG00001", fixture(t)))
	detail := "parse: MSH-10 \"a\x00b\xff\" " + strings.Repeat("x", 10000)
	h.must(nil, h.acts.FailMessage, FailInput{MessageRef: ref, ErrorCode: "HL7\x00Parse", Detail: detail, DeadLetter: true})
	m := h.message(ref.MessageID)
	require.Equal(t, db.Hl7MessageStatusDeadLettered, m.Status)
	require.NotContains(t, m.LastError, "\x00")
	require.True(t, utf8.ValidString(m.LastError))
	require.LessOrEqual(t, len(m.LastError), 2000)
	require.True(t, strings.HasPrefix(m.LastError, "parse: MSH-10 \"ab"), m.LastError[:40])
	require.Equal(t, db.Hl7AttemptStatusFailed, h.attempt(ref.AttemptID).Status)

	gone := MessageRef{MessageID: uuid.New(), AttemptID: uuid.New()}
	_, err := h.env.ExecuteActivity(h.acts.FailMessage, FailInput{MessageRef: gone, ErrorCode: "x", Detail: "y", DeadLetter: true})
	requireNonRetryable(t, err, ErrTypeNotFound)
	_, err = h.env.ExecuteActivity(h.acts.CompleteMessage, gone)
	requireNonRetryable(t, err, ErrTypeNotFound)
	_, err = h.env.ExecuteActivity(h.acts.CompleteUnmapped, gone)
	requireNonRetryable(t, err, ErrTypeNotFound)
}
