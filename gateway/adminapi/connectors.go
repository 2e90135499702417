package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/crypto"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/outbox"
)

// Sealer encrypts connector credentials before they reach the database and opens them for the
// code that uses them (internal/crypto.Sealer, over a Tink AEAD keyset). The associated data
// binds a ciphertext to its tenant and connector (crypto.ConnectorAuthAD).
type Sealer interface {
	Seal(plaintext, associatedData []byte) (ciphertext []byte, keyID string, err error)
	Open(ciphertext, associatedData []byte) ([]byte, error)
}

// connectorRoutes serves /admin/connectors: the InteropConnector aggregate. A connector moves
// draft → active ⇄ inactive → retired (a draft may also be retired directly), each move by its
// own POST, in a transaction that records ConnectorActivated / ConnectorDeactivated. The
// database decides the invariants (one active connector per tenant, facility, protocol and
// direction; one active listener per port); the listener manager converges on the result.
func connectorRoutes(admin *echo.Group, h *API) {
	admin.GET("/connectors", h.listConnectors)
	admin.POST("/connectors", h.createConnector)
	admin.GET("/connectors/:id", h.getConnector)
	admin.PUT("/connectors/:id", h.updateConnector)
	admin.DELETE("/connectors/:id", h.deleteConnector)
	admin.POST("/connectors/:id/activate", h.transitionConnector(connectorActivate))
	admin.POST("/connectors/:id/deactivate", h.transitionConnector(connectorDeactivate))
	admin.POST("/connectors/:id/retire", h.transitionConnector(connectorRetire))
}

// connectorTransition is one move of the connector state machine.
type connectorTransition struct {
	action string
	from   []db.ConnectorStatus
	to     db.ConnectorStatus
	event  outbox.EventType // "" when the move raises none
}

var (
	connectorActivate = connectorTransition{
		action: "activate", to: db.ConnectorStatusActive, event: outbox.ConnectorActivated,
		from: []db.ConnectorStatus{db.ConnectorStatusDraft, db.ConnectorStatusInactive},
	}
	connectorDeactivate = connectorTransition{
		action: "deactivate", to: db.ConnectorStatusInactive, event: outbox.ConnectorDeactivated,
		from: []db.ConnectorStatus{db.ConnectorStatusActive},
	}
	// Retiring an active connector is refused: deactivating first is what stops its listener
	// and records ConnectorDeactivated.
	connectorRetire = connectorTransition{
		action: "retire", to: db.ConnectorStatusRetired,
		from: []db.ConnectorStatus{db.ConnectorStatusDraft, db.ConnectorStatusInactive},
	}
)

// refusal is the 409 for a move the state machine does not allow from status.
func (tr connectorTransition) refusal(status db.ConnectorStatus) error {
	from := make([]string, len(tr.from))
	for i, s := range tr.from {
		from[i] = string(s)
	}
	msg := fmt.Sprintf("transition %s → %s is not allowed: %s applies to %s connectors", status, tr.to, tr.action, strings.Join(from, " or "))
	switch {
	case status == db.ConnectorStatusRetired:
		msg += "; a retired connector is final"
	case tr.to == db.ConnectorStatusRetired && status == db.ConnectorStatusActive:
		msg += "; deactivate it first"
	}
	return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, msg)
}

// listensOn reports whether connectors of this protocol and direction get an MLLP listener, and
// so need a listen port to be active.
func listensOn(p db.ConnectorProtocol, d db.ConnectorDirection) bool {
	return p == db.ConnectorProtocolMLLP && (d == db.ConnectorDirectionInbound || d == db.ConnectorDirectionBidirectional)
}

func errConnectorNotFound() error {
	// The same answer for a missing connector and another tenant's: nothing is disclosed.
	return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "connector not found")
}

func connectorIDParam(c echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.UUID{}, errConnectorNotFound()
	}
	return id, nil
}

// lockConnector reads the tenant's connector id and locks it until q's transaction ends.
func lockConnector(ctx context.Context, q *db.Queries, tenant string, id uuid.UUID) (db.InteropConnector, error) {
	row, err := q.ConnectorGetForUpdate(ctx, db.ConnectorGetForUpdateParams{TenantID: tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return row, errConnectorNotFound()
	}
	if err != nil {
		return row, fmt.Errorf("lock connector: %w", err)
	}
	return row, nil
}

// connectorETag is the entity tag of a connector version, weak like the FHIR API's.
func connectorETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// checkIfMatch answers 412 when the request's If-Match names neither "*" nor the connector's
// current version. "3", W/"3" and lists of them are understood; no If-Match means no condition.
func checkIfMatch(c echo.Context, version int64) error {
	header := strings.Join(c.Request().Header.Values("If-Match"), ",")
	if strings.TrimSpace(header) == "" {
		return nil
	}
	want := `"` + strconv.FormatInt(version, 10) + `"`
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return nil
		}
	}
	return httpkit.NewOutcome(http.StatusPreconditionFailed, fhir.IssueConflict,
		"If-Match does not match the connector's current version "+connectorETag(version)+": read it again and retry")

}

