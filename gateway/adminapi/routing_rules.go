package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/routing"
)

// routingRuleRoutes serves /admin/routing-rules: the FhirRoutingRule aggregate, always within
// the caller's tenant. The database holds the invariants (one primary owner per (tenant, type,
// category) among enabled rules; a type owned whole or split by category, never both); this
// API validates what it can first and words the database's refusals as 409s that name the
// rule in the way.
func routingRuleRoutes(admin *echo.Group, h *API) {
	admin.GET("/routing-rules", h.listRoutingRules)
	admin.POST("/routing-rules", h.createRoutingRule)
	admin.GET("/routing-rules/:id", h.getRoutingRule)
	admin.PUT("/routing-rules/:id", h.updateRoutingRule)
	admin.DELETE("/routing-rules/:id", h.deleteRoutingRule)
	admin.POST("/routing-rules/:id/enable", h.setRoutingRuleEnabled(true))
	admin.POST("/routing-rules/:id/disable", h.setRoutingRuleEnabled(false))
}

// The database's names for the routing invariants (migrations 000003 and 000011).
const (
	ruleConstraintPrimary     = "fhir_routing_rules_primary"
	ruleConstraintUnambiguous = "fhir_routing_rules_unambiguous"
)

// maxRuleDescription bounds a rule's description.
const maxRuleDescription = 1000

