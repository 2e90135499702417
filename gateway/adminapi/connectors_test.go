package adminapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/crypto"
)

// connSecret is the password the tests give connectors; it must never come back out.
const connSecret = "s3cr3t-P4ssw0rd-never-shown"

// connLogs collects everything the gateway logs, to prove secrets are not among it.
type connLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *connLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *connLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// connAPI is the gateway with a sealer, tokens of two tenants, and a record of every response
// body it gave.
type connAPI struct {
	*apiServer
	sealer     *crypto.Sealer
	logs       *connLogs
	tokA, tokB string

	mu     sync.Mutex
	bodies []string
}

func newConnAPI(t *testing.T, mods ...func(*Deps)) *connAPI {
	t.Helper()
	h, err := crypto.NewKeyset()
	require.NoError(t, err)
	sealer, err := crypto.NewSealer(h)
	require.NoError(t, err)
	logs := &connLogs{}
	s := newAPIServer(t, func(d *Deps) {
		d.Sealer = sealer
		d.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		for _, mod := range mods {
			mod(d)
		}
	})
	a := &connAPI{apiServer: s, sealer: sealer, logs: logs,
		tokA: s.token(apiTenantA, auth.AdminScope), tokB: s.token(apiTenantB, auth.AdminScope)}
	t.Cleanup(func() {
		// Whatever a test did, no response and no log line carried the secret.
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, b := range a.bodies {
			require.NotContains(t, b, connSecret, "a response disclosed credentials")
		}
		require.NotContains(t, logs.String(), connSecret, "the log disclosed credentials")
	})
	return a
}

func (a *connAPI) call(method, path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	rec := a.do(apiRequest{method: method, path: path, token: token, body: r, header: header})
	a.mu.Lock()
	a.bodies = append(a.bodies, rec.Body.String())
	a.mu.Unlock()
	return rec
}

func connPath(id uuid.UUID, action string) string {
	p := "/admin/connectors/" + id.String()
	if action != "" {
		p += "/" + action
	}
	return p
}

func decodeConnector(t *testing.T, rec *httptest.ResponseRecorder) connectorView {
	t.Helper()
	var v connectorView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), "body: %s", rec.Body.String())
	require.Equal(t, connectorETag(v.Version), rec.Header().Get("ETag"))
	return v
}

// create POSTs body as tenant token and requires 201.
func (a *connAPI) create(token, body string) connectorView {
	a.t.Helper()
	rec := a.call(http.MethodPost, "/admin/connectors", token, body, nil)
	require.Equal(a.t, http.StatusCreated, rec.Code, rec.Body.String())
	v := decodeConnector(a.t, rec)
	require.Equal(a.t, apiBaseURL+connPath(v.ID, ""), rec.Header().Get("Location"))
	return v
}

// move POSTs a transition and requires status.
func (a *connAPI) move(token string, id uuid.UUID, action string, status int) *httptest.ResponseRecorder {
	a.t.Helper()
	rec := a.call(http.MethodPost, connPath(id, action), token, "", nil)
	require.Equal(a.t, status, rec.Code, "%s: %s", action, rec.Body.String())
	return rec
}

func mllpInbound(name, facility string, port int32) string {
	return fmt.Sprintf(`{"name":%q,"facilityId":%q,"protocol":"mllp","direction":"inbound","listenHost":"127.0.0.1","listenPort":%d}`,
		name, facility, port)
}

// connEvents counts the domain events recorded for a connector, by type.
func (a *connAPI) connEvents(id uuid.UUID) map[string]int {
	a.t.Helper()
	rows, err := a.pool.Query(context.Background(),
		"SELECT event_type, payload FROM domain_events WHERE aggregate_id = $1 ORDER BY seq", id.String())
	require.NoError(a.t, err)
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var typ string
		var payload map[string]any
		require.NoError(a.t, rows.Scan(&typ, &payload))
		require.Equal(a.t, id.String(), payload["connectorId"])
		got[typ]++
	}
	require.NoError(a.t, rows.Err())
	return got
}