// connectorView is a connector as the admin API shows it. Credentials are never shown, only
// whether there are any and which key sealed them.
type connectorView struct {
	ID         uuid.UUID         `json:"id"`
	Name       string            `json:"name"`
	FacilityID string            `json:"facilityId"`
	Protocol   string            `json:"protocol"`
	Direction  string            `json:"direction"`
	Status     string            `json:"status"`
	ListenHost *string           `json:"listenHost,omitempty"`
	ListenPort *int32            `json:"listenPort,omitempty"`
	Settings   json.RawMessage   `json:"settings"`
	Auth       connectorAuthView `json:"auth"`
	// Listener is the MLLP listener of an active inbound connector as the answering replica
	// sees it; absent when the connector does not listen or this process runs no listeners.
	Listener  *listenerView `json:"listener,omitempty"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// listenerView is the health of a connector's listener: an active connector whose port
// another process holds is active but does not listen, and says why.
type listenerView struct {
	Listening   bool       `json:"listening"`
	Addr        string     `json:"addr,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

type connectorAuthView struct {
	Configured bool   `json:"configured"`
	KeyID      string `json:"keyId,omitempty"`
}

// viewConnector is r as shown, with its listener's health when r is active and this process
// knows it.
func (h *API) viewConnector(r db.InteropConnector) connectorView {
	v := viewConnectorRow(r)
	if h.d.Listeners == nil || r.Status != db.ConnectorStatusActive {
		return v
	}
	if st, ok := h.d.Listeners.State(r.ID); ok {
		v.Listener = &listenerView{Listening: st.Listening, Addr: st.Addr, LastError: st.LastError}
		if !st.LastErrorAt.IsZero() {
			at := st.LastErrorAt.UTC()
			v.Listener.LastErrorAt = &at
		}
	}
	return v
}

func viewConnectorRow(r db.InteropConnector) connectorView {
	v := connectorView{
		ID: r.ID, Name: r.Name, FacilityID: r.FacilityID, Protocol: string(r.Protocol), Direction: string(r.Direction),
		Status: string(r.Status), ListenHost: r.ListenHost, ListenPort: r.ListenPort, Settings: r.Settings,
		Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if len(v.Settings) == 0 {
		v.Settings = json.RawMessage(`{}`)
	}
	if r.AuthCiphertext != nil {
		v.Auth.Configured = true
		if r.AuthKeyID != nil {
			v.Auth.KeyID = *r.AuthKeyID
		}
	}
	return v
}

func (h *API) renderConnector(c echo.Context, status int, r db.InteropConnector) error {
	c.Response().Header().Set("ETag", connectorETag(r.Version))
	return c.JSON(status, h.viewConnector(r))
}

// listConnectors lists the caller's tenant's connectors, optionally filtered by status,
// protocol, direction and facilityId.
func (h *API) listConnectors(c echo.Context) error {
	params := db.ConnectorSearchParams{TenantID: httpkit.Principal(c).Tenant}
	var problems []string
	for key, values := range c.QueryParams() {
		v := values[len(values)-1]
		switch key {
		case "status":
			s := db.ConnectorStatus(v)
			if !s.Valid() {
				problems = append(problems, fmt.Sprintf("status %q is not one of %s", v, enumList(db.AllConnectorStatusValues())))
			}
			params.Status = &s
		case "protocol":
			p := db.ConnectorProtocol(v)
			if !p.Valid() {
				problems = append(problems, fmt.Sprintf("protocol %q is not one of %s", v, enumList(db.AllConnectorProtocolValues())))
			}
			params.Protocol = &p
		case "direction":
			d := db.ConnectorDirection(v)
			if !d.Valid() {
				problems = append(problems, fmt.Sprintf("direction %q is not one of %s", v, enumList(db.AllConnectorDirectionValues())))
			}
			params.Direction = &d
		case "facilityId":
			params.FacilityID = &v
		default:
			problems = append(problems, fmt.Sprintf("unknown parameter %q (filters: status, protocol, direction, facilityId)", key))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, strings.Join(problems, "; "))
	}
	rows, err := db.New(h.d.Pool).ConnectorSearch(c.Request().Context(), params)
	if err != nil {
		return fmt.Errorf("list connectors: %w", err)
	}
	out := struct {
		Connectors []connectorView `json:"connectors"`
	}{Connectors: make([]connectorView, 0, len(rows))}
	for _, r := range rows {
		out.Connectors = append(out.Connectors, h.viewConnector(r))
	}
	return c.JSON(http.StatusOK, out)
}

// getConnector shows one connector of the caller's tenant, with its version as ETag.
func (h *API) getConnector(c echo.Context) error {
	id, err := connectorIDParam(c)
	if err != nil {
		return err
	}
	row, err := db.New(h.d.Pool).ConnectorGet(c.Request().Context(), db.ConnectorGetParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return errConnectorNotFound()
	}
	if err != nil {
		return fmt.Errorf("get connector: %w", err)
	}
	return h.renderConnector(c, http.StatusOK, row)
}

// createConnector creates a draft connector. Credentials in "auth" are sealed before the insert.
func (h *API) createConnector(c echo.Context) error {
	body, err := readConnectorBody(c)
	if err != nil {
		return err
	}
	defer body.wipe()
	if body.auth == authKeep && body.authEcho {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue,
			`auth: give the credentials themselves (e.g. {"username": …, "password": …}); {"configured": …, "keyId": …} is how responses show them`)

	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	id := uuid.New()
	params := db.ConnectorCreateParams{
		ID: id, TenantID: tenant, FacilityID: body.fields.FacilityID, Name: body.fields.Name,
		Protocol: body.fields.Protocol, Direction: body.fields.Direction,
		ListenHost: body.fields.ListenHost, ListenPort: body.fields.ListenPort, Settings: body.fields.Settings,
	}
	if body.auth == authSet {
		if params.AuthCiphertext, params.AuthKeyID, err = h.sealConnectorAuth(tenant, id, body.authPlain); err != nil {
			return err
		}
	}
	row, err := db.New(h.d.Pool).ConnectorCreate(ctx, params)
	if err != nil {
		return h.connectorWriteError(ctx, tenant, id, body.fields, err)
	}
	h.d.Logger.Info("connector created", "connector_id", row.ID, "tenant_id", tenant, "protocol", row.Protocol,
		"direction", row.Direction, "auth_configured", row.AuthCiphertext != nil)
	c.Response().Header().Set(echo.HeaderLocation, h.d.BaseURL+"/admin/connectors/"+row.ID.String())
	return h.renderConnector(c, http.StatusCreated, row)
}

// updateConnector replaces a connector's fields (PUT: absent optional fields are cleared), on
// the version named by If-Match when given. Credentials change only when "auth" is given: an
// object replaces them, null removes them, and the {"configured": …} view of a GET is taken as
// "unchanged" so that a read–modify–write never overwrites them with their own description.
// Status changes go through the transition endpoints; protocol and direction are fixed once a
// connector has left draft; a retired connector cannot change at all.
func (h *API) updateConnector(c echo.Context) error {
	id, err := connectorIDParam(c)
	if err != nil {
		return err
	}
	body, err := readConnectorBody(c)
	if err != nil {
		return err
	}
	defer body.wipe()
	if body.id != nil && *body.id != id.String() {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "id in the body does not match the id in the URL")
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	f := body.fields
	var row db.InteropConnector
	err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
		cur, err := lockConnector(ctx, q, tenant, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(c, cur.Version); err != nil {
			return err
		}
		if cur.Status == db.ConnectorStatusRetired {
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, "the connector is retired; a retired connector cannot be changed")
		}
		if body.status != nil && *body.status != string(cur.Status) {
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, fmt.Sprintf(
				"the connector is %s; status changes only through POST /admin/connectors/{id}/activate, /deactivate or /retire", cur.Status))

		}
		if cur.Status != db.ConnectorStatusDraft && (f.Protocol != cur.Protocol || f.Direction != cur.Direction) {
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, fmt.Sprintf(
				"protocol and direction are fixed once a connector has been activated (it is %s %s); create a new connector instead",
				cur.Protocol, cur.Direction))

		}
		if cur.Status != db.ConnectorStatusDraft && listensOn(f.Protocol, f.Direction) && f.ListenPort == nil {
			// The schema's interop_connectors_listener rule, said in words.
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, fmt.Sprintf(
				"an inbound mllp connector keeps its listenPort once it has left draft (it is %s)", cur.Status))

		}
		params := db.ConnectorUpdateParams{
			TenantID: tenant, ID: id, Name: f.Name, FacilityID: f.FacilityID, Protocol: f.Protocol, Direction: f.Direction,
			ListenHost: f.ListenHost, ListenPort: f.ListenPort, Settings: f.Settings,
			AuthCiphertext: cur.AuthCiphertext, AuthKeyID: cur.AuthKeyID,
		}
		switch body.auth {
		case authClear:
			params.AuthCiphertext, params.AuthKeyID = nil, nil
		case authSet:
			if params.AuthCiphertext, params.AuthKeyID, err = h.sealConnectorAuth(tenant, id, body.authPlain); err != nil {
				return err
			}
		}
		if body.auth == authKeep && sameConnectorFields(cur, f) {
			row = cur // nothing changes: no write, no new version, no listener restart
			return nil
		}
		row, err = q.ConnectorUpdate(ctx, params)
		if err != nil {
			return fmt.Errorf("update connector: %w", err)
		}
		return nil
	})
	if err != nil {
		return h.connectorWriteError(ctx, tenant, id, f, err)
	}
	h.d.Logger.Info("connector updated", "connector_id", id, "tenant_id", tenant, "version", row.Version,
		"auth_configured", row.AuthCiphertext != nil)
	return h.renderConnector(c, http.StatusOK, row)
}