// routingRuleView is a routing rule as the admin API shows it.
type routingRuleView struct {
	ID           uuid.UUID `json:"id"`
	ResourceType string    `json:"resourceType"`
	Category     string    `json:"category"`
	OwnerURL     string    `json:"ownerUrl"`
	Enabled      bool      `json:"enabled"`
	Description  string    `json:"description"`
	Version      int64     `json:"version"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

func viewRoutingRule(r db.FhirRoutingRule) routingRuleView {
	return routingRuleView{
		ID: r.ID, ResourceType: r.ResourceType, Category: r.Category, OwnerURL: r.OwnerURL, Enabled: r.Enabled,
		Description: r.Description, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// ruleETag is the entity tag of a rule version, weak like the FHIR API's.
func ruleETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

func renderRoutingRule(c echo.Context, status int, r db.FhirRoutingRule) error {
	c.Response().Header().Set("ETag", ruleETag(r.Version))
	return c.JSON(status, viewRoutingRule(r))
}

func errRoutingRuleNotFound() error {
	// The same answer for a missing rule and another tenant's: nothing is disclosed.
	return httpkit.NewOutcome(http.StatusNotFound, fhir.IssueNotFound, "routing rule not found")
}

func routingRuleIDParam(c echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.UUID{}, errRoutingRuleNotFound()
	}
	return id, nil
}

// checkRuleIfMatch answers 412 when If-Match names neither "*" nor the rule's current version.
// "3", W/"3" and lists of them are understood; no If-Match means no condition.
func checkRuleIfMatch(c echo.Context, version int64) error {
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
		"If-Match does not match the routing rule's current version "+ruleETag(version)+": read it again and retry")

}

// lockRoutingRule reads the tenant's rule id and locks it until q's transaction ends.
func lockRoutingRule(ctx context.Context, q *db.Queries, tenant string, id uuid.UUID) (db.FhirRoutingRule, error) {
	row, err := q.FhirRoutingRuleGetForUpdate(ctx, db.FhirRoutingRuleGetForUpdateParams{TenantID: tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return row, errRoutingRuleNotFound()
	}
	if err != nil {
		return row, fmt.Errorf("lock routing rule: %w", err)
	}
	return row, nil
}

// listRoutingRules lists the caller's tenant's rules, optionally filtered by resourceType,
// category and enabled.
func (h *API) listRoutingRules(c echo.Context) error {
	params := db.FhirRoutingRuleSearchParams{TenantID: httpkit.Principal(c).Tenant}
	var problems []string
	for key, values := range c.QueryParams() {
		v := values[len(values)-1]
		switch key {
		case "resourceType":
			if v != routing.AnyType && !routing.IsResourceType(v) {
				problems = append(problems, fmt.Sprintf(`resourceType %q is not a FHIR R4 resource type or "*"`, v))
			}
			params.ResourceType = &v
		case "category":
			if !routing.ValidCategory(v) {
				problems = append(problems, fmt.Sprintf("category %q is not a code", v))
			}
			params.Category = &v
		case "enabled":
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("enabled %q: want true or false", v))
			}
			params.Enabled = &b
		default:
			problems = append(problems, fmt.Sprintf("unknown parameter %q (filters: resourceType, category, enabled)", key))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, strings.Join(problems, "; "))
	}
	rows, err := db.New(h.d.Pool).FhirRoutingRuleSearch(c.Request().Context(), params)
	if err != nil {
		return fmt.Errorf("list routing rules: %w", err)
	}
	out := struct {
		RoutingRules []routingRuleView `json:"routingRules"`
	}{RoutingRules: make([]routingRuleView, 0, len(rows))}
	for _, r := range rows {
		out.RoutingRules = append(out.RoutingRules, viewRoutingRule(r))
	}
	return c.JSON(http.StatusOK, out)
}

// getRoutingRule shows one rule of the caller's tenant, with its version as ETag.
func (h *API) getRoutingRule(c echo.Context) error {
	id, err := routingRuleIDParam(c)
	if err != nil {
		return err
	}
	row, err := db.New(h.d.Pool).FhirRoutingRuleGet(c.Request().Context(), db.FhirRoutingRuleGetParams{TenantID: httpkit.Principal(c).Tenant, ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return errRoutingRuleNotFound()
	}
	if err != nil {
		return fmt.Errorf("get routing rule: %w", err)
	}
	return renderRoutingRule(c, http.StatusOK, row)
}

// createRoutingRule creates a rule, enabled unless the body says "enabled": false.
func (h *API) createRoutingRule(c echo.Context) error {
	body, err := readRoutingRuleBody(c)
	if err != nil {
		return err
	}
	if body.id != nil {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "id is assigned by the server; do not send one on create")
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	f := body.fields
	if body.enabled == nil {
		f.Enabled = true
	}
	if err := h.checkOwner(ctx, "the new routing rule for "+describeTarget(f.ResourceType, f.Category), f.OwnerURL); err != nil {
		return err
	}
	id := uuid.New()
	row, err := db.New(h.d.Pool).FhirRoutingRuleCreate(ctx, db.FhirRoutingRuleCreateParams{
		ID: id, TenantID: tenant, ResourceType: f.ResourceType, Category: f.Category, OwnerURL: f.OwnerURL,
		Enabled: f.Enabled, Description: f.Description,
	})
	if err != nil {
		return h.routingRuleWriteError(ctx, tenant, id, f, err)
	}
	h.d.Logger.Info("routing rule created", "routing_rule_id", row.ID, "tenant_id", tenant, "resource_type", row.ResourceType,
		"category", row.Category, "owner_url", row.OwnerURL, "enabled", row.Enabled)
	c.Response().Header().Set(echo.HeaderLocation, h.d.BaseURL+"/admin/routing-rules/"+row.ID.String())
	return renderRoutingRule(c, http.StatusCreated, row)
}

// updateRoutingRule replaces a rule's fields (PUT: an absent category or description is
// cleared; an absent enabled keeps the rule's state), on the version named by If-Match when
// given. A PUT that changes nothing writes nothing and keeps the version.
func (h *API) updateRoutingRule(c echo.Context) error {
	id, err := routingRuleIDParam(c)
	if err != nil {
		return err
	}
	body, err := readRoutingRuleBody(c)
	if err != nil {
		return err
	}
	if body.id != nil && *body.id != id.String() {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "id in the body does not match the id in the URL")
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	f := body.fields
	if err := h.checkOwner(ctx, "routing rule "+id.String(), f.OwnerURL); err != nil {
		return err
	}
	var row db.FhirRoutingRule
	err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
		cur, err := lockRoutingRule(ctx, q, tenant, id)
		if err != nil {
			return err
		}
		if err := checkRuleIfMatch(c, cur.Version); err != nil {
			return err
		}
		if body.enabled == nil {
			f.Enabled = cur.Enabled
		}
		if cur.ResourceType == f.ResourceType && cur.Category == f.Category && cur.OwnerURL == f.OwnerURL &&
			cur.Enabled == f.Enabled && cur.Description == f.Description {
			row = cur
			return nil
		}
		row, err = q.FhirRoutingRuleUpdate(ctx, db.FhirRoutingRuleUpdateParams{
			TenantID: tenant, ID: id, ResourceType: f.ResourceType, Category: f.Category, OwnerURL: f.OwnerURL,
			Enabled: f.Enabled, Description: f.Description,
		})
		if err != nil {
			return fmt.Errorf("update routing rule: %w", err)
		}
		return nil
	})
	if err != nil {
		return h.routingRuleWriteError(ctx, tenant, id, f, err)
	}
	h.d.Logger.Info("routing rule updated", "routing_rule_id", id, "tenant_id", tenant, "resource_type", row.ResourceType,
		"category", row.Category, "owner_url", row.OwnerURL, "enabled", row.Enabled, "version", row.Version)
	return renderRoutingRule(c, http.StatusOK, row)
}

// setRoutingRuleEnabled enables or disables a rule. Enabling may be refused with 409 when an
// enabled rule already owns the same type and category, or the type the other way (whole or
// split). Asking for the state the rule is in changes nothing.
func (h *API) setRoutingRuleEnabled(enabled bool) echo.HandlerFunc {
	action := map[bool]string{true: "enabled", false: "disabled"}[enabled]
	return func(c echo.Context) error {
		id, err := routingRuleIDParam(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		tenant := httpkit.Principal(c).Tenant
		var cur, row db.FhirRoutingRule
		err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
			var err error
			if cur, err = lockRoutingRule(ctx, q, tenant, id); err != nil {
				return err
			}
			if err := checkRuleIfMatch(c, cur.Version); err != nil {
				return err
			}
			if cur.Enabled == enabled {
				row = cur
				return nil
			}
			if enabled {
				if err := h.checkOwner(ctx, "routing rule "+id.String(), cur.OwnerURL); err != nil {
					return err
				}
			}
			row, err = q.FhirRoutingRuleUpdate(ctx, db.FhirRoutingRuleUpdateParams{
				TenantID: tenant, ID: id, ResourceType: cur.ResourceType, Category: cur.Category, OwnerURL: cur.OwnerURL,
				Enabled: enabled, Description: cur.Description,
			})
			if err != nil {
				return fmt.Errorf("%s routing rule: %w", strings.TrimSuffix(action, "d"), err)
			}
			return nil
		})
		if err != nil {
			return h.routingRuleWriteError(ctx, tenant, id, routingRuleFields{
				ResourceType: cur.ResourceType, Category: cur.Category, OwnerURL: cur.OwnerURL, Enabled: enabled,
			}, err)
		}
		if cur.Enabled != enabled {
			h.d.Logger.Info("routing rule "+action, "routing_rule_id", id, "tenant_id", tenant, "resource_type", row.ResourceType,
				"category", row.Category, "version", row.Version)
		}
		return renderRoutingRule(c, http.StatusOK, row)
	}
}

// deleteRoutingRule deletes a rule (on the version named by If-Match when given). Requests for
// its type then go to the type's other rules, the tenant's '*' rule or the default owner.
func (h *API) deleteRoutingRule(c echo.Context) error {
	id, err := routingRuleIDParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tenant := httpkit.Principal(c).Tenant
	var cur db.FhirRoutingRule
	err = db.InTx(ctx, h.d.Pool, func(q *db.Queries) error {
		if cur, err = lockRoutingRule(ctx, q, tenant, id); err != nil {
			return err
		}
		if err := checkRuleIfMatch(c, cur.Version); err != nil {
			return err
		}
		if _, err := q.FhirRoutingRuleDelete(ctx, db.FhirRoutingRuleDeleteParams{TenantID: tenant, ID: id}); err != nil {
			return fmt.Errorf("delete routing rule: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.d.Logger.Info("routing rule deleted", "routing_rule_id", id, "tenant_id", tenant, "resource_type", cur.ResourceType,
		"category", cur.Category)
	return c.NoContent(http.StatusNoContent)
}

// routingRuleWriteError maps the database's refusals of a rule write to 409s that name the
// enabled rule in the way. f is what the write tried to store.
func (h *API) routingRuleWriteError(ctx context.Context, tenant string, id uuid.UUID, f routingRuleFields, err error) error {
	var oe *httpkit.OutcomeError
	switch {
	case errors.As(err, &oe):
		return err
	case errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == ruleConstraintPrimary:
		msg := fmt.Sprintf("another enabled rule already routes %s to an owner: there is one primary owner per resource type "+
			"and category; disable or change that rule first", describeTarget(f.ResourceType, f.Category))
		if others, lerr := h.enabledRulesOfType(ctx, tenant, f.ResourceType, id); lerr == nil {
			for _, o := range others {
				if o.Category == f.Category {
					msg = fmt.Sprintf("rule %s already routes %s to %s: there is one primary owner per resource type and category; "+
						"disable or change that rule first", o.ID, describeTarget(f.ResourceType, f.Category), o.OwnerURL)
				}
			}
		}
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueDuplicate, msg)
	case errors.Is(err, db.ErrConflict) && db.ConstraintName(err) == ruleConstraintUnambiguous:
		return httpkit.NewOutcome(http.StatusConflict, fhir.IssueConflict, h.ambiguityMessage(ctx, tenant, id, f))
	case errors.Is(err, db.ErrCheckViolation):
		// The schema's last word (its shape checks), worded by the schema.
		return httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueValue, "the rule breaks a schema rule: "+db.ConstraintMessage(err))
	}
	return err
}

// ambiguityMessage says which enabled rules make f ambiguous: category rules beside a rule for
// the whole type, or the whole-type rule beside a category rule.
func (h *API) ambiguityMessage(ctx context.Context, tenant string, id uuid.UUID, f routingRuleFields) string {
	others, err := h.enabledRulesOfType(ctx, tenant, f.ResourceType, id)
	var names []string
	if err == nil {
		for _, o := range others {
			if (o.Category == "") != (f.Category == "") {
				names = append(names, fmt.Sprintf("%s (%s → %s)", o.ID, describeTarget(o.ResourceType, o.Category), o.OwnerURL))
			}
		}
	}
	in := "enabled rules"
	if len(names) > 0 {
		in = "rule " + strings.Join(names, ", rule ")
	}
	if f.Category == "" {
		return fmt.Sprintf("%s is split by category (%s): a rule for the whole type beside them would make requests "+
			"without a category ambiguous; disable them first, or give this rule a category", f.ResourceType, in)
	}
	return fmt.Sprintf("%s is owned whole by %s: a category rule beside it would make requests without a category "+
		"ambiguous; disable that rule first (then add one rule per category)", f.ResourceType, in)
}

func (h *API) enabledRulesOfType(ctx context.Context, tenant, typ string, except uuid.UUID) ([]db.FhirRoutingRule, error) {
	rows, err := db.New(h.d.Pool).FhirRoutingRuleEnabledOfType(ctx, db.FhirRoutingRuleEnabledOfTypeParams{TenantID: tenant, ResourceType: typ})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(rows, func(r db.FhirRoutingRule) bool { return r.ID == except }), nil
}

// checkOwner refuses an owner URL whose host is, or resolves now to, an address owners may
// not use (netguard: loopback, private, link-local, metadata…) unless the operator's
// allow-list names it: 400, naming the rule. The connection is checked again when it is made.
func (h *API) checkOwner(ctx context.Context, rule, ownerURL string) error {
	if ownerURL == routing.Builtin {
		return nil
	}
	err := h.d.OwnerPolicy.CheckURL(ctx, nil, ownerURL)
	if err == nil {
		return nil
	}
	var re *netguard.RefusedError
	if errors.As(err, &re) {
		return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueSecurity, fmt.Sprintf("%s: ownerUrl %s", rule, re.Error()))
	}
	return httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, rule+": ownerUrl is not a usable URL")
}

func describeTarget(typ, category string) string {
	if category == "" {
		return typ
	}
	return typ + " category " + category
}

// routingRuleFields are a rule's writable fields, validated and normalised.
type routingRuleFields struct {
	ResourceType string
	Category     string
	OwnerURL     string
	Enabled      bool
	Description  string
}

// routingRuleBody is a decoded create or update request.
type routingRuleBody struct {
	fields  routingRuleFields
	enabled *bool   // nil when absent
	id      *string // read-only, accepted so that a GET can be PUT back
}

var routingRuleBodyKeys = map[string]bool{
	"resourceType": true, "category": true, "ownerUrl": true, "enabled": true, "description": true,
	// read-only, accepted and checked (id) or ignored
	"id": true, "version": true, "createdAt": true, "updatedAt": true,
}

// readRoutingRuleBody decodes and validates a create or update body, reporting every problem
// at once: 400 when the body is not the expected JSON shape, 422 when it is but its values
// cannot make a rule (an unknown resource type, an owner that is not a base URL).
func readRoutingRuleBody(c echo.Context) (*routingRuleBody, error) {
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if httpkit.IsBodyTooLarge(err) {
			return nil, httpkit.NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "cannot read the request body")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "the body must be a JSON object")
	}
	var shape []string
	var unknown []string
	for k := range doc {
		if !routingRuleBodyKeys[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		shape = append(shape, "unknown fields "+strings.Join(unknown, ", "))
	}
	str := func(key string, required bool) *string {
		v, ok := doc[key]
		if !ok || string(v) == "null" {
			if required {
				shape = append(shape, key+" is required")
			}
			return nil
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			shape = append(shape, key+" must be a string")
			return nil
		}
		return &s
	}
	b := &routingRuleBody{}
	var rule routing.Rule
	if s := str("resourceType", true); s != nil {
		rule.ResourceType = *s
	}
	if s := str("category", false); s != nil {
		rule.Category = *s
	}
	if s := str("ownerUrl", true); s != nil {
		rule.OwnerURL = *s
	}
	if s := str("description", false); s != nil {
		b.fields.Description = strings.TrimSpace(*s)
	}
	if v, ok := doc["enabled"]; ok && string(v) != "null" {
		var e bool
		if json.Unmarshal(v, &e) != nil {
			shape = append(shape, "enabled must be true or false")
		} else {
			b.enabled = &e
			b.fields.Enabled = e
		}
	}
	b.id = str("id", false)
	if len(shape) > 0 {
		sort.Strings(shape)
		return nil, httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueStructure, "invalid routing rule: "+strings.Join(shape, "; "))
	}
	rule, problems := rule.Normalize()
	if utf8.RuneCountInString(b.fields.Description) > maxRuleDescription {
		problems = append(problems, fmt.Sprintf("description must be at most %d characters", maxRuleDescription))
	}
	if len(problems) > 0 {
		return nil, httpkit.NewOutcome(http.StatusUnprocessableEntity, fhir.IssueValue, "invalid routing rule: "+strings.Join(problems, "; "))
	}
	b.fields.ResourceType, b.fields.Category, b.fields.OwnerURL = rule.ResourceType, rule.Category, rule.OwnerURL
	return b, nil
}