func TestConnectorLifecycle(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	l := newListeners(t, a.pool)
	ctx := context.Background()
	port := freePort(t)

	// Create: a draft, credentials sealed, shown only as configured.
	c := a.create(a.tokA, fmt.Sprintf(`{"name":"lab-in","facilityId":"fac-1","protocol":"mllp","direction":"inbound",
		"listenHost":"127.0.0.1","listenPort":%d,
		"settings":{"maxMessageSize":1048576,"readTimeoutSeconds":30,"retry":{"maxAttempts":5,"initialIntervalSeconds":1,"maxIntervalSeconds":60},
		            "duplicatePolicy":"reject","charset":"8859/1"},
		"auth":{"username":"lab","password":%q}}`, port, connSecret))
	require.Equal(t, "draft", c.Status)
	require.Equal(t, "lab-in", c.Name)
	require.Equal(t, "fac-1", c.FacilityID)
	require.Equal(t, port, *c.ListenPort)
	require.Equal(t, int64(1), c.Version)
	require.Equal(t, connectorAuthView{Configured: true, KeyID: a.sealer.KeyID()}, c.Auth)
	require.JSONEq(t, `{"maxMessageSize":1048576,"readTimeoutSeconds":30,"retry":{"maxAttempts":5,"initialIntervalSeconds":1,"maxIntervalSeconds":60},"duplicatePolicy":"reject","charset":"8859/1"}`,
		string(c.Settings))

	// Read and list.
	rec := a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, c, decodeConnector(t, rec))
	rec = a.call(http.MethodGet, "/admin/connectors", a.tokA, "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var list struct{ Connectors []connectorView }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Equal(t, []connectorView{c}, list.Connectors)

	// Update on the version read: a new version; credentials untouched when auth is not given.
	ct0 := a.rawAuth(c.ID)
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, fmt.Sprintf(
		`{"name":"lab-in-2","facilityId":"fac-1","protocol":"mllp","direction":"inbound","listenPort":%d,"settings":{"maxConnections":4}}`, port),
		map[string]string{"If-Match": connectorETag(c.Version)})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	c = decodeConnector(t, rec)
	require.Equal(t, "lab-in-2", c.Name)
	require.Nil(t, c.ListenHost, "PUT replaces: an absent listenHost is cleared")
	require.Equal(t, int64(2), c.Version)
	require.JSONEq(t, `{"maxConnections":4}`, string(c.Settings))
	require.True(t, c.Auth.Configured)
	require.Equal(t, ct0, a.rawAuth(c.ID))

	// Activate: the listener opens on the next reconciliation, and takes messages.
	require.NoError(t, l.Reconcile(ctx))
	require.Empty(t, l.Addr(c.ID), "a draft has no listener")
	c = decodeConnector(t, a.move(a.tokA, c.ID, "activate", http.StatusOK))
	require.Equal(t, "active", c.Status)
	require.Equal(t, map[string]int{"ConnectorActivated": 1}, a.connEvents(c.ID))
	require.NoError(t, l.Reconcile(ctx))
	require.Equal(t, hostPort(port), l.Addr(c.ID))
	requireAccepts(t, l.Addr(c.ID), "LIFE-1")
	requireAccepts(t, l.Addr(c.ID), "LIFE-2")

	// Deactivate: the listener closes; the messages stay.
	c = decodeConnector(t, a.move(a.tokA, c.ID, "deactivate", http.StatusOK))
	require.Equal(t, "inactive", c.Status)
	require.Equal(t, map[string]int{"ConnectorActivated": 1, "ConnectorDeactivated": 1}, a.connEvents(c.ID))
	require.NoError(t, l.Reconcile(ctx))
	require.Empty(t, l.Addr(c.ID))
	requireRefused(t, hostPort(port))
	require.Equal(t, 2, a.messageCount(c.ID), "deactivation keeps every message")

	// Inactive → active again, and back.
	a.move(a.tokA, c.ID, "activate", http.StatusOK)
	require.NoError(t, l.Reconcile(ctx))
	requireAccepts(t, l.Addr(c.ID), "LIFE-3")
	a.move(a.tokA, c.ID, "deactivate", http.StatusOK)
	require.NoError(t, l.Reconcile(ctx))
	requireRefused(t, hostPort(port))

	// A connector with messages cannot be deleted, even when not a draft any more: it retires.
	requireAPIOutcome(t, a.call(http.MethodDelete, connPath(c.ID, ""), a.tokA, "", nil), http.StatusConflict, "conflict")
	c = decodeConnector(t, a.move(a.tokA, c.ID, "retire", http.StatusOK))
	require.Equal(t, "retired", c.Status)
	require.Equal(t, map[string]int{"ConnectorActivated": 2, "ConnectorDeactivated": 2}, a.connEvents(c.ID), "retiring raises no event")
	require.Equal(t, 3, a.messageCount(c.ID))

	// Retired is final: no transition, no update.
	out := requireAPIOutcome(t, a.move(a.tokA, c.ID, "activate", http.StatusConflict), http.StatusConflict, "conflict")
	require.Contains(t, outcomeText(out), "retired → active is not allowed")
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, mllpInbound("x", "fac-1", port), nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), "retired")

	// The draft → retired shortcut, and deleting a draft that never received anything.
	d := a.create(a.tokA, mllpInbound("spare", "fac-9", freePort(t)))
	require.Equal(t, "retired", decodeConnector(t, a.move(a.tokA, d.ID, "retire", http.StatusOK)).Status)
	e := a.create(a.tokA, `{"name":"scratch","facilityId":"fac-8","protocol":"fhir-rest","direction":"outbound"}`)
	require.Equal(t, http.StatusNoContent, a.call(http.MethodDelete, connPath(e.ID, ""), a.tokA, "", nil).Code)
	requireAPIOutcome(t, a.call(http.MethodGet, connPath(e.ID, ""), a.tokA, "", nil), http.StatusNotFound, "not-found")
	require.Empty(t, a.connEvents(d.ID))
	require.Empty(t, a.connEvents(e.ID))
}