// transitionConnector moves a connector along tr, recording tr's event in the same transaction.
func (h *API) transitionConnector(tr connectorTransition) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := connectorIDParam(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		tenant := httpkit.Principal(c).Tenant
		var cur, row db.InteropConnector
		err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
			var err error
			if cur, err = lockConnector(ctx, q, tenant, id); err != nil {
				return err
			}
			if err := checkIfMatch(c, cur.Version); err != nil {
				return err
			}
			if !slices.Contains(tr.from, cur.Status) {
				return tr.refusal(cur.Status)
			}
			if tr.to == db.ConnectorStatusActive && listensOn(cur.Protocol, cur.Direction) && cur.ListenPort == nil {
				return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict,
					"an inbound mllp connector needs listenPort before it can be activated: set it with PUT first")

			}
			if row, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: tenant, ID: id, Status: tr.to}); err != nil {
				return fmt.Errorf("%s connector: %w", tr.action, err)
			}
			switch tr.event {
			case outbox.ConnectorActivated:
				return outbox.Emit(ctx, q, tenant, tr.event, id.String(), map[string]any{"connectorId": id, "protocol": row.Protocol})
			case outbox.ConnectorDeactivated:
				return outbox.Emit(ctx, q, tenant, tr.event, id.String(), map[string]any{"connectorId": id})
			}
			return nil
		})
		if err != nil {
			return h.connectorWriteError(ctx, tenant, id, connectorFields{
				FacilityID: cur.FacilityID, Protocol: cur.Protocol, Direction: cur.Direction, ListenPort: cur.ListenPort,
			}, err)
		}
		h.d.Logger.Info("connector "+tr.action+"d", "connector_id", id, "tenant_id", tenant, "protocol", row.Protocol,
			"from", cur.Status, "version", row.Version)
		return h.renderConnector(c, http.StatusOK, row)
	}
}

