package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/temporaldev"
	"github.com/nhp/interop/workflows"
)

// These tests drive the support staff's message API (/admin/messages...) over httptest against
// a fresh PostgreSQL database per test; the reprocess tests with Temporal run an embedded
// temporaldev server. Messages are inserted with the sqlc queries, statuses set with
// Hl7MessageSetStatus.

// amsgPort hands out distinct listen ports for draft connectors.
var amsgPort atomic.Int32

func init() { amsgPort.Store(41000) }

type amsgEnv struct {
	*apiServer
	q              *db.Queries
	adminA, adminB string
}

func newAmsgEnv(t *testing.T, mod func(*Deps)) *amsgEnv {
	t.Helper()
	s := newAPIServer(t, mod)
	return &amsgEnv{
		apiServer: s, q: db.New(s.pool),
		adminA: s.token(apiTenantA, auth.AdminScope), adminB: s.token(apiTenantB, auth.AdminScope),
	}
}

func (e *amsgEnv) connector(tenant, name string) db.InteropConnector {
	e.t.Helper()
	return insertConnector(e.t, e.q, connectorSpec{Tenant: tenant, Facility: "fac-" + name, Name: name, Port: amsgPort.Add(1)})
}

// amsg is one stored message as the test knows it.
type amsg struct {
	ID            uuid.UUID
	Tenant        string
	Connector     uuid.UUID
	Control       string
	Code, Trigger string
	Status        db.Hl7MessageStatus
	Raw           []byte
	WorkflowID    string
	ReceivedAt    time.Time
}

func (m *amsg) messageType() string { return workflows.MessageType(m.Code, m.Trigger) }

func amsgRaw(code, trigger, control string) []byte {
	return []byte("MSH|^~\\&|LAB|FAC|HIS|HOSP|20250301120000||" + workflows.MessageType(code, trigger) + "|" + control +
		"|P|2.5\rPID|1||MRN-" + control + "^^^HOSP^MR||Doe^Jane\r")
}

// amsgInsert stores m with q (a pool or a transaction) and moves it to m.Status.
func amsgInsert(t *testing.T, q *db.Queries, m *amsg) {
	t.Helper()
	ctx := context.Background()
	if m.Raw == nil {
		m.Raw = amsgRaw(m.Code, m.Trigger, m.Control)
	}
	if m.WorkflowID == "" {
		m.WorkflowID = "hl7-" + m.Control + "-" + uuid.NewString()
	}
	sum := sha256.Sum256(m.Raw)
	row, err := q.Hl7MessageInsert(ctx, db.Hl7MessageInsertParams{
		TenantID: m.Tenant, ConnectorID: m.Connector, MessageControlID: m.Control, SendingApp: "LAB", SendingFacility: "FAC",
		MessageCode: m.Code, TriggerEvent: m.Trigger, HL7Version: "2.5", Raw: m.Raw, RawSHA256: sum[:],
		AckCode: "AA", Ack: []byte("MSH|ack|" + m.Control), WorkflowID: m.WorkflowID,
	})
	require.NoError(t, err)
	m.ID, m.ReceivedAt = row.ID, row.ReceivedAt
	if m.Status == "" {
		m.Status = db.Hl7MessageStatusPending
	}
	if m.Status != db.Hl7MessageStatusPending {
		p := db.Hl7MessageSetStatusParams{ID: m.ID, Status: m.Status}
		if m.Status == db.Hl7MessageStatusFailed || m.Status == db.Hl7MessageStatusDeadLettered {
			p.LastErrorCode, p.LastError = "MAP_ERROR", "PID-3 missing for "+m.Control
		}
		_, err = q.Hl7MessageSetStatus(ctx, p)
		require.NoError(t, err)
	}
}

// insert stores each message in its own transaction.
func (e *amsgEnv) insert(msgs ...*amsg) {
	e.t.Helper()
	for _, m := range msgs {
		amsgInsert(e.t, e.q, m)
	}
}

// insertTogether stores msgs in one transaction: they share received_at (now() is the
// transaction's start time), which exercises the (received_at, id) tie-break.
func (e *amsgEnv) insertTogether(msgs ...*amsg) {
	e.t.Helper()
	require.NoError(e.t, db.InTx(context.Background(), e.pool, func(q *db.Queries) error {
		for _, m := range msgs {
			amsgInsert(e.t, q, m)
		}
		return nil
	}))
	for _, m := range msgs[1:] {
		require.True(e.t, m.ReceivedAt.Equal(msgs[0].ReceivedAt), "one transaction, one received_at")
	}
}

// amsgNewestFirst orders like the API: received_at, then id, both descending (uuid order is
// byte order in PostgreSQL).
func amsgNewestFirst(msgs []*amsg) []*amsg {
	out := slices.Clone(msgs)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ReceivedAt.Equal(out[j].ReceivedAt) {
			return out[i].ReceivedAt.After(out[j].ReceivedAt)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) > 0
	})
	return out
}

func amsgExpect(all []*amsg, keep func(*amsg) bool) []string {
	ids := []string{}
	for _, m := range amsgNewestFirst(all) {
		if keep == nil || keep(m) {
			ids = append(ids, m.ID.String())
		}
	}
	return ids
}

type amsgSummary struct {
	ID                 string     `json:"id"`
	ConnectorID        string     `json:"connectorId"`
	Status             string     `json:"status"`
	MessageControlID   string     `json:"messageControlId"`
	SendingApplication string     `json:"sendingApplication"`
	SendingFacility    string     `json:"sendingFacility"`
	MessageType        string     `json:"messageType"`
	Version            string     `json:"version"`
	SizeBytes          int        `json:"sizeBytes"`
	AckCode            string     `json:"ackCode"`
	LastErrorCode      string     `json:"lastErrorCode"`
	LastError          string     `json:"lastError"`
	WorkflowID         string     `json:"workflowId"`
	DuplicateOf        *string    `json:"duplicateOf"`
	ReceivedAt         time.Time  `json:"receivedAt"`
	StatusChangedAt    time.Time  `json:"statusChangedAt"`
	ProcessedAt        *time.Time `json:"processedAt"`
}

type amsgPage struct {
	Messages []amsgSummary `json:"messages"`
	Next     string        `json:"next"`
}

func (e *amsgEnv) list(token, query string) amsgPage {
	e.t.Helper()
	rec := e.get("/admin/messages"+query, token)
	require.Equal(e.t, http.StatusOK, rec.Code, "%s: %s", query, rec.Body.String())
	require.True(e.t, strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), echo.MIMEApplicationJSON), rec.Header().Get(echo.HeaderContentType))
	var p amsgPage
	require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	require.NotNil(e.t, p.Messages, "messages is a list, never null: %s", rec.Body.String())
	return p
}

func amsgIDs(p amsgPage) []string {
	ids := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		ids[i] = m.ID
	}
	return ids
}