func (a *connAPI) messageCount(id uuid.UUID) int {
	a.t.Helper()
	var n int
	require.NoError(a.t, a.pool.QueryRow(context.Background(), "SELECT count(*) FROM hl7_messages WHERE connector_id = $1", id).Scan(&n))
	return n
}

// rawAuth reads the sealed credentials straight from the table.
func (a *connAPI) rawAuth(id uuid.UUID) []byte {
	a.t.Helper()
	var ct []byte
	require.NoError(a.t, a.pool.QueryRow(context.Background(), "SELECT auth_ciphertext FROM interop_connectors WHERE id = $1", id).Scan(&ct))
	return ct
}

// Every move the state machine does not have is a 409 that names it, and records nothing.
func TestConnectorInvalidTransitions(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)

	// One connector in each state (its own facility, so that activations do not collide).
	at := func(status string, n int) connectorView {
		c := a.create(a.tokA, mllpInbound("c-"+status, fmt.Sprintf("fac-%d", n), freePort(t)))
		switch status {
		case "active":
			a.move(a.tokA, c.ID, "activate", http.StatusOK)
		case "inactive":
			a.move(a.tokA, c.ID, "activate", http.StatusOK)
			a.move(a.tokA, c.ID, "deactivate", http.StatusOK)
		case "retired":
			a.move(a.tokA, c.ID, "retire", http.StatusOK)
		}
		return c
	}
	conns := map[string]connectorView{"draft": at("draft", 1), "active": at("active", 2), "inactive": at("inactive", 3), "retired": at("retired", 4)}

	for _, tc := range []struct{ from, action, want string }{
		{"draft", "deactivate", "draft → inactive is not allowed"},
		{"active", "activate", "active → active is not allowed"},
		{"active", "retire", "active → retired is not allowed: retire applies to draft or inactive connectors; deactivate it first"},
		{"inactive", "deactivate", "inactive → inactive is not allowed"},
		{"retired", "activate", "retired → active is not allowed"},
		{"retired", "deactivate", "retired → inactive is not allowed"},
		{"retired", "retire", "retired → retired is not allowed"},
	} {
		c := conns[tc.from]
		before := a.connEvents(c.ID)
		beforeRow := decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
		rec := a.call(http.MethodPost, connPath(c.ID, tc.action), a.tokA, "", nil)
		out := requireAPIOutcome(t, rec, http.StatusConflict, "conflict")
		require.Contains(t, outcomeText(out), tc.want, "%s from %s", tc.action, tc.from)
		require.Equal(t, before, a.connEvents(c.ID), "a refused transition records no event (%s from %s)", tc.action, tc.from)
		after := decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
		require.Equal(t, beforeRow, after, "a refused transition changes nothing")
	}

	// An inbound mllp connector without a port cannot be activated.
	np := a.create(a.tokA, `{"name":"no-port","facilityId":"fac-5","protocol":"mllp","direction":"inbound"}`)
	out := requireAPIOutcome(t, a.move(a.tokA, np.ID, "activate", http.StatusConflict), http.StatusConflict, "conflict")
	require.Contains(t, outcomeText(out), "needs listenPort")
	require.Empty(t, a.connEvents(np.ID))

	// Deleting anything but a draft is refused.
	for _, status := range []string{"active", "inactive", "retired"} {
		out := requireAPIOutcome(t, a.call(http.MethodDelete, connPath(conns[status].ID, ""), a.tokA, "", nil), http.StatusConflict, "conflict")
		require.Contains(t, outcomeText(out), "only a draft connector can be deleted")
	}
}

