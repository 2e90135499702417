package adminapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/smart"
)

// clientRoutes serves /admin/clients: the tenant's SMART backend services clients (the
// token endpoint's registry). A client authenticates with a JWT signed by a key of its JWKS
// (registered by value or by URL) and is granted at most its registered scopes, for this
// tenant only. The client_id is assigned here and is unique across tenants.
func clientRoutes(admin *echo.Group, h *API) {
	admin.GET("/clients", h.listClients)
	admin.POST("/clients", h.createClient)
	admin.GET("/clients/:clientId", h.getClient)
	admin.PUT("/clients/:clientId", h.updateClient)
	admin.DELETE("/clients/:clientId", h.deleteClient)
}

// clientView is a client as the admin API shows it.
type clientView struct {
	ClientID  string          `json:"clientId"`
	Name      string          `json:"name"`
	JWKS      json.RawMessage `json:"jwks,omitempty"`
	JWKSURL   string          `json:"jwksUrl,omitempty"`
	Scopes    []string        `json:"scopes"`
	Enabled   bool            `json:"enabled"`
	TokenURL  string          `json:"tokenUrl"`
	Version   int64           `json:"version"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

func (h *API) viewClient(r db.AuthClient) clientView {
	v := clientView{
		ClientID: r.ClientID, Name: r.Name, JWKS: r.JWKS, Scopes: r.Scopes, Enabled: r.Enabled,
		TokenURL: h.d.BaseURL + "/auth/token", Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.JWKSURL != nil {
		v.JWKSURL = *r.JWKSURL
	}
	return v
}

func (h *API) renderClient(c echo.Context, status int, r db.AuthClient) error {
	c.Response().Header().Set("ETag", ruleETag(r.Version))
	return c.JSON(status, h.viewClient(r))
}

func errClientNotFound() error {
	// The same answer for a missing client and another tenant's: nothing is disclosed.
	return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "client not found")
}

func (h *API) listClients(c echo.Context) error {
	rows, err := db.New(h.d.Pool).AuthClientList(c.Request().Context(), httpkit.Principal(c).Tenant)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	out := struct {
		Clients []clientView `json:"clients"`
	}{Clients: make([]clientView, 0, len(rows))}
	for _, r := range rows {
		out.Clients = append(out.Clients, h.viewClient(r))
	}
	return c.JSON(http.StatusOK, out)
}

func (h *API) getClient(c echo.Context) error {
	row, err := db.New(h.d.Pool).AuthClientGet(c.Request().Context(), db.AuthClientGetParams{
		TenantID: httpkit.Principal(c).Tenant, ClientID: c.Param("clientId"),
	})
	if errors.Is(err, db.ErrNotFound) {
		return errClientNotFound()
	}
	if err != nil {
		return fmt.Errorf("get client: %w", err)
	}
	return h.renderClient(c, http.StatusOK, row)
}

// newClientID is a random client id: 128 bits, URL-safe.
func newClientID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("client id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (h *API) createClient(c echo.Context) error {
	body, err := h.readClientBody(c)
	if err != nil {
		return err
	}
	if body.clientID != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "clientId is assigned by the server; do not send one on create")
	}
	id, err := newClientID()
	if err != nil {
		return err
	}
	tenant := httpkit.Principal(c).Tenant
	enabled := true
	if body.enabled != nil {
		enabled = *body.enabled
	}
	row, err := db.New(h.d.Pool).AuthClientCreate(c.Request().Context(), db.AuthClientCreateParams{
		ClientID: id, TenantID: tenant, Name: body.name, JWKS: body.jwks, JWKSURL: body.jwksURL, Scopes: body.scopes, Enabled: enabled,
	})
	if err != nil {
		return clientWriteError(err)
	}
	h.d.Logger.Info("smart client registered", "client_id", id, "tenant_id", tenant, "scopes", strings.Join(row.Scopes, " "))
	c.Response().Header().Set(echo.HeaderLocation, h.d.BaseURL+"/admin/clients/"+id)
	return h.renderClient(c, http.StatusCreated, row)
}

// updateClient replaces a client's fields (PUT), on the version named by If-Match when given.
func (h *API) updateClient(c echo.Context) error {
	id := c.Param("clientId")
	body, err := h.readClientBody(c)
	if err != nil {
		return err
	}
	if body.clientID != nil && *body.clientID != id {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "clientId in the body does not match the one in the URL")
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	var row db.AuthClient
	err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
		cur, err := q.AuthClientGet(ctx, db.AuthClientGetParams{TenantID: tenant, ClientID: id})
		if errors.Is(err, db.ErrNotFound) {
			return errClientNotFound()
		}
		if err != nil {
			return fmt.Errorf("get client: %w", err)
		}
		if err := checkRuleIfMatch(c, cur.Version); err != nil {
			return err
		}
		enabled := cur.Enabled
		if body.enabled != nil {
			enabled = *body.enabled
		}
		ver := cur.Version
		row, err = q.AuthClientUpdate(ctx, db.AuthClientUpdateParams{
			TenantID: tenant, ClientID: id, Name: body.name, JWKS: body.jwks, JWKSURL: body.jwksURL, Scopes: body.scopes,
			Enabled: enabled, IfVersion: &ver,
		})
		if errors.Is(err, db.ErrNotFound) {
			return httpkit.NewOutcome(http.StatusPreconditionFailed, fhir.IssueConflict, "the client changed meanwhile: read it again and retry")
		}
		return err
	})
	if err != nil {
		return clientWriteError(err)
	}
	h.d.Logger.Info("smart client updated", "client_id", id, "tenant_id", tenant, "scopes", strings.Join(row.Scopes, " "),
		"enabled", row.Enabled, "version", row.Version)
	return h.renderClient(c, http.StatusOK, row)
}

func (h *API) deleteClient(c echo.Context) error {
	tenant := httpkit.Principal(c).Tenant
	n, err := db.New(h.d.Pool).AuthClientDelete(c.Request().Context(), db.AuthClientDeleteParams{TenantID: tenant, ClientID: c.Param("clientId")})
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	if n == 0 {
		return errClientNotFound()
	}
	h.d.Logger.Info("smart client deleted", "client_id", c.Param("clientId"), "tenant_id", tenant)
	return c.NoContent(http.StatusNoContent)
}

func clientWriteError(err error) error {
	var oe *httpkit.OutcomeError
	switch {
	case errors.As(err, &oe):
		return err
	case errors.Is(err, db.ErrCheckViolation), errors.Is(err, db.ErrInvalidData):
		return httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueValue, "the client breaks a schema rule: "+db.ConstraintMessage(err))
	}
	return fmt.Errorf("write client: %w", err)
}

// clientBody is a decoded create or update request.
type clientBody struct {
	name     string
	jwks     []byte
	jwksURL  *string
	scopes   []string
	enabled  *bool
	clientID *string
}

var clientBodyKeys = map[string]bool{
	"name": true, "jwks": true, "jwksUrl": true, "scopes": true, "enabled": true,
	// read-only, accepted so that a GET can be PUT back
	"clientId": true, "tokenUrl": true, "version": true, "createdAt": true, "updatedAt": true,
}

// readClientBody decodes and validates a create or update body, reporting every problem at
// once: 400 when it is not the expected JSON shape, 422 when its values cannot make a client.
func (h *API) readClientBody(c echo.Context) (*clientBody, error) {
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if httpkit.IsBodyTooLarge(err) {
			return nil, httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "cannot read the request body")
	}
	var doc map[string]json.RawMessage
	if !utf8.Valid(raw) || json.Unmarshal(raw, &doc) != nil || doc == nil {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "the body must be a JSON object")
	}
	var shape, unknown []string
	for k := range doc {
		if !clientBodyKeys[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		shape = append(shape, "unknown fields "+strings.Join(unknown, ", "))
	}
	b := &clientBody{}
	present := func(k string) bool { v, ok := doc[k]; return ok && string(v) != "null" }
	if present("name") && json.Unmarshal(doc["name"], &b.name) != nil {
		shape = append(shape, "name must be a string")
	}
	if present("jwks") {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(doc["jwks"], &set) != nil || set.Keys == nil {
			shape = append(shape, `jwks must be a JSON Web Key Set: {"keys": [...]}`)
		} else {
			var compact bytes.Buffer
			if json.Compact(&compact, doc["jwks"]) == nil {
				b.jwks = compact.Bytes()
			}
		}
	}
	if present("jwksUrl") {
		var u string
		if json.Unmarshal(doc["jwksUrl"], &u) != nil {
			shape = append(shape, "jwksUrl must be a string")
		} else {
			b.jwksURL = &u
		}
	}
	if present("scopes") && json.Unmarshal(doc["scopes"], &b.scopes) != nil {
		shape = append(shape, "scopes must be an array of strings")
	}
	if present("enabled") {
		var e bool
		if json.Unmarshal(doc["enabled"], &e) != nil {
			shape = append(shape, "enabled must be true or false")
		} else {
			b.enabled = &e
		}
	}
	if present("clientId") {
		var id string
		if json.Unmarshal(doc["clientId"], &id) != nil {
			shape = append(shape, "clientId must be a string")
		} else {
			b.clientID = &id
		}
	}
	if len(shape) > 0 {
		sort.Strings(shape)
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, strings.Join(shape, "; "))
	}
	var problems []string
	if utf8.RuneCountInString(b.name) > 200 {
		problems = append(problems, "name: at most 200 characters")
	}
	jwksURL := ""
	if b.jwksURL != nil {
		jwksURL = *b.jwksURL
	}
	problems = append(problems, smart.ValidateRegistration(b.jwks, jwksURL, b.scopes, h.d.AllowPrivateJWKS)...)
	if len(problems) > 0 {
		return nil, httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueValue, strings.Join(problems, "; "))
	}
	return b, nil
}