// listAll walks every page of a query with the given limit (0: the default) and returns the
// ids in order, failing on a duplicate, an overfull page or a missing/extra next. ties reports
// how many page boundaries fell between two messages with the same received_at.
func (e *amsgEnv) listAll(token string, filter url.Values, limit int) (ids []string, ties int) {
	e.t.Helper()
	pageSize := limit
	if pageSize == 0 {
		pageSize = 50
	}
	seen := map[string]bool{}
	cursor := ""
	var lastAt time.Time
	for page := 0; ; page++ {
		require.Less(e.t, page, 1000, "the walk must end")
		v := url.Values{}
		for k, vs := range filter {
			v[k] = slices.Clone(vs)
		}
		if limit > 0 {
			v.Set("limit", strconv.Itoa(limit))
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		q := ""
		if len(v) > 0 {
			q = "?" + v.Encode()
		}
		p := e.list(token, q)
		require.LessOrEqual(e.t, len(p.Messages), pageSize, q)
		for i, m := range p.Messages {
			require.False(e.t, seen[m.ID], "message %s on two pages (%s)", m.ID, q)
			seen[m.ID] = true
			ids = append(ids, m.ID)
			if i == 0 && page > 0 && m.ReceivedAt.Equal(lastAt) {
				ties++
			}
			lastAt = m.ReceivedAt
		}
		require.Equal(e.t, len(p.Messages) == pageSize, p.Next != "", "next is given exactly when the page is full (%s): %+v", q, p.Next)
		if p.Next == "" {
			return ids, ties
		}
		cursor = p.Next
	}
}

// requireSameNotFound checks that rec is the 404 a missing id gets, byte for byte.
func requireSameNotFound(t *testing.T, missing, rec *httptest.ResponseRecorder) {
	t.Helper()
	requireAPIOutcome(t, rec, http.StatusNotFound, "not-found")
	require.Equal(t, missing.Body.String(), rec.Body.String())
	require.Equal(t, missing.Header().Get(echo.HeaderContentType), rec.Header().Get(echo.HeaderContentType))
	require.Empty(t, rec.Header().Get(echo.HeaderContentDisposition))
}

// amsgJSON is the Content-Type the reprocess-by-filter body is bound with.
var amsgJSON = map[string]string{echo.HeaderContentType: echo.MIMEApplicationJSON}

type amsgReprocessResult struct {
	MessageID   string `json:"messageId"`
	WorkflowID  string `json:"workflowId"`
	RunID       string `json:"runId"`
	ReprocessOf string `json:"reprocessOf"`
	TemporalURL string `json:"temporalUrl"`
	Error       string `json:"error"`
}

type amsgBatch struct {
	Matched int                   `json:"matched"`
	Started int                   `json:"started"`
	Results []amsgReprocessResult `json:"results"`
}

func (e *amsgEnv) reprocessBatch(token, body string) amsgBatch {
	e.t.Helper()
	rec := e.post("/admin/messages/reprocess", token, body, amsgJSON)
	require.Equal(e.t, http.StatusAccepted, rec.Code, "%s: %s", body, rec.Body.String())
	var b amsgBatch
	require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &b), rec.Body.String())
	require.NotNil(e.t, b.Results, "results is a list, never null: %s", rec.Body.String())
	require.Len(e.t, b.Results, b.Matched, rec.Body.String())
	return b
}

func (e *amsgEnv) reprocessOne(token string, id uuid.UUID, query string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.post("/admin/messages/"+id.String()+"/reprocess"+query, token, "", nil)
}

func amsgResultIDs(b amsgBatch) []string {
	ids := make([]string, len(b.Results))
	for i, r := range b.Results {
		ids[i] = r.MessageID
	}
	return ids
}

// storedStatus reads a message's status and status_changed_at straight from the table.
func (e *amsgEnv) storedStatus(id uuid.UUID) (db.Hl7MessageStatus, time.Time) {
	e.t.Helper()
	m, err := e.q.Hl7MessageGet(context.Background(), id)
	require.NoError(e.t, err)
	return m.Status, m.StatusChangedAt
}

// amsgListFixture is tenant A's 25 messages on two connectors, in 9 transactions (so several
// share a received_at), with every status, three message types, one type without a trigger
// event and one control id on both connectors; plus three messages of tenant B interleaved.
type amsgListFixture struct {
	a         []*amsg
	b         []*amsg
	groups    [][]*amsg // A's messages per insert transaction, oldest first
	connA1    db.InteropConnector
	connA2    db.InteropConnector
	connB     db.InteropConnector
	noTrigger *amsg
}

var amsgStatuses = []db.Hl7MessageStatus{
	db.Hl7MessageStatusPending, db.Hl7MessageStatusProcessing, db.Hl7MessageStatusProcessed,
	db.Hl7MessageStatusFailed, db.Hl7MessageStatusDeadLettered, db.Hl7MessageStatusUnmapped,
}

func (e *amsgEnv) listFixture() *amsgListFixture {
	e.t.Helper()
	f := &amsgListFixture{connA1: e.connector(apiTenantA, "a1"), connA2: e.connector(apiTenantA, "a2"), connB: e.connector(apiTenantB, "b1")}
	types := [][2]string{{"ADT", "A01"}, {"ADT", "A04"}, {"ORU", "R01"}}
	i := 0
	for g, size := range []int{1, 4, 1, 5, 2, 1, 3, 1, 7} {
		var group, tx []*amsg
		for range size {
			m := &amsg{Tenant: apiTenantA, Control: fmt.Sprintf("CTL-%03d", i), Status: amsgStatuses[i%len(amsgStatuses)]}
			m.Code, m.Trigger = types[i%3][0], types[i%3][1]
			m.Connector = f.connA1.ID
			if i%2 == 1 {
				m.Connector = f.connA2.ID
			}
			if i == 7 || i == 8 { // one control id on both connectors
				m.Control = "SHARED"
			}
			if i == 24 {
				m.Code, m.Trigger = "ADT", "" // MSH-9 without a trigger event
				f.noTrigger = m
			}
			group = append(group, m)
			i++
		}
		tx = append(tx, group...)
		// Tenant B's messages share transactions (and so received_at) with A's.
		if g == 1 || g == 3 || g == 8 {
			mb := &amsg{Tenant: apiTenantB, Connector: f.connB.ID, Control: []string{"SHARED", "CTL-001", "CTL-020"}[len(f.b)],
				Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered}
			f.b = append(f.b, mb)
			tx = append(tx, mb)
		}
		e.insertTogether(tx...)
		f.groups = append(f.groups, group)
		f.a = append(f.a, group...)
	}
	require.Len(e.t, f.a, 25)
	for g := 1; g < len(f.groups); g++ {
		require.True(e.t, f.groups[g][0].ReceivedAt.After(f.groups[g-1][0].ReceivedAt), "transactions are ordered in time")
	}
	return f
}