// The database decides the invariants; the API says what is in the way.
func TestConnectorActivationInvariants(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	port := freePort(t)

	first := a.create(a.tokA, mllpInbound("first", "fac-1", port))
	a.move(a.tokA, first.ID, "activate", http.StatusOK)

	// One active connector per (tenant, facility, protocol, direction).
	second := a.create(a.tokA, mllpInbound("second", "fac-1", freePort(t)))
	out := requireAPIOutcome(t, a.move(a.tokA, second.ID, "activate", http.StatusConflict), http.StatusConflict, "conflict")
	require.Contains(t, outcomeText(out), fmt.Sprintf(`connector "first" (%s) is already active for facility "fac-1", protocol mllp, direction inbound; deactivate it first`, first.ID))
	require.Empty(t, a.connEvents(second.ID))
	require.Equal(t, "draft", decodeConnector(t, a.call(http.MethodGet, connPath(second.ID, ""), a.tokA, "", nil)).Status)

	// Another direction or facility is another slot.
	out2 := a.create(a.tokA, `{"name":"out","facilityId":"fac-1","protocol":"mllp","direction":"outbound"}`)
	a.move(a.tokA, out2.ID, "activate", http.StatusOK)

	// One active listener per port: within the tenant, the holder is named...
	samePort := a.create(a.tokA, mllpInbound("same-port", "fac-2", port))
	out = requireAPIOutcome(t, a.move(a.tokA, samePort.ID, "activate", http.StatusConflict), http.StatusConflict, "conflict")
	require.Contains(t, outcomeText(out), fmt.Sprintf(`port %d is in use by the active connector "first" (%s)`, port, first.ID))
	require.Empty(t, a.connEvents(samePort.ID))

	// ...across tenants it is not.
	other := a.create(a.tokB, mllpInbound("theirs", "fac-1", port))
	out = requireAPIOutcome(t, a.move(a.tokB, other.ID, "activate", http.StatusConflict), http.StatusConflict, "conflict")
	// A neutral answer: nothing says that the port is held, let alone by a connector of
	// another tenant.
	require.Equal(t, fmt.Sprintf("port %d is not available; choose another port", port), outcomeText(out))
	require.NotContains(t, outcomeText(out), "first")
	require.NotContains(t, outcomeText(out), first.ID.String())
	require.NotContains(t, outcomeText(out), "connector")
	// The same through PUT of tenant B's active connector.
	theirs := a.create(a.tokB, mllpInbound("theirs-2", "fac-2", freePort(t)))
	a.move(a.tokB, theirs.ID, "activate", http.StatusOK)
	rec0 := a.call(http.MethodPut, connPath(theirs.ID, ""), a.tokB, mllpInbound("theirs-2", "fac-2", port), nil)
	require.Equal(t, fmt.Sprintf("port %d is not available; choose another port", port),
		outcomeText(requireAPIOutcome(t, rec0, http.StatusConflict, "conflict")))

	// Moving an active connector onto a taken port through PUT is refused the same way.
	third := a.create(a.tokA, mllpInbound("third", "fac-3", freePort(t)))
	a.move(a.tokA, third.ID, "activate", http.StatusOK)
	rec := a.call(http.MethodPut, connPath(third.ID, ""), a.tokA, mllpInbound("third", "fac-3", port), nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), fmt.Sprintf("port %d is in use", port))
	// And moving it into the slot of an active one.
	rec = a.call(http.MethodPut, connPath(third.ID, ""), a.tokA, mllpInbound("third", "fac-1", freePort(t)), nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), `connector "first"`)

	// Deactivating the holder frees slot and port.
	a.move(a.tokA, first.ID, "deactivate", http.StatusOK)
	a.move(a.tokA, second.ID, "activate", http.StatusOK)
	a.move(a.tokB, other.ID, "activate", http.StatusOK)

	// Names are unique per tenant (not across tenants).
	rec = a.call(http.MethodPost, "/admin/connectors", a.tokA, mllpInbound("first", "fac-7", freePort(t)), nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "duplicate")), `a connector named "first" already exists`)
	a.create(a.tokB, mllpInbound("first", "fac-7", freePort(t)))

	// A listener keeps its port once it has left draft.
	rec = a.call(http.MethodPut, connPath(first.ID, ""), a.tokA, `{"name":"first","facilityId":"fac-1","protocol":"mllp","direction":"inbound"}`, nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), "keeps its listenPort once it has left draft (it is inactive)")

	// Protocol and direction are fixed after draft.
	rec = a.call(http.MethodPut, connPath(second.ID, ""), a.tokA, `{"name":"second","facilityId":"fac-1","protocol":"sftp","direction":"inbound"}`, nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), "protocol and direction are fixed")
}

