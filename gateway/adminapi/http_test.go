package adminapi

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
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/gateway/internal/gatewaytest"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/internal/routing"
)

// The shared HTTP test kit (gateway/internal/gatewaytest) under the names this package's
// tests use.
const (
	apiBaseURL = gatewaytest.BaseURL
	apiTenantA = gatewaytest.TenantA
	apiTenantB = gatewaytest.TenantB
	apiRWScope = gatewaytest.RWScope
)

var (
	apiSecret         = gatewaytest.Secret
	decodeBody        = gatewaytest.DecodeBody
	requireAPIOutcome = gatewaytest.RequireOutcome
	outcomeText       = gatewaytest.OutcomeText
)

type apiServer struct {
	t      *testing.T
	e      *echo.Echo
	pool   *db.Pool
	signer auth.HS256
}

// newAPIServer mounts the admin API alone, on the server every room runs on, over a fresh
// database; mod adjusts the Deps before New.
func newAPIServer(t *testing.T, mod func(*Deps)) *apiServer {
	t.Helper()
	_, pool := dbtest.New(t)
	reg := prometheus.NewRegistry()
	signer := auth.HS256{Secret: apiSecret}
	d := Deps{
		Pool:    pool,
		Auth:    signer,
		BaseURL: apiBaseURL,
		Logger:  slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&d)
	}
	e := httpkit.NewServer(d.Logger, httpkit.NewMetrics(reg))
	New(d).Routes(e.Group("/admin"))
	return &apiServer{t: t, e: e, pool: pool, signer: signer}
}

func (s *apiServer) token(tenant, scope string) string {
	s.t.Helper()
	tok, err := s.signer.Issue("test-client", tenant, scope, time.Hour)
	require.NoError(s.t, err)
	return tok
}

type apiRequest struct {
	method, path, token string
	body                io.Reader
	header              map[string]string
}

func (s *apiServer) do(r apiRequest) *httptest.ResponseRecorder {
	s.t.Helper()
	return gatewaytest.Do(s.e, gatewaytest.Request{Method: r.method, Path: r.path, Token: r.token, Body: r.body, Header: r.header})
}

func (s *apiServer) get(path, token string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{path: path, token: token})
}

func (s *apiServer) post(path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(apiRequest{method: http.MethodPost, path: path, token: token, body: strings.NewReader(body), header: header})
}

type apiEventsPage struct {
	Events []struct {
		Cursor        string          `json:"cursor"`
		EventID       string          `json:"eventId"`
		Type          string          `json:"type"`
		AggregateType string          `json:"aggregateType"`
		AggregateID   string          `json:"aggregateId"`
		OccurredAt    time.Time       `json:"occurredAt"`
		Payload       json.RawMessage `json:"payload"`
	} `json:"events"`
	Next string `json:"next"`
}