func TestAdminMessagesListNewestFirstAndFields(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	f := e.listFixture()

	p := e.list(e.adminA, "")
	require.Empty(t, p.Next, "25 messages fit the default page of 50")
	require.Equal(t, amsgExpect(f.a, nil), amsgIDs(p), "newest first, then by id")
	for i := 1; i < len(p.Messages); i++ {
		require.False(t, p.Messages[i].ReceivedAt.After(p.Messages[i-1].ReceivedAt), "newest first")
	}
	byID := map[string]*amsg{}
	for _, m := range f.a {
		byID[m.ID.String()] = m
	}
	for _, s := range p.Messages {
		m := byID[s.ID]
		require.NotNil(t, m, "only tenant A's messages: %s", s.ID)
		require.Equal(t, m.Connector.String(), s.ConnectorID)
		require.Equal(t, string(m.Status), s.Status)
		require.Equal(t, m.Control, s.MessageControlID)
		require.Equal(t, "LAB", s.SendingApplication)
		require.Equal(t, "FAC", s.SendingFacility)
		require.Equal(t, m.messageType(), s.MessageType)
		require.Equal(t, "2.5", s.Version)
		require.Equal(t, len(m.Raw), s.SizeBytes)
		require.Equal(t, "AA", s.AckCode)
		require.Equal(t, m.WorkflowID, s.WorkflowID)
		require.Nil(t, s.DuplicateOf)
		require.True(t, m.ReceivedAt.Equal(s.ReceivedAt), "receivedAt %s vs %s", m.ReceivedAt, s.ReceivedAt)
		require.False(t, s.StatusChangedAt.Before(s.ReceivedAt))
		require.Equal(t, m.Status == db.Hl7MessageStatusProcessed || m.Status == db.Hl7MessageStatusUnmapped, s.ProcessedAt != nil,
			"processedAt only when processed or unmapped")
		if m.Status == db.Hl7MessageStatusFailed || m.Status == db.Hl7MessageStatusDeadLettered {
			require.Equal(t, "MAP_ERROR", s.LastErrorCode)
			require.Equal(t, "PID-3 missing for "+m.Control, s.LastError)
		} else {
			require.Empty(t, s.LastErrorCode)
			require.Empty(t, s.LastError)
		}
	}
	i := slices.IndexFunc(p.Messages, func(s amsgSummary) bool { return s.ID == f.noTrigger.ID.String() })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, "ADT", p.Messages[i].MessageType, "a type without trigger event is listed as the bare code")

	// The list never carries the message bytes (PHI).
	rec := e.get("/admin/messages", e.adminA)
	require.NotContains(t, rec.Body.String(), "Doe^Jane")
	require.NotContains(t, rec.Body.String(), `"raw"`)

	// Tenant B sees its own three only.
	require.Equal(t, amsgExpect(f.b, nil), amsgIDs(e.list(e.adminB, "")))

	// Without the admin scope: refused.
	requireAPIOutcome(t, e.get("/admin/messages", e.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, e.get("/admin/messages", ""), http.StatusUnauthorized, "login")
}

func TestAdminMessagesListPaging(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	f := e.listFixture()
	want := amsgExpect(f.a, nil)

	splitTies := 0
	for _, limit := range []int{1, 2, 3, 4, 5, 6, 7, 10, 12, 24, 25, 26, 500} {
		got, ties := e.listAll(e.adminA, nil, limit)
		require.Equal(t, want, got, "limit %d: every message once, in order, no gaps", limit)
		splitTies += ties
	}
	require.Positive(t, splitTies, "the walks must cross page boundaries inside a group of equal received_at")

	// A walk with a filter pages within the filter.
	for _, tc := range []struct {
		v    url.Values
		keep func(*amsg) bool
	}{
		{url.Values{"status": {"dead_lettered"}}, func(m *amsg) bool { return m.Status == db.Hl7MessageStatusDeadLettered }},
		{url.Values{"status": {"unmapped"}}, func(m *amsg) bool { return m.Status == db.Hl7MessageStatusUnmapped }},
		{url.Values{"type": {"ADT"}}, func(m *amsg) bool { return m.Code == "ADT" }},
		{url.Values{"connector": {f.connA2.ID.String()}}, func(m *amsg) bool { return m.Connector == f.connA2.ID }},
	} {
		for _, limit := range []int{1, 2, 3} {
			got, _ := e.listAll(e.adminA, tc.v, limit)
			require.Equal(t, amsgExpect(f.a, tc.keep), got, "%v limit %d", tc.v, limit)
		}
	}

	// The cursor is the position after the last message of the page: the next page starts
	// strictly after it even when its neighbours share its received_at.
	p := e.list(e.adminA, "?limit=3")
	require.Equal(t, want[:3], amsgIDs(p))
	p2 := e.list(e.adminA, "?limit=3&cursor="+url.QueryEscape(p.Next))
	require.Equal(t, want[3:6], amsgIDs(p2))
	// The last page is empty when the previous one was exactly full.
	p = e.list(e.adminA, "?limit=25")
	require.Len(t, p.Messages, 25)
	require.NotEmpty(t, p.Next)
	last := e.list(e.adminA, "?limit=25&cursor="+url.QueryEscape(p.Next))
	require.Empty(t, last.Messages)
	require.Empty(t, last.Next)

	// A hand-made cursor at a position works the same way: (received_at, id) of the oldest
	// message of the newest group yields everything older.
	newest := amsgNewestFirst(f.a)
	cur := encodeMessageCursor(newest[6].ReceivedAt, newest[6].ID)
	require.Equal(t, want[7:], amsgIDs(e.list(e.adminA, "?cursor="+url.QueryEscape(cur))))
}