// Tenant B sees and changes nothing of tenant A's: every answer is the 404 of a missing
// connector, byte for byte.
func TestConnectorTenantIsolation(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	c := a.create(a.tokA, fmt.Sprintf(`{"name":"a-only","facilityId":"fac-1","protocol":"mllp","direction":"inbound","listenPort":%d,
		"auth":{"password":%q}}`, freePort(t), connSecret))
	missing := uuid.New()

	body := mllpInbound("stolen", "fac-1", freePort(t))
	for _, r := range []struct{ method, action, body string }{
		{http.MethodGet, "", ""},
		{http.MethodPut, "", body},
		{http.MethodDelete, "", ""},
		{http.MethodPost, "activate", ""},
		{http.MethodPost, "deactivate", ""},
		{http.MethodPost, "retire", ""},
	} {
		theirs := a.call(r.method, connPath(c.ID, r.action), a.tokB, r.body, nil)
		none := a.call(r.method, connPath(missing, r.action), a.tokB, r.body, nil)
		requireAPIOutcome(t, theirs, http.StatusNotFound, "not-found")
		require.Equal(t, none.Code, theirs.Code, "%s %s", r.method, r.action)
		require.Equal(t, none.Body.String(), theirs.Body.String(), "%s %s: same body as a missing connector", r.method, r.action)
		bad := "/admin/connectors/not-a-uuid"
		if r.action != "" {
			bad += "/" + r.action
		}
		requireAPIOutcome(t, a.call(r.method, bad, a.tokB, r.body, nil), http.StatusNotFound, "not-found")
	}
	rec := a.call(http.MethodGet, "/admin/connectors", a.tokB, "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"connectors":[]}`, rec.Body.String())

	after := decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
	require.Equal(t, c, after, "tenant A's connector is untouched")
	require.Empty(t, a.connEvents(c.ID))

	// The admin scope is required.
	noAdmin := a.token(apiTenantA, apiRWScope)
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/connectors", noAdmin, "", nil), http.StatusForbidden, "forbidden")
	requireAPIOutcome(t, a.call(http.MethodPost, connPath(c.ID, "activate"), noAdmin, "", nil), http.StatusForbidden, "forbidden")
}

// Credentials are sealed before the insert, bound to tenant and connector, and never shown.
func TestConnectorAuthIsSealed(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	creds := fmt.Sprintf(`{"username":"poller","password":%q,"token":"tok-123"}`, connSecret)
	c := a.create(a.tokA, fmt.Sprintf(`{"name":"poll","facilityId":"fac-1","protocol":"api-polling","direction":"inbound","auth":%s}`, creds))
	require.Equal(t, connectorAuthView{Configured: true, KeyID: a.sealer.KeyID()}, c.Auth)

	var ct []byte
	var keyID *string
	require.NoError(t, a.pool.QueryRow(context.Background(),
		"SELECT auth_ciphertext, auth_key_id FROM interop_connectors WHERE id = $1", c.ID).Scan(&ct, &keyID))
	require.NotEmpty(t, ct)
	require.NotNil(t, keyID)
	require.Equal(t, a.sealer.KeyID(), *keyID)
	for _, plain := range []string{connSecret, "poller", "tok-123"} {
		require.False(t, bytes.Contains(ct, []byte(plain)), "the column holds %q in clear", plain)
	}
	// The whole row, as text, does not hold it either (settings, names…).
	var rowText string
	require.NoError(t, a.pool.QueryRow(context.Background(), "SELECT t::text FROM interop_connectors t WHERE id = $1", c.ID).Scan(&rowText))
	require.NotContains(t, rowText, connSecret)

	// It opens with its own tenant and id only.
	plain, err := a.sealer.Open(ct, crypto.ConnectorAuthAD(apiTenantA, c.ID.String()))
	require.NoError(t, err)
	require.JSONEq(t, creds, string(plain))
	_, err = a.sealer.Open(ct, crypto.ConnectorAuthAD(apiTenantB, c.ID.String()))
	require.ErrorIs(t, err, crypto.ErrOpen)
	other := a.create(a.tokA, `{"name":"other","facilityId":"fac-2","protocol":"sftp","direction":"outbound"}`)
	_, err = a.sealer.Open(ct, crypto.ConnectorAuthAD(apiTenantA, other.ID.String()))
	require.ErrorIs(t, err, crypto.ErrOpen, "a ciphertext moved to another connector does not open")

	put := func(auth string) connectorView {
		t.Helper()
		body := `{"name":"poll","facilityId":"fac-1","protocol":"api-polling","direction":"inbound"` + auth + `}`
		rec := a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, body, nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		return decodeConnector(t, rec)
	}
	// No auth: kept. The GET view of auth: kept (a read–modify–write does not clobber it).
	put(`,"settings":{"readTimeoutSeconds":5}`)
	require.Equal(t, ct, a.rawAuth(c.ID))
	got := put(`,"auth":{"configured":true,"keyId":"` + a.sealer.KeyID() + `"}`)
	require.True(t, got.Auth.Configured)
	require.Equal(t, ct, a.rawAuth(c.ID))

	// New credentials: resealed.
	got = put(`,"auth":{"password":"` + connSecret + `-2"}`)
	require.True(t, got.Auth.Configured)
	ct2 := a.rawAuth(c.ID)
	require.NotEqual(t, ct, ct2)
	plain, err = a.sealer.Open(ct2, crypto.ConnectorAuthAD(apiTenantA, c.ID.String()))
	require.NoError(t, err)
	require.JSONEq(t, `{"password":"`+connSecret+`-2"}`, string(plain))

	// null: removed.
	got = put(`,"auth":null`)
	require.Equal(t, connectorAuthView{}, got.Auth)
	require.Nil(t, a.rawAuth(c.ID))
	var nullKey *string
	require.NoError(t, a.pool.QueryRow(context.Background(), "SELECT auth_key_id FROM interop_connectors WHERE id = $1", c.ID).Scan(&nullKey))
	require.Nil(t, nullKey)

	// The view of a GET is not credentials: refused on create.
	rec := a.call(http.MethodPost, "/admin/connectors", a.tokA,
		`{"name":"echo","facilityId":"f","protocol":"sftp","direction":"outbound","auth":{"configured":true}}`, nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "value")

	// Neither the ciphertext leaves the service: not in any body, not in the log.
	for _, enc := range []string{base64.StdEncoding.EncodeToString(ct), hex.EncodeToString(ct), base64.StdEncoding.EncodeToString(ct2)} {
		a.mu.Lock()
		for _, b := range a.bodies {
			require.NotContains(t, b, enc)
		}
		a.mu.Unlock()
		require.NotContains(t, a.logs.String(), enc)
	}

	// A gateway without a keyset refuses credentials rather than storing them in clear.
	bare := newAPIServer(t, nil)
	rec = bare.do(apiRequest{method: http.MethodPost, path: "/admin/connectors", token: bare.token(apiTenantA, auth.AdminScope),
		body: strings.NewReader(`{"name":"x","facilityId":"f","protocol":"sftp","direction":"outbound","auth":{"password":"` + connSecret + `"}}`)})
	requireAPIOutcome(t, rec, http.StatusServiceUnavailable, "transient")
	require.NotContains(t, rec.Body.String(), connSecret)
	var n int
	require.NoError(t, bare.pool.QueryRow(context.Background(), "SELECT count(*) FROM interop_connectors").Scan(&n))
	require.Zero(t, n)
}

func TestConnectorIfMatch(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	c := a.create(a.tokA, mllpInbound("m", "fac-1", freePort(t)))
	body := mllpInbound("m2", "fac-1", *c.ListenPort)

	// A stale version: 412, nothing written.
	stale := map[string]string{"If-Match": connectorETag(c.Version + 7)}
	rec := a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, body, stale)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusPreconditionFailed, "conflict")), connectorETag(c.Version))
	requireAPIOutcome(t, a.call(http.MethodPost, connPath(c.ID, "activate"), a.tokA, "", stale), http.StatusPreconditionFailed, "conflict")
	requireAPIOutcome(t, a.call(http.MethodDelete, connPath(c.ID, ""), a.tokA, "", stale), http.StatusPreconditionFailed, "conflict")
	require.Empty(t, a.connEvents(c.ID))
	require.Equal(t, c, decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil)))

	// Two writers on one version: the second loses.
	v1 := map[string]string{"If-Match": connectorETag(c.Version)}
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, body, v1)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	c2 := decodeConnector(t, rec)
	require.Equal(t, c.Version+1, c2.Version)
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, mllpInbound("m3", "fac-1", *c.ListenPort), v1)
	requireAPIOutcome(t, rec, http.StatusPreconditionFailed, "conflict")

	// The strong form, lists and * match too.
	for _, form := range []string{`"%d"`, `W/"999", W/"%d"`, `*`} {
		cur := decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
		tag := form
		if strings.Contains(form, "%d") {
			tag = fmt.Sprintf(form, cur.Version)
		}
		rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, mllpInbound(fmt.Sprintf("m-%d", cur.Version), "fac-1", *c.ListenPort),
			map[string]string{"If-Match": tag})
		require.Equal(t, http.StatusOK, rec.Code, "If-Match %s: %s", tag, rec.Body.String())
		require.Equal(t, cur.Version+1, decodeConnector(t, rec).Version)
	}

	// A transition on the current version.
	cur := decodeConnector(t, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil))
	rec = a.call(http.MethodPost, connPath(c.ID, "activate"), a.tokA, "", map[string]string{"If-Match": connectorETag(cur.Version)})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, cur.Version+1, decodeConnector(t, rec).Version)

	// A PUT that changes nothing writes nothing: same version.
	cur = decodeConnector(t, rec)
	same := fmt.Sprintf(`{"name":%q,"facilityId":"fac-1","protocol":"mllp","direction":"inbound","listenHost":"127.0.0.1","listenPort":%d,
		"status":"active","version":%d,"auth":{"configured":false}}`, cur.Name, *cur.ListenPort, cur.Version)
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, same, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, cur.Version, decodeConnector(t, rec).Version)
}