func (s *apiServer) events(token, query string) apiEventsPage {
	s.t.Helper()
	rec := s.get("/admin/events"+query, token)
	require.Equal(s.t, http.StatusOK, rec.Code, rec.Body.String())
	var p apiEventsPage
	require.NoError(s.t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	require.NotNil(s.t, p.Events, "events is a list, never null: %s", rec.Body.String())
	return p
}

func eventAggregateIDs(p apiEventsPage) []string {
	out := make([]string, len(p.Events))
	for i, e := range p.Events {
		out[i] = e.AggregateID
	}
	return out
}

func TestAdminEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newAPIServer(t, nil)
	adminA := s.token(apiTenantA, auth.AdminScope)
	adminB := s.token(apiTenantB, auth.AdminScope)

	requireAPIOutcome(t, s.get("/admin/events", s.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")

	emit := func(tenant, aggregateID string) {
		t.Helper()
		require.NoError(t, db.InTx(ctx, s.pool, func(q *db.Queries) error {
			return outbox.Emit(ctx, q, tenant, outbox.Hl7MessageReceived, aggregateID, map[string]any{"n": aggregateID})
		}))
	}
	emit(apiTenantA, "a1")
	emit(apiTenantB, "b1")
	emit(apiTenantA, "a2")
	emit(apiTenantA, "a3")
	// A rolled-back change raises no event.
	require.Error(t, db.InTx(ctx, s.pool, func(q *db.Queries) error {
		require.NoError(t, outbox.Emit(ctx, q, apiTenantA, outbox.Hl7MessageFailed, "rolled-back", nil))
		return errors.New("abort")
	}))

	// Events become visible once no older transaction is running anywhere in the cluster
	// (other tests' databases share it), so wait for them rather than assume.
	var all apiEventsPage
	require.Eventually(t, func() bool {
		all = s.events(adminA, "")
		return len(all.Events) >= 3
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{"a1", "a2", "a3"}, eventAggregateIDs(all), "only the caller tenant's events, in commit order")
	require.Equal(t, all.Events[2].Cursor, all.Next)
	for _, e := range all.Events {
		require.Equal(t, string(outbox.Hl7MessageReceived), e.Type)
		require.Equal(t, "Hl7Message", e.AggregateType)
		require.NotEmpty(t, e.EventID)
		require.NotEmpty(t, e.Cursor)
		require.False(t, e.OccurredAt.IsZero())
		require.JSONEq(t, `{"n":"`+e.AggregateID+`","tenantId":"`+apiTenantA+`"}`, string(e.Payload))
	}
	require.Eventually(t, func() bool { return len(s.events(adminB, "").Events) == 1 }, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, []string{"b1"}, eventAggregateIDs(s.events(adminB, "")))

	// Paging: next, passed back as after, continues where the page ended.
	page1 := s.events(adminA, "?limit=2")
	require.Equal(t, []string{"a1", "a2"}, eventAggregateIDs(page1))
	require.Equal(t, page1.Events[1].Cursor, page1.Next)
	page2 := s.events(adminA, "?limit=2&after="+url.QueryEscape(page1.Next))
	require.Equal(t, []string{"a3"}, eventAggregateIDs(page2))
	require.Equal(t, all.Next, page2.Next)
	page3 := s.events(adminA, "?after="+url.QueryEscape(page2.Next))
	require.Empty(t, page3.Events)
	require.Equal(t, page2.Next, page3.Next, "an empty page keeps the cursor")

	// Another tenant's cursor reveals nothing of this tenant's events beyond it.
	require.Empty(t, s.events(adminB, "?after="+url.QueryEscape(page2.Next)).Events)

	for _, q := range []string{"?after=garbage", "?after=1", "?after=a-1", "?after=1-b", "?after=-1-2", "?limit=0", "?limit=1001", "?limit=abc"} {
		requireAPIOutcome(t, s.get("/admin/events"+q, adminA), http.StatusBadRequest, "value")
	}
}

func TestAdminMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newAPIServer(t, func(d *Deps) {
		d.TemporalUIURL = "http://temporal.test"
		d.TemporalNamespace = "default"
	})
	q := db.New(s.pool)
	port := int32(32001)
	conn, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
		TenantID: apiTenantA, FacilityID: "f1", Name: "lab", Protocol: db.ConnectorProtocolMLLP,
		Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, ListenPort: &port, Settings: []byte(`{}`),
	})
	require.NoError(t, err)
	raw := []byte("MSH|^~\\&|LAB|FAC|||20240101||ORU^R01|C1|P|2.5\r")
	sum := sha256.Sum256(raw)
	msg, err := q.Hl7MessageInsert(ctx, db.Hl7MessageInsertParams{
		TenantID: apiTenantA, ConnectorID: conn.ID, MessageControlID: "C1", SendingApp: "LAB", SendingFacility: "FAC",
		MessageCode: "ORU", TriggerEvent: "R01", HL7Version: "2.5", Raw: raw, RawSHA256: sum[:],
		AckCode: "AA", Ack: []byte("MSH|ack"), WorkflowID: "hl7-C1",
	})
	require.NoError(t, err)
	attempt, err := q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{WorkflowID: "hl7-C1", RunID: "run-1", MessageID: msg.ID})
	require.NoError(t, err)
	require.NoError(t, q.Hl7ResourceLinkInsertMany(ctx, db.Hl7ResourceLinkInsertManyParams{
		TenantID: apiTenantA, MessageID: msg.ID, AttemptID: &attempt.ID, ResourceTypes: []string{"Patient"}, ResourceIDs: []string{"p1"},
		Actions: []string{"created"}, Owners: []string{routing.Builtin},
	}))

	adminA := s.token(apiTenantA, auth.AdminScope)
	rec := s.get("/admin/messages/"+msg.ID.String(), adminA)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m := decodeBody(t, rec)
	require.Equal(t, msg.ID.String(), m["id"])
	require.Equal(t, conn.ID.String(), m["connectorId"])
	require.Equal(t, "pending", m["status"])
	require.Equal(t, "C1", m["messageControlId"])
	require.Equal(t, "ORU^R01", m["messageType"])
	require.Equal(t, float64(len(raw)), m["sizeBytes"])
	require.Equal(t, "http://temporal.test/namespaces/default/workflows/hl7-C1", m["temporalUrl"])
	require.NotContains(t, m, "raw", "the message body (PHI) is not part of the summary")
	attempts := m["attempts"].([]any)
	require.Len(t, attempts, 1)
	require.Equal(t, "run-1", attempts[0].(map[string]any)["runId"])
	links := m["resourceLinks"].([]any)
	require.Len(t, links, 1)
	require.Equal(t, "p1", links[0].(map[string]any)["resourceId"])

	// Another tenant's admin sees no such message: the same answer as for an unknown id.
	foreign := s.get("/admin/messages/"+msg.ID.String(), s.token(apiTenantB, auth.AdminScope))
	requireAPIOutcome(t, foreign, http.StatusNotFound, "not-found")
	unknown := s.get("/admin/messages/"+uuid.NewString(), s.token(apiTenantB, auth.AdminScope))
	requireAPIOutcome(t, unknown, http.StatusNotFound, "not-found")
	require.Equal(t, unknown.Body.String(), foreign.Body.String())
	requireAPIOutcome(t, s.get("/admin/messages/not-a-uuid", adminA), http.StatusNotFound, "not-found")
	// Without the admin scope even the owner tenant is refused.
	requireAPIOutcome(t, s.get("/admin/messages/"+msg.ID.String(), s.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")
}

// The admin API limits request bodies as the FHIR API does (fhirapi's TestFHIRRequestBodies).
func TestAdminRequestBodies(t *testing.T) {
	t.Parallel()
	const limit = 512
	s := newAPIServer(t, func(d *Deps) { d.MaxBodyBytes = limit })
	big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("x", 2*limit) + `"}}`
	requireAPIOutcome(t, s.do(apiRequest{path: "/admin/events", token: s.token(apiTenantA, auth.AdminScope), body: strings.NewReader(big)}),
		http.StatusRequestEntityTooLarge, "too-long")
}

// FHIR scopes grant no admin API, as the admin scope grants no FHIR data (fhirapi's
// TestFHIRScopesLimitInteractions).
func TestAdminScopeIsNotFHIRScope(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	requireAPIOutcome(t, s.get("/admin/events", s.token(apiTenantA, "system/*.cruds")), http.StatusForbidden, "forbidden")
}