// deleteConnector deletes a draft that never received anything. Any other connector keeps its
// row (and with it its message log): it is retired instead.
func (h *API) deleteConnector(c echo.Context) error {
	id, err := connectorIDParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
		cur, err := lockConnector(ctx, q, tenant, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(c, cur.Version); err != nil {
			return err
		}
		if cur.Status != db.ConnectorStatusDraft {
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, fmt.Sprintf(
				"only a draft connector can be deleted; this one is %s: retire it instead (its message log is kept)", cur.Status))

		}
		has, err := q.ConnectorHasMessages(ctx, id)
		if err != nil {
			return fmt.Errorf("look for messages of connector: %w", err)
		}
		if has {
			return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict,
				"the connector has messages, which are kept: retire it instead of deleting it")

		}
		if _, err := q.ConnectorDeleteDraft(ctx, db.ConnectorDeleteDraftParams{TenantID: tenant, ID: id}); err != nil {
			return fmt.Errorf("delete connector: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.d.Logger.Info("connector deleted", "connector_id", id, "tenant_id", tenant)
	return c.NoContent(http.StatusNoContent)
}

// sealConnectorAuth seals plaintext credentials for the tenant's connector id.
func (h *API) sealConnectorAuth(tenant string, id uuid.UUID, plaintext []byte) ([]byte, *string, error) {
	if h.d.Sealer == nil {
		return nil, nil, httpkit.NewOutcome(http.StatusServiceUnavailable, fhir.IssueTransient,
			"this gateway has no keyset for connector credentials (INTEROP_KEYSET_FILE), so it cannot store them")

	}
	ct, keyID, err := h.d.Sealer.Seal(plaintext, crypto.ConnectorAuthAD(tenant, id.String()))
	if err != nil {
		return nil, nil, fmt.Errorf("seal connector credentials: %w", err)
	}
	return ct, &keyID, nil
}

// connectorWriteError maps the database's refusals of a connector write to 409s that say what
// is in the way. f is what the write tried to store (the fields the invariants look at).
func (h *API) connectorWriteError(ctx context.Context, tenant string, id uuid.UUID, f connectorFields, err error) error {
	var oe *httpkit.OutcomeError
	switch {
	case errors.As(err, &oe):
		return err
	case errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == "interop_connectors_one_active":
		msg := fmt.Sprintf("another connector is already active for facility %q, protocol %s, direction %s; deactivate it first",
			f.FacilityID, f.Protocol, f.Direction)
		holder, lerr := db.New(h.d.Pool).ConnectorActiveInSlot(ctx, db.ConnectorActiveInSlotParams{
			TenantID: tenant, FacilityID: f.FacilityID, Protocol: f.Protocol, Direction: f.Direction,
		})
		if lerr == nil && holder.ID != id {
			msg = fmt.Sprintf("connector %q (%s) is already active for facility %q, protocol %s, direction %s; deactivate it first",
				holder.Name, holder.ID, f.FacilityID, f.Protocol, f.Direction)
		}
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, msg)
	case errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == "interop_connectors_active_port":
		// Ports are shared by every tenant on the gateway hosts. The caller's own connector in
		// the way is named; anything else gets a neutral answer that says nothing of who holds
		// the port, or whether anyone does.
		msg := "the listen port is not available; choose another port"
		if f.ListenPort != nil {
			msg = fmt.Sprintf("port %d is not available; choose another port", *f.ListenPort)
			holder, lerr := db.New(h.d.Pool).ConnectorActiveOnPort(ctx, f.ListenPort)
			if lerr == nil && holder.TenantID == tenant && holder.ID != id {
				msg = fmt.Sprintf("port %d is in use by the active connector %q (%s); choose another port or deactivate that connector",
					*f.ListenPort, holder.Name, holder.ID)
			}
		}
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, msg)
	case errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == "interop_connectors_tenant_name":
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueDuplicate, fmt.Sprintf("a connector named %q already exists", f.Name))
	case errors.Is(err, db.ErrCheckViolation):
		// The schema's last word (the listener rule, the retired guard), worded by the schema.
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, "the change breaks a connector rule: "+db.ConstraintMessage(err))
	}
	return err
}