func TestConnectorValidation(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	valid := map[string]any{"name": "v", "facilityId": "f", "protocol": "mllp", "direction": "inbound", "listenPort": 2600}
	with := func(changes map[string]any) string {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	for name, tc := range map[string]struct {
		body string
		want []string
	}{
		"not json":              {`{"name":`, []string{"JSON object"}},
		"array":                 {`[1]`, []string{"JSON object"}},
		"missing fields":        {`{}`, []string{"name is required", "facilityId is required", "protocol is required", "direction is required"}},
		"bad protocol":          {with(map[string]any{"protocol": "ftp"}), []string{`protocol "ftp" is not one of mllp, fhir-rest, sftp, api-polling`}},
		"bad direction":         {with(map[string]any{"direction": "sideways"}), []string{`direction "sideways" is not one of inbound, outbound, bidirectional`}},
		"port zero":             {with(map[string]any{"listenPort": 0}), []string{"listenPort must be an integer from 1 to 65535"}},
		"port too big":          {with(map[string]any{"listenPort": 70000}), []string{"listenPort must be an integer from 1 to 65535"}},
		"port fraction":         {with(map[string]any{"listenPort": 25.5}), []string{"listenPort must be an integer"}},
		"port string":           {with(map[string]any{"listenPort": "2575"}), []string{"listenPort must be an integer"}},
		"bad host":              {with(map[string]any{"listenHost": "a b"}), []string{`listenHost "a b"`}},
		"port on outbound":      {with(map[string]any{"direction": "outbound"}), []string{"apply only to inbound or bidirectional mllp"}},
		"port on fhir-rest":     {with(map[string]any{"protocol": "fhir-rest"}), []string{"apply only to inbound or bidirectional mllp"}},
		"blank name":            {with(map[string]any{"name": "  "}), []string{"name must not be empty"}},
		"unknown field":         {with(map[string]any{"colour": "red", "port": 1}), []string{`unknown fields "colour", "port"`}},
		"unknown settings keys": {with(map[string]any{"settings": map[string]any{"maxMessageSize": 10, "bogus": 1, "retry": map[string]any{"maxAttempts": 2, "jitter": true}}}), []string{`settings: unknown keys "bogus", "retry.jitter"`}},
		"settings not object":   {with(map[string]any{"settings": []int{1}}), []string{"settings must be a JSON object"}},
		"settings ranges":       {with(map[string]any{"settings": map[string]any{"maxMessageSize": -1, "readTimeoutSeconds": 1.5, "maxConnections": "many"}}), []string{"settings.maxMessageSize must be an integer", "settings.readTimeoutSeconds must be an integer", "settings.maxConnections must be an integer"}},
		"retry intervals":       {with(map[string]any{"settings": map[string]any{"retry": map[string]any{"initialIntervalSeconds": 60, "maxIntervalSeconds": 5}}}), []string{"maxIntervalSeconds must not be less than initialIntervalSeconds"}},
		"duplicate policy":      {with(map[string]any{"settings": map[string]any{"duplicatePolicy": "merge"}}), []string{`settings.duplicatePolicy "merge" is not one of reject, accept`}},
		"charset":               {with(map[string]any{"settings": map[string]any{"charset": "klingon"}}), []string{`settings.charset "klingon" is not a known character set`}},
		"charset unsupported":   {with(map[string]any{"settings": map[string]any{"charset": "UNICODE UTF-16"}}), []string{`settings.charset "UNICODE UTF-16" is a known character set that cannot be decoded`}},
		"time zone unknown":     {with(map[string]any{"settings": map[string]any{"timeZone": "Mars/Olympus"}}), []string{`settings.timeZone "Mars/Olympus" is not an IANA time zone name`}},
		"time zone of server":   {with(map[string]any{"settings": map[string]any{"timeZone": "Local"}}), []string{`settings.timeZone "Local" is not an IANA time zone name`}},
		"time zone empty":       {with(map[string]any{"settings": map[string]any{"timeZone": ""}}), []string{`settings.timeZone "" is not an IANA time zone name`}},
		"time zone offset":      {with(map[string]any{"settings": map[string]any{"timeZone": "+0430"}}), []string{`settings.timeZone "+0430" is not an IANA time zone name`}},
		"time zone not string":  {with(map[string]any{"settings": map[string]any{"timeZone": 4.5}}), []string{"settings.timeZone must be a string"}},
		"auth not object":       {with(map[string]any{"auth": "password"}), []string{"auth must be a JSON object"}},
		"auth empty":            {with(map[string]any{"auth": map[string]any{}}), []string{"auth must not be an empty object"}},
	} {
		rec := a.call(http.MethodPost, "/admin/connectors", a.tokA, tc.body, nil)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%s: %s", name, rec.Body.String())
		text := outcomeText(decodeBody(t, rec))
		for _, w := range tc.want {
			require.Contains(t, text, w, name)
		}
	}
	// The secret of a refused request is not echoed either.
	rec := a.call(http.MethodPost, "/admin/connectors", a.tokA, with(map[string]any{"protocol": "ftp", "auth": map[string]any{"password": connSecret}}), nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "value")

	// Accepted variants: HL7 and IANA charsets, a bidirectional listener, an outbound without a port.
	// The charset is stored by its canonical name.
	for i, body := range []string{
		with(map[string]any{"name": "c1", "settings": map[string]any{"charset": "UNICODE UTF-8", "duplicatePolicy": "accept"}}),
		with(map[string]any{"name": "c2", "settings": map[string]any{"charset": "windows-1252", "maxMessageSize": 4096}}),
		with(map[string]any{"name": "c3", "direction": "bidirectional", "listenHost": "::1"}),
		with(map[string]any{"name": "c4", "direction": "outbound", "listenPort": nil}),
		with(map[string]any{"name": "c5", "listenHost": "mllp.example.org", "settings": nil}),
		with(map[string]any{"name": "c6", "settings": map[string]any{"timeZone": "Asia/Kabul"}}),
	} {
		rec := a.call(http.MethodPost, "/admin/connectors", a.tokA, body, nil)
		require.Equal(t, http.StatusCreated, rec.Code, "%d: %s", i, rec.Body.String())
		switch i {
		case 1:
			require.JSONEq(t, `{"charset":"WINDOWS-1252","maxMessageSize":4096}`, string(decodeConnector(t, rec).Settings))
		case 5:
			c6 := decodeConnector(t, rec)
			require.JSONEq(t, `{"timeZone":"Asia/Kabul"}`, string(c6.Settings))
			// An update is validated as a create is, and a refused one changes nothing.
			rec = a.call(http.MethodPut, connPath(c6.ID, ""), a.tokA, with(map[string]any{"name": "c6", "settings": map[string]any{"timeZone": "Asia/Kabull"}}), nil)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			require.Contains(t, outcomeText(decodeBody(t, rec)), `settings.timeZone "Asia/Kabull" is not an IANA time zone name`)
			rec = a.call(http.MethodPut, connPath(c6.ID, ""), a.tokA, with(map[string]any{"name": "c6", "settings": map[string]any{"timeZone": "Europe/Berlin"}}), nil)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.JSONEq(t, `{"timeZone":"Europe/Berlin"}`, string(decodeConnector(t, rec).Settings))
		}
	}

	// The list filters, and refuses what it does not know.
	rec = a.call(http.MethodGet, "/admin/connectors?direction=bidirectional", a.tokA, "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var list struct{ Connectors []connectorView }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Connectors, 1)
	require.Equal(t, "c3", list.Connectors[0].Name)
	rec = a.call(http.MethodGet, "/admin/connectors?status=draft&protocol=mllp&facilityId=f", a.tokA, "", nil)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Connectors, 6)
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/connectors?status=sleeping", a.tokA, "", nil), http.StatusBadRequest, "value")
	requireAPIOutcome(t, a.call(http.MethodGet, "/admin/connectors?colour=red", a.tokA, "", nil), http.StatusBadRequest, "value")

	// PUT: the id must match; status changes only through the transitions.
	c := list.Connectors[0]
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, with(map[string]any{"name": "c3", "direction": "bidirectional", "id": uuid.NewString()}), nil)
	requireAPIOutcome(t, rec, http.StatusBadRequest, "value")
	rec = a.call(http.MethodPut, connPath(c.ID, ""), a.tokA, with(map[string]any{"name": "c3", "direction": "bidirectional", "status": "active"}), nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), "/activate")
}