func TestAdminMessagesListFilters(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	f := e.listFixture()
	a1, a2 := f.connA1.ID.String(), f.connA2.ID.String()
	groupAt := func(g int) time.Time { return f.groups[g][0].ReceivedAt }
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	plus2 := time.FixedZone("+02", 2*3600)

	type tc struct {
		name string
		v    url.Values
		keep func(*amsg) bool
		min  int // the fixture must give the filter something to find (or exclude)
	}
	cases := []tc{}
	for _, st := range amsgStatuses {
		cases = append(cases, tc{"status " + string(st), url.Values{"status": {string(st)}},
			func(m *amsg) bool { return m.Status == st }, 4})
	}
	cases = append(cases,
		tc{"type ADT", url.Values{"type": {"ADT"}}, func(m *amsg) bool { return m.Code == "ADT" }, 17},
		tc{"type ADT^A01", url.Values{"type": {"ADT^A01"}}, func(m *amsg) bool { return m.Code == "ADT" && m.Trigger == "A01" }, 8},
		tc{"type ADT^A04", url.Values{"type": {"ADT^A04"}}, func(m *amsg) bool { return m.Code == "ADT" && m.Trigger == "A04" }, 8},
		tc{"type ORU", url.Values{"type": {"ORU"}}, func(m *amsg) bool { return m.Code == "ORU" }, 8},
		tc{"type ORU^R01", url.Values{"type": {"ORU^R01"}}, func(m *amsg) bool { return m.Code == "ORU" && m.Trigger == "R01" }, 8},
		tc{"type ORU^A01 (no such)", url.Values{"type": {"ORU^A01"}}, func(*amsg) bool { return false }, 0},
		tc{"type SIU", url.Values{"type": {"SIU"}}, func(*amsg) bool { return false }, 0},
		tc{"connector a1", url.Values{"connector": {a1}}, func(m *amsg) bool { return m.Connector == f.connA1.ID }, 13},
		tc{"connector a2", url.Values{"connector": {a2}}, func(m *amsg) bool { return m.Connector == f.connA2.ID }, 12},
		tc{"connector unknown", url.Values{"connector": {uuid.NewString()}}, func(*amsg) bool { return false }, 0},
		tc{"controlId SHARED", url.Values{"controlId": {"SHARED"}}, func(m *amsg) bool { return m.Control == "SHARED" }, 2},
		tc{"controlId CTL-005", url.Values{"controlId": {"CTL-005"}}, func(m *amsg) bool { return m.Control == "CTL-005" }, 1},
		tc{"controlId prefix is no match", url.Values{"controlId": {"CTL-00"}}, func(*amsg) bool { return false }, 0},
		tc{"receivedFrom", url.Values{"receivedFrom": {rfc(groupAt(4))}},
			func(m *amsg) bool { return !m.ReceivedAt.Before(groupAt(4)) }, 13},
		tc{"receivedTo", url.Values{"receivedTo": {rfc(groupAt(4))}},
			func(m *amsg) bool { return m.ReceivedAt.Before(groupAt(4)) }, 11},
		tc{"receivedFrom..receivedTo", url.Values{"receivedFrom": {rfc(groupAt(2))}, "receivedTo": {rfc(groupAt(5))}},
			func(m *amsg) bool { return !m.ReceivedAt.Before(groupAt(2)) && m.ReceivedAt.Before(groupAt(5)) }, 8},
		tc{"receivedFrom..receivedTo with +02:00 offsets", url.Values{
			"receivedFrom": {groupAt(2).In(plus2).Format(time.RFC3339Nano)}, "receivedTo": {groupAt(5).In(plus2).Format(time.RFC3339Nano)}},
			func(m *amsg) bool { return !m.ReceivedAt.Before(groupAt(2)) && m.ReceivedAt.Before(groupAt(5)) }, 8},
		tc{"receivedFrom is inclusive, receivedTo exclusive", url.Values{"receivedFrom": {rfc(groupAt(3))}, "receivedTo": {rfc(groupAt(3).Add(time.Microsecond))}},
			func(m *amsg) bool { return m.ReceivedAt.Equal(groupAt(3)) }, 5},
		tc{"receivedFrom = receivedTo", url.Values{"receivedFrom": {rfc(groupAt(3))}, "receivedTo": {rfc(groupAt(3))}}, func(*amsg) bool { return false }, 0},
		tc{"receivedFrom > receivedTo", url.Values{"receivedFrom": {rfc(groupAt(5))}, "receivedTo": {rfc(groupAt(2))}}, func(*amsg) bool { return false }, 0},
		tc{"whole-second RFC 3339", url.Values{"receivedFrom": {groupAt(0).Add(-time.Second).UTC().Format(time.RFC3339)}, "receivedTo": {groupAt(8).Add(2 * time.Second).UTC().Format(time.RFC3339)}},
			func(*amsg) bool { return true }, 25},
		// Combined.
		tc{"status+type", url.Values{"status": {"failed"}, "type": {"ADT"}},
			func(m *amsg) bool { return m.Status == db.Hl7MessageStatusFailed && m.Code == "ADT" }, 3},
		tc{"status+type+connector", url.Values{"status": {"dead_lettered"}, "type": {"ADT^A04"}, "connector": {a1}},
			func(m *amsg) bool {
				return m.Status == db.Hl7MessageStatusDeadLettered && m.Code == "ADT" && m.Trigger == "A04" && m.Connector == f.connA1.ID
			}, 1},
		tc{"controlId+connector", url.Values{"controlId": {"SHARED"}, "connector": {a1}},
			func(m *amsg) bool { return m.Control == "SHARED" && m.Connector == f.connA1.ID }, 1},
		tc{"type+time", url.Values{"type": {"ADT^A01"}, "receivedFrom": {rfc(groupAt(3))}, "receivedTo": {rfc(groupAt(8))}},
			func(m *amsg) bool {
				return m.Code == "ADT" && m.Trigger == "A01" && !m.ReceivedAt.Before(groupAt(3)) && m.ReceivedAt.Before(groupAt(8))
			}, 2},
		tc{"every filter", url.Values{"status": {"processing"}, "type": {"ADT^A04"}, "connector": {a2}, "controlId": {"CTL-001"},
			"receivedFrom": {rfc(groupAt(1))}, "receivedTo": {rfc(groupAt(2))}},
			func(m *amsg) bool { return m.Control == "CTL-001" }, 1},
		tc{"every filter, one off", url.Values{"status": {"processing"}, "type": {"ADT^A04"}, "connector": {a1}, "controlId": {"CTL-001"},
			"receivedFrom": {rfc(groupAt(1))}, "receivedTo": {rfc(groupAt(2))}},
			func(*amsg) bool { return false }, 0},
	)
	for _, c := range cases {
		want := amsgExpect(f.a, c.keep)
		require.GreaterOrEqual(t, len(want), c.min, "%s: fixture premise", c.name)
		if c.min == 0 {
			require.Empty(t, want, c.name)
		}
		got := amsgIDs(e.list(e.adminA, "?"+c.v.Encode()))
		require.Equal(t, want, got, c.name)
	}
}

func TestAdminMessagesListInvalidParameters(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	bad := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, q := range []string{
		"status=bogus", "status=PROCESSED", "status=dead-lettered", "status=%20",
		"limit=0", "limit=-1", "limit=501", "limit=abc", "limit=1.5", "limit=99999999999999999999",
		"cursor=garbage!", "cursor=" + bad("x"), "cursor=" + bad("2025-01-01T00:00:00Z|not-a-uuid"),
		"cursor=" + bad("yesterday|"+uuid.NewString()), "cursor=" + bad("2025-01-01T00:00:00Z") + "|",
		"cursor=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("2025-01-01T00:00:00Z|"+uuid.NewString()+"?"))),
		"receivedFrom=2025-01-02", "receivedFrom=yesterday", "receivedFrom=2025-01-02T15:04:05",
		"receivedTo=1735689600", "receivedFrom=2025-13-01T00:00:00Z",
		"connector=not-a-uuid", "connector=123",
		"status=processed&limit=0",
	} {
		rec := e.get("/admin/messages?"+q, e.adminA)
		t.Logf("%s → %d %s", q, rec.Code, rec.Body.String())
		requireAPIOutcome(t, rec, http.StatusBadRequest, "value")
	}
	// The largest limit is fine.
	e.list(e.adminA, "?limit=500")
	e.list(e.adminA, "?limit=1")
}

func TestAdminMessagesTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	connA, connB := e.connector(apiTenantA, "a"), e.connector(apiTenantB, "b")
	var as []*amsg
	for i, st := range amsgStatuses {
		as = append(as, &amsg{Tenant: apiTenantA, Connector: connA.ID, Control: fmt.Sprintf("A-%d", i), Code: "ADT", Trigger: "A01", Status: st})
	}
	as = append(as, &amsg{Tenant: apiTenantA, Connector: connA.ID, Control: "BOTH", Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered})
	mb := &amsg{Tenant: apiTenantB, Connector: connB.ID, Control: "BOTH", Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered}
	e.insert(as...)
	e.insert(mb)
	before := map[uuid.UUID]time.Time{}
	for _, m := range as {
		_, at := e.storedStatus(m.ID)
		before[m.ID] = at
	}

	// List: whatever the filter, B sees only B's message.
	bOnly := []string{mb.ID.String()}
	for _, q := range []string{"", "?status=dead_lettered", "?type=ADT", "?type=ADT^A01", "?controlId=BOTH",
		"?receivedFrom=" + url.QueryEscape(as[0].ReceivedAt.Add(-time.Hour).Format(time.RFC3339Nano))} {
		require.Equal(t, bOnly, amsgIDs(e.list(e.adminB, q)), q)
	}
	for _, q := range []string{"?connector=" + connA.ID.String(), "?controlId=A-0", "?status=processed", "?status=processing",
		"?connector=" + connA.ID.String() + "&controlId=BOTH"} {
		p := e.list(e.adminB, q)
		require.Empty(t, p.Messages, q)
		require.Empty(t, p.Next, q)
	}
	// A's cursor in B's hands shows only B's messages older than it: none of A's.
	pa := e.list(e.adminA, "?limit=1")
	require.NotEmpty(t, pa.Next)
	for _, m := range e.list(e.adminB, "?cursor="+url.QueryEscape(pa.Next)).Messages {
		require.Equal(t, mb.ID.String(), m.ID)
	}
	// And A sees only A's.
	require.Equal(t, amsgExpect(as, nil), amsgIDs(e.list(e.adminA, "")))

	// Detail, raw and reprocess: A's ids are answered as missing ids are, byte for byte.
	missingID := uuid.New()
	for _, m := range as {
		for _, path := range []string{"", "/raw"} {
			missing := e.get("/admin/messages/"+missingID.String()+path, e.adminB)
			requireAPIOutcome(t, missing, http.StatusNotFound, "not-found")
			requireSameNotFound(t, missing, e.get("/admin/messages/"+m.ID.String()+path, e.adminB))
			require.Equal(t, http.StatusOK, e.get("/admin/messages/"+m.ID.String()+path, e.adminA).Code)
		}
		for _, q := range []string{"", "?force=true"} {
			missing := e.reprocessOne(e.adminB, missingID, q)
			requireAPIOutcome(t, missing, http.StatusNotFound, "not-found")
			requireSameNotFound(t, missing, e.reprocessOne(e.adminB, m.ID, q))
		}
	}
	require.NotContains(t, e.get("/admin/messages/"+as[0].ID.String()+"/raw", e.adminB).Body.String(), "MRN-")

	// Reprocess by filter: B's filters never match A's messages.
	for _, body := range []string{
		`{}`, `{"connectorId":"` + connA.ID.String() + `"}`, `{"controlId":"A-4"}`, `{"controlId":"BOTH"}`,
		`{"status":"failed"}`, `{"status":"pending"}`, `{"messageType":"ADT^A01","status":"dead_lettered"}`,
	} {
		b := e.reprocessBatch(e.adminB, body)
		for _, r := range b.Results {
			require.Equal(t, mb.ID.String(), r.MessageID, "%s: only B's message", body)
		}
	}
	require.Zero(t, e.reprocessBatch(e.adminB, `{"connectorId":"`+connA.ID.String()+`"}`).Matched)
	require.Equal(t, 1, e.reprocessBatch(e.adminB, `{"controlId":"BOTH"}`).Matched)

	// Nothing of A's moved.
	for _, m := range as {
		st, at := e.storedStatus(m.ID)
		require.Equal(t, m.Status, st)
		require.True(t, before[m.ID].Equal(at))
	}
	require.Zero(t, count(t, e.pool, `SELECT count(*) FROM hl7_processing_attempts`))
}

func TestAdminMessageRawIsByteExact(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	conn := e.connector(apiTenantA, "raw")
	// Latin-1 umlauts (not UTF-8), a NUL, 0xFF/0xFE, a lone LF inside a field, CR terminators and
	// a trailing CR: the bytes come back as stored, never re-encoded or normalised.
	raw := []byte("MSH|^~\\&|LAB|FAC|HIS|HOSP|20250301120000||ADT^A01|RAW-1|P|2.5|||||DEU|8859/1\r" +
		"PID|1||MRN-1^^^HOSP^MR||M\xfcller^J\xf6rg^\xc4||19700101|M\r" +
		"NTE|1||bin:\x00\xff\xfe\x80\x7f end\nsame segment\r" +
		"OBX|1|ST|x||\xe9\xe8\r\r")
	m := &amsg{Tenant: apiTenantA, Connector: conn.ID, Control: "RAW-1", Code: "ADT", Trigger: "A01", Raw: raw}
	noTrailer := &amsg{Tenant: apiTenantA, Connector: conn.ID, Control: "RAW-2", Code: "ORU", Trigger: "R01",
		Raw: []byte("MSH|^~\\&|LAB|FAC|||20250301||ORU^R01|RAW-2|P|2.5\rOBX|1|ST|x||\x91quoted\x92")}
	e.insert(m, noTrailer)

	for _, msg := range []*amsg{m, noTrailer} {
		rec := e.get("/admin/messages/"+msg.ID.String()+"/raw", e.adminA)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "application/hl7-v2", rec.Header().Get(echo.HeaderContentType))
		require.Equal(t, `attachment; filename="`+msg.ID.String()+`.hl7"`, rec.Header().Get(echo.HeaderContentDisposition))
		require.True(t, bytes.Equal(msg.Raw, rec.Body.Bytes()), "raw differs:\nwant %q\ngot  %q", msg.Raw, rec.Body.Bytes())
	}
	// sizeBytes counts bytes, not characters, in the list and the detail.
	d := decodeBody(t, e.get("/admin/messages/"+m.ID.String(), e.adminA))
	require.Equal(t, float64(len(raw)), d["sizeBytes"])
	for _, s := range e.list(e.adminA, "?controlId=RAW-1").Messages {
		require.Equal(t, len(raw), s.SizeBytes)
	}

	// Unknown, malformed and foreign ids.
	requireAPIOutcome(t, e.get("/admin/messages/"+uuid.NewString()+"/raw", e.adminA), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, e.get("/admin/messages/not-a-uuid/raw", e.adminA), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, e.get("/admin/messages/"+m.ID.String()+"/raw", e.adminB), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, e.get("/admin/messages/"+m.ID.String()+"/raw", e.token(apiTenantA, apiRWScope)), http.StatusForbidden, "forbidden")
}