// connectorFields are a connector's writable fields, validated and normalised.
type connectorFields struct {
	Name       string
	FacilityID string
	Protocol   db.ConnectorProtocol
	Direction  db.ConnectorDirection
	ListenHost *string
	ListenPort *int32
	Settings   []byte // a JSON object of known keys only
}

func sameConnectorFields(cur db.InteropConnector, f connectorFields) bool {
	return cur.Name == f.Name && cur.FacilityID == f.FacilityID && cur.Protocol == f.Protocol &&
		cur.Direction == f.Direction && equalPtr(cur.ListenHost, f.ListenHost) && equalPtr(cur.ListenPort, f.ListenPort) &&
		sameJSON(cur.Settings, f.Settings)
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x) // map keys are marshalled sorted: a canonical form
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// authChange is what a request does to a connector's credentials.
type authChange int

const (
	authKeep  authChange = iota // "auth" absent (or the read-only view of a GET)
	authClear                   // "auth": null
	authSet                     // "auth": {…credentials…}
)

// connectorBody is a decoded create or update request.
type connectorBody struct {
	fields    connectorFields
	auth      authChange
	authEcho  bool   // "auth" was the read-only {"configured": …} view
	authPlain []byte // the credentials as compact JSON, when auth is authSet
	raw       []byte
	// Read-only fields of the representation, accepted so that a GET can be PUT back.
	id, status *string
}

// wipe overwrites the request's copies of the credentials once they are sealed. Best effort:
// it shortens their life in memory, it cannot promise they leave no trace.
func (b *connectorBody) wipe() {
	clear(b.authPlain)
	clear(b.raw)
}