// A draft that somehow holds messages keeps them: it cannot be deleted.
func TestConnectorDeleteKeepsMessages(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	c := a.create(a.tokA, mllpInbound("d", "fac-1", freePort(t)))
	_, err := a.pool.Exec(context.Background(), `INSERT INTO hl7_rejected_inputs (tenant_id, connector_id, raw, size_bytes, raw_sha256, reason) VALUES ($1, $2, 'junk', 4, sha256('junk'), 'test')`,
		apiTenantA, c.ID)
	require.NoError(t, err)
	rec := a.call(http.MethodDelete, connPath(c.ID, ""), a.tokA, "", nil)
	require.Contains(t, outcomeText(requireAPIOutcome(t, rec, http.StatusConflict, "conflict")), "has messages")
	require.Equal(t, http.StatusOK, a.call(http.MethodGet, connPath(c.ID, ""), a.tokA, "", nil).Code)
}

// Concurrent activations of two connectors competing for one slot: exactly one wins, and
// exactly one event is recorded.
func TestConnectorConcurrentActivation(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	port := freePort(t)
	var ids []uuid.UUID
	for i := range 4 {
		ids = append(ids, a.create(a.tokA, mllpInbound(fmt.Sprintf("race-%d", i), "fac-1", port)).ID)
	}
	codes := make([]int, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, connPath(id, "activate"), nil)
			req.Header.Set("Authorization", "Bearer "+a.tokA)
			rec := httptest.NewRecorder()
			a.e.ServeHTTP(rec, req)
			codes[i] = rec.Code
		})
	}
	wg.Wait()
	wins := 0
	events := 0
	for i, code := range codes {
		require.Contains(t, []int{http.StatusOK, http.StatusConflict}, code)
		if code == http.StatusOK {
			wins++
		}
		events += a.connEvents(ids[i])["ConnectorActivated"]
	}
	require.Equal(t, 1, wins)
	require.Equal(t, 1, events)
	var active int
	require.NoError(t, a.pool.QueryRow(context.Background(), "SELECT count(*) FROM interop_connectors WHERE status = $1", db.ConnectorStatusActive).Scan(&active))
	require.Equal(t, 1, active)
}