func TestAdminMessageDetailAgreesWithList(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil)
	conn := e.connector(apiTenantA, "d")
	msgs := []*amsg{
		{Tenant: apiTenantA, Connector: conn.ID, Control: "D-1", Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered},
		{Tenant: apiTenantA, Connector: conn.ID, Control: "D-2", Code: "ADT", Trigger: "", Status: db.Hl7MessageStatusProcessed},
		{Tenant: apiTenantA, Connector: conn.ID, Control: "D-3", Code: "ORU", Trigger: "R01", Status: db.Hl7MessageStatusFailed},
	}
	e.insert(msgs...)
	listed := map[string]amsgSummary{}
	for _, s := range e.list(e.adminA, "").Messages {
		listed[s.ID] = s
	}
	for _, m := range msgs {
		d := decodeBody(t, e.get("/admin/messages/"+m.ID.String(), e.adminA))
		s := listed[m.ID.String()]
		require.Equal(t, s.MessageType, d["messageType"], "%s: the detail names the type as the list does", m.Control)
		require.Equal(t, m.messageType(), d["messageType"])
		require.Equal(t, s.Status, d["status"])
		require.Equal(t, s.MessageControlID, d["messageControlId"])
		require.Equal(t, s.WorkflowID, d["workflowId"])
		require.Equal(t, s.LastErrorCode, d["lastErrorCode"])
		require.Equal(t, float64(s.SizeBytes), d["sizeBytes"])
		require.Equal(t, []any{}, d["attempts"])
		require.Equal(t, []any{}, d["resourceLinks"])
		require.NotContains(t, d, "temporalUrl", "no Temporal UI configured")
	}
}

func TestReprocessWithoutTemporal(t *testing.T) {
	t.Parallel()
	e := newAmsgEnv(t, nil) // Deps.Temporal is nil
	conn := e.connector(apiTenantA, "r")
	msgs := map[db.Hl7MessageStatus]*amsg{}
	for i, st := range amsgStatuses {
		m := &amsg{Tenant: apiTenantA, Connector: conn.ID, Control: fmt.Sprintf("R-%d", i), Code: "ADT", Trigger: "A01", Status: st}
		e.insert(m)
		msgs[st] = m
	}
	dead := &amsg{Tenant: apiTenantA, Connector: conn.ID, Control: "R-dead-2", Code: "ORU", Trigger: "R01", Status: db.Hl7MessageStatusDeadLettered}
	e.insert(dead)

	// Reprocessable statuses get as far as starting the run: 503 transient, never a 500.
	for _, st := range []db.Hl7MessageStatus{db.Hl7MessageStatusDeadLettered, db.Hl7MessageStatusFailed, db.Hl7MessageStatusPending, db.Hl7MessageStatusUnmapped} {
		for _, q := range []string{"", "?force=true"} {
			rec := e.reprocessOne(e.adminA, msgs[st].ID, q)
			requireAPIOutcome(t, rec, http.StatusServiceUnavailable, "transient")
			require.Contains(t, rec.Body.String(), "workflow engine not configured")
		}
	}
	// A processed message needs force; with it, it too reaches the (missing) engine.
	requireAPIOutcome(t, e.reprocessOne(e.adminA, msgs[db.Hl7MessageStatusProcessed].ID, ""), http.StatusConflict, "conflict")
	for _, q := range []string{"?force=false", "?force=1", "?force=TRUE", "?force="} {
		requireAPIOutcome(t, e.reprocessOne(e.adminA, msgs[db.Hl7MessageStatusProcessed].ID, q), http.StatusConflict, "conflict")
	}
	requireAPIOutcome(t, e.reprocessOne(e.adminA, msgs[db.Hl7MessageStatusProcessed].ID, "?force=true"), http.StatusServiceUnavailable, "transient")
	// A processing message has a live run: never, not even with force.
	for _, q := range []string{"", "?force=true"} {
		rec := e.reprocessOne(e.adminA, msgs[db.Hl7MessageStatusProcessing].ID, q)
		requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
		require.Contains(t, rec.Body.String(), "processing")
	}
	// Unknown and malformed ids; no admin scope.
	requireAPIOutcome(t, e.reprocessOne(e.adminA, uuid.New(), ""), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, e.post("/admin/messages/not-a-uuid/reprocess", e.adminA, "", nil), http.StatusNotFound, "not-found")
	requireAPIOutcome(t, e.reprocessOne(e.token(apiTenantA, apiRWScope), msgs[db.Hl7MessageStatusDeadLettered].ID, ""), http.StatusForbidden, "forbidden")
	rec := e.get("/admin/messages/"+msgs[db.Hl7MessageStatusDeadLettered].ID.String()+"/reprocess", e.adminA)
	require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, rec.Code, rec.Body.String())
	requireAPIOutcome(t, rec, rec.Code, string(httpkit.IssueForStatus(rec.Code)))

	// By filter: each matching message is reported with why it did not start.
	b := e.reprocessBatch(e.adminA, `{}`) // dead_lettered by default
	require.Equal(t, 2, b.Matched)
	require.Zero(t, b.Started)
	require.Equal(t, []string{dead.ID.String(), msgs[db.Hl7MessageStatusDeadLettered].ID.String()}, amsgResultIDs(b), "newest first")
	for _, r := range b.Results {
		require.Equal(t, "workflow engine not configured", r.Error)
		require.Empty(t, r.RunID)
	}
	require.Equal(t, 2, e.reprocessBatch(e.adminA, ``).Matched, "an empty body is the default filter")
	require.Equal(t, []string{msgs[db.Hl7MessageStatusFailed].ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"status":"failed"}`)))
	require.Equal(t, []string{msgs[db.Hl7MessageStatusPending].ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"status":"pending"}`)))
	require.Equal(t, []string{msgs[db.Hl7MessageStatusUnmapped].ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"status":"unmapped"}`)),
		"unmapped messages are reprocessed once a mapping exists")
	require.Equal(t, []string{dead.ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"messageType":"ORU"}`)))
	require.Equal(t, []string{msgs[db.Hl7MessageStatusDeadLettered].ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"messageType":"ADT^A01"}`)))
	require.Equal(t, []string{dead.ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"limit":1}`)))
	require.Equal(t, []string{dead.ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"controlId":"R-dead-2"}`)))
	require.Zero(t, e.reprocessBatch(e.adminA, `{"connectorId":"`+uuid.NewString()+`"}`).Matched)
	from := dead.ReceivedAt.UTC().Format(time.RFC3339Nano)
	require.Equal(t, []string{dead.ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"receivedFrom":"`+from+`"}`)))
	require.Equal(t, []string{msgs[db.Hl7MessageStatusDeadLettered].ID.String()}, amsgResultIDs(e.reprocessBatch(e.adminA, `{"receivedTo":"`+from+`"}`)))

	// Refused filters.
	for _, body := range []string{`{"status":"processed"}`, `{"status":"processing"}`, `{"status":"bogus"}`, `{"connectorId":"nope"}`, `{"limit":1001}`, `{"limit":-1}`, `{"limit":4294967297}`} {
		requireAPIOutcome(t, e.post("/admin/messages/reprocess", e.adminA, body, amsgJSON), http.StatusBadRequest, "value")
	}
	for _, body := range []string{`not json`, `[1]`, `{"receivedFrom":"yesterday"}`, `{"limit":"ten"}`} {
		requireAPIOutcome(t, e.post("/admin/messages/reprocess", e.adminA, body, amsgJSON), http.StatusBadRequest, "invalid")
	}

	// Nothing moved: reprocess never writes the message itself.
	all := []*amsg{dead}
	for _, m := range msgs {
		all = append(all, m)
	}
	for _, m := range all {
		st, _ := e.storedStatus(m.ID)
		require.Equal(t, m.Status, st)
	}
}