var connectorBodyKeys = map[string]bool{
	"name": true, "facilityId": true, "protocol": true, "direction": true, "listenHost": true, "listenPort": true,
	"settings": true, "auth": true,
	// read-only, accepted and checked (id, status) or ignored
	"id": true, "status": true, "version": true, "createdAt": true, "updatedAt": true,
}

// readConnectorBody decodes and validates a create or update body, reporting every problem
// at once in one 400.
func readConnectorBody(c echo.Context) (*connectorBody, error) {
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if httpkit.IsBodyTooLarge(err) {
			return nil, httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "cannot read the request body")
	}
	b := &connectorBody{raw: raw}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		b.wipe()
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "the body must be a JSON object")
	}
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var unknown []string
	for k := range doc {
		if !connectorBodyKeys[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		problem("unknown fields %s", strings.Join(unknown, ", "))
	}

	str := func(key string, required bool) *string {
		v, ok := doc[key]
		if !ok || string(v) == "null" {
			if required {
				problem("%s is required", key)
			}
			return nil
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			problem("%s must be a string", key)
			return nil
		}
		return &s
	}
	f := &b.fields
	for _, t := range []struct {
		key string
		dst *string
	}{{"name", &f.Name}, {"facilityId", &f.FacilityID}} {
		if s := str(t.key, true); s != nil {
			*t.dst = strings.TrimSpace(*s)
			switch {
			case *t.dst == "":
				problem("%s must not be empty", t.key)
			case len(*t.dst) > 200:
				problem("%s must be at most 200 characters", t.key)
			}
		}
	}
	if s := str("protocol", true); s != nil {
		if f.Protocol = db.ConnectorProtocol(*s); !f.Protocol.Valid() {
			problem("protocol %q is not one of %s", *s, enumList(db.AllConnectorProtocolValues()))
		}
	}
	if s := str("direction", true); s != nil {
		if f.Direction = db.ConnectorDirection(*s); !f.Direction.Valid() {
			problem("direction %q is not one of %s", *s, enumList(db.AllConnectorDirectionValues()))
		}
	}
	if s := str("listenHost", false); s != nil {
		if !validListenHost(*s) {
			problem("listenHost %q is not an IP address or host name", *s)
		}
		f.ListenHost = s
	}
	if v, ok := doc["listenPort"]; ok && string(v) != "null" {
		// The port's range is checked here, where n narrows to the column's int32.
		if n, ok := connector.Int(v, math.MinInt64, math.MaxInt64); ok && n >= 1 && n <= 65535 {
			p := int32(n)
			f.ListenPort = &p
		} else {
			problem("listenPort must be an integer from 1 to 65535")
		}
	}
	if (f.ListenHost != nil || f.ListenPort != nil) && f.Protocol.Valid() && f.Direction.Valid() && !listensOn(f.Protocol, f.Direction) {
		problem("listenHost and listenPort apply only to inbound or bidirectional mllp connectors")
	}
	settings, settingsProblems := connector.Parse(doc["settings"])
	f.Settings = settings.JSON()
	problems = append(problems, settingsProblems...)

	if v, ok := doc["auth"]; ok {
		if err := b.readAuth(v); err != nil {
			problems = append(problems, err.Error())
		}
	}
	b.id, b.status = str("id", false), str("status", false)
	if len(problems) > 0 {
		b.wipe()
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "invalid connector: "+strings.Join(problems, "; "))
	}
	return b, nil
}

// readAuth decides what "auth" asks for. The error never quotes the value: it may be a secret.
func (b *connectorBody) readAuth(v json.RawMessage) error {
	if string(v) == "null" {
		b.auth = authClear
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil || obj == nil {
		return errors.New("auth must be a JSON object (or null to remove the credentials)")
	}
	if len(obj) == 0 {
		return errors.New("auth must not be an empty object (null removes the credentials)")
	}
	view := true
	for k := range obj {
		if k != "configured" && k != "keyId" {
			view = false
		}
	}
	if view {
		b.auth, b.authEcho = authKeep, true
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return errors.New("auth must be a JSON object")
	}
	if buf.Len() > 16<<10 {
		return errors.New("auth must be at most 16 KiB")
	}
	b.auth, b.authPlain = authSet, buf.Bytes()
	return nil
}

var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validListenHost(s string) bool {
	return net.ParseIP(s) != nil || (len(s) <= 253 && hostNamePattern.MatchString(s))
}

func enumList[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