// startTemporal runs an embedded Temporal server on databases of its own, stopped and
// dropped when the test ends.
func startTemporal(t *testing.T) *temporaldev.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	prefix := dbtest.UniqueName("gwtemporal")
	opts := temporaldev.Options{
		DatabaseURL:            dbtest.ClusterURL(),
		DatabaseName:           prefix + "_core",
		VisibilityDatabaseName: prefix + "_vis",
		FrontendAddr:           "127.0.0.1:0",
		DisableUI:              true,
		SearchAttributes:       workflows.SearchAttributes(),
		Logger:                 discardLogger(),
	}
	t.Cleanup(func() {
		dbtest.DropDatabase(t, opts.DatabaseName)
		dbtest.DropDatabase(t, opts.VisibilityDatabaseName)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	srv, err := temporaldev.Start(ctx, opts)
	require.NoError(t, err)
	t.Logf("temporal started in %s", time.Since(began))
	t.Cleanup(func() { _ = srv.Stop() }) // runs before the drops
	return srv
}

func requireNoRun(t *testing.T, c client.Client, workflowID string) {
	t.Helper()
	_, err := c.DescribeWorkflowExecution(context.Background(), workflowID, "")
	var nf *serviceerror.NotFound
	require.True(t, errors.As(err, &nf), "workflow %s must never have been started: %v", workflowID, err)
}

func TestReprocessWithTemporal(t *testing.T) {
	// Not parallel: the Temporal server holds dozens of PostgreSQL connections, so it runs
	// before the package's parallel tests open their own databases.
	ctx := context.Background()
	srv := startTemporal(t)
	c, err := srv.NewClient(ctx, client.Options{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	taskQueue := "interop-test-" + uuid.NewString() // no worker polls it: runs stay open
	const uiURL = "http://temporal.test"
	e := newAmsgEnv(t, func(d *Deps) {
		d.Temporal, d.TaskQueue = c, taskQueue
		d.TemporalUIURL, d.TemporalNamespace = uiURL, srv.Namespace()
	})
	connA, connBatch, connB := e.connector(apiTenantA, "a"), e.connector(apiTenantA, "batch"), e.connector(apiTenantB, "b")

	// A dead-lettered message that ran twice before: reprocessOf is the latest attempt's run.
	m1 := &amsg{Tenant: apiTenantA, Connector: connA.ID, Control: "T-1", Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered}
	e.insert(m1)
	for _, run := range []string{"run-first", "run-latest"} {
		_, err := e.q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{WorkflowID: m1.WorkflowID, RunID: run, MessageID: m1.ID})
		require.NoError(t, err)
	}
	processed := &amsg{Tenant: apiTenantA, Connector: connA.ID, Control: "T-2", Code: "ORU", Trigger: "R01", Status: db.Hl7MessageStatusProcessed}
	processing := &amsg{Tenant: apiTenantA, Connector: connA.ID, Control: "T-3", Code: "ADT", Trigger: "A04", Status: db.Hl7MessageStatusProcessing}
	e.insert(processed, processing)
	var batch []*amsg
	for i := range 3 {
		batch = append(batch, &amsg{Tenant: apiTenantA, Connector: connBatch.ID, Control: fmt.Sprintf("B-%d", i), Code: "ADT", Trigger: "A08", Status: db.Hl7MessageStatusDeadLettered})
	}
	batchProcessed := &amsg{Tenant: apiTenantA, Connector: connBatch.ID, Control: "B-processed", Code: "ADT", Trigger: "A08", Status: db.Hl7MessageStatusProcessed}
	e.insert(append(batch, batchProcessed)...)
	mb := &amsg{Tenant: apiTenantB, Connector: connB.ID, Control: "T-1", Code: "ADT", Trigger: "A01", Status: db.Hl7MessageStatusDeadLettered}
	e.insert(mb)

	var firstRun string
	t.Run("dead-lettered starts a new run", func(t *testing.T) {
		rec := e.reprocessOne(e.adminA, m1.ID, "")
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		var r amsgReprocessResult
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
		require.Equal(t, m1.ID.String(), r.MessageID)
		require.Equal(t, m1.WorkflowID, r.WorkflowID)
		require.NotEmpty(t, r.RunID)
		require.Equal(t, "run-latest", r.ReprocessOf)
		require.Equal(t, uiURL+"/namespaces/"+srv.Namespace()+"/workflows/"+url.PathEscape(m1.WorkflowID)+"/"+r.RunID, r.TemporalURL)
		require.Empty(t, r.Error)
		firstRun = r.RunID

		desc, err := c.DescribeWorkflowExecution(ctx, m1.WorkflowID, r.RunID)
		require.NoError(t, err)
		info := desc.GetWorkflowExecutionInfo()
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, info.GetStatus())
		require.Equal(t, workflows.InboundHL7Name, info.GetType().GetName())
		require.Equal(t, taskQueue, info.GetTaskQueue())
		dc := converter.GetDefaultDataConverter()
		var memo string
		require.NoError(t, dc.FromPayload(info.GetMemo().GetFields()["reprocessOf"], &memo))
		require.Equal(t, "run-latest", memo)
		sa := info.GetSearchAttributes().GetIndexedFields()
		for name, want := range map[string]string{
			"InteropTenant": apiTenantA, "InteropConnector": connA.ID.String(), "InteropMessageType": "ADT^A01", "InteropStatus": "processing",
		} {
			var got string
			require.NoError(t, dc.FromPayload(sa[name], &got), name)
			require.Equal(t, want, got, name)
		}
		hist := c.GetWorkflowHistory(ctx, m1.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		require.True(t, hist.HasNext())
		ev, err := hist.Next()
		require.NoError(t, err)
		started := ev.GetWorkflowExecutionStartedEventAttributes()
		require.NotNil(t, started)
		var in workflows.InboundHL7Input
		require.NoError(t, dc.FromPayloads(started.GetInput(), &in))
		require.Equal(t, workflows.InboundHL7Input{MessageID: m1.ID, TenantID: apiTenantA, ConnectorID: connA.ID, MessageType: "ADT^A01", ReprocessOf: "run-latest"}, in)
	})

	t.Run("second reprocess while the run is open is a conflict", func(t *testing.T) {
		require.NotEmpty(t, firstRun)
		for _, q := range []string{"", "?force=true"} {
			rec := e.reprocessOne(e.adminA, m1.ID, q)
			requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
			require.Contains(t, rec.Body.String(), "in progress")
		}
		// By filter too: reported per message, nothing started.
		b := e.reprocessBatch(e.adminA, `{"controlId":"T-1"}`)
		require.Equal(t, 1, b.Matched)
		require.Zero(t, b.Started)
		require.Equal(t, m1.ID.String(), b.Results[0].MessageID)
		require.Equal(t, "a run of this message is in progress", b.Results[0].Error)
		require.Empty(t, b.Results[0].RunID)
		// The open run is still the one and only current run.
		desc, err := c.DescribeWorkflowExecution(ctx, m1.WorkflowID, "")
		require.NoError(t, err)
		require.Equal(t, firstRun, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	})

	t.Run("once the run is closed a new run may start", func(t *testing.T) {
		require.NotEmpty(t, firstRun)
		require.NoError(t, c.TerminateWorkflow(ctx, m1.WorkflowID, firstRun, "test"))
		rec := e.reprocessOne(e.adminA, m1.ID, "")
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		var r amsgReprocessResult
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
		require.NotEmpty(t, r.RunID)
		require.NotEqual(t, firstRun, r.RunID)
		require.Equal(t, "run-latest", r.ReprocessOf, "no attempt was recorded since (no worker)")
		desc, err := c.DescribeWorkflowExecution(ctx, m1.WorkflowID, firstRun)
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, desc.GetWorkflowExecutionInfo().GetStatus())
	})

	t.Run("status gates", func(t *testing.T) {
		requireAPIOutcome(t, e.reprocessOne(e.adminA, processed.ID, ""), http.StatusConflict, "conflict")
		requireAPIOutcome(t, e.reprocessOne(e.adminA, processing.ID, ""), http.StatusConflict, "conflict")
		requireAPIOutcome(t, e.reprocessOne(e.adminA, processing.ID, "?force=true"), http.StatusConflict, "conflict")
		requireNoRun(t, c, processed.WorkflowID)
		requireNoRun(t, c, processing.WorkflowID)
		// A processed message with force: a new run; no earlier attempt, so no reprocessOf.
		rec := e.reprocessOne(e.adminA, processed.ID, "?force=true")
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		var r amsgReprocessResult
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
		require.NotEmpty(t, r.RunID)
		require.Empty(t, r.ReprocessOf)
		require.NotContains(t, rec.Body.String(), "reprocessOf")
	})

	t.Run("tenant B never reaches tenant A's messages", func(t *testing.T) {
		missing := e.reprocessOne(e.adminB, uuid.New(), "")
		requireAPIOutcome(t, missing, http.StatusNotFound, "not-found")
		for _, m := range append([]*amsg{m1, processed, batchProcessed}, batch...) {
			requireSameNotFound(t, missing, e.reprocessOne(e.adminB, m.ID, ""))
			requireSameNotFound(t, missing, e.reprocessOne(e.adminB, m.ID, "?force=true"))
		}
		require.Zero(t, e.reprocessBatch(e.adminB, `{"connectorId":"`+connBatch.ID.String()+`"}`).Matched)
		// B's default filter starts B's own dead-lettered message, and only it.
		b := e.reprocessBatch(e.adminB, `{}`)
		require.Equal(t, 1, b.Matched)
		require.Equal(t, 1, b.Started)
		require.Equal(t, mb.ID.String(), b.Results[0].MessageID)
		require.Equal(t, mb.WorkflowID, b.Results[0].WorkflowID)
		for _, m := range append([]*amsg{batchProcessed, processing}, batch...) {
			requireNoRun(t, c, m.WorkflowID)
		}
	})

	t.Run("by filter: three dead-lettered, one processed", func(t *testing.T) {
		b := e.reprocessBatch(e.adminA, `{"connectorId":"`+connBatch.ID.String()+`"}`)
		t.Logf("matched %d, started %d", b.Matched, b.Started)
		require.Equal(t, 3, b.Matched)
		require.Equal(t, 3, b.Started)
		require.Equal(t, amsgExpect(batch, nil), amsgResultIDs(b))
		byID := map[string]*amsg{}
		for _, m := range batch {
			byID[m.ID.String()] = m
		}
		for _, r := range b.Results {
			m := byID[r.MessageID]
			require.NotNil(t, m)
			require.Empty(t, r.Error)
			require.Equal(t, m.WorkflowID, r.WorkflowID)
			require.NotEmpty(t, r.RunID)
			require.Empty(t, r.ReprocessOf)
			require.Equal(t, uiURL+"/namespaces/"+srv.Namespace()+"/workflows/"+url.PathEscape(m.WorkflowID)+"/"+r.RunID, r.TemporalURL)
			desc, err := c.DescribeWorkflowExecution(ctx, m.WorkflowID, r.RunID)
			require.NoError(t, err)
			require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
		}
		requireNoRun(t, c, batchProcessed.WorkflowID)

		// A second click starts nothing more: every run is still open.
		again := e.reprocessBatch(e.adminA, `{"connectorId":"`+connBatch.ID.String()+`"}`)
		require.Equal(t, 3, again.Matched)
		require.Zero(t, again.Started)
		for _, r := range again.Results {
			require.Equal(t, "a run of this message is in progress", r.Error)
		}
		// Tenant B's run was not touched by any of A's requests, nor A's by B's.
		desc, err := c.DescribeWorkflowExecution(ctx, mb.WorkflowID, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	})
}
