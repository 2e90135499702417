package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// searchParams are the search parameters the facade understands today; anything else is
// refused rather than ignored, because an ignored filter returns more data than was asked for.
var searchParams = map[string]bool{"identifier": true, "_id": true, "_count": true, "_format": true}

func (h *handlers) resourceType(c echo.Context) (string, error) {
	typ := c.Param("type")
	if !fhir.ValidType(typ) {
		return "", newOutcome(http.StatusNotFound, fhir.IssueNotSupported, "unknown resource type "+strconv.Quote(typ))
	}
	return typ, nil
}

// owner resolves the owner of typ for the caller's tenant. Only the built-in store is served
// in-process; forwarding to external owners arrives with the FHIR gateway issue (#6).
func (h *handlers) owner(ctx context.Context, tenant, typ string) error {
	rows, err := db.New(h.d.Pool).FhirRoutingRuleListEnabled(ctx, tenant)
	if err != nil {
		return fmt.Errorf("load routing rules: %w", err)
	}
	t := routing.Table{Default: h.d.DefaultOwner}
	for _, r := range rows {
		t.Rules = append(t.Rules, routing.Rule{ResourceType: r.ResourceType, Category: r.Category, OwnerURL: r.OwnerURL})
	}
	owners, err := t.Owners(typ)
	if errors.Is(err, routing.ErrNoRoute) {
		return newOutcome(http.StatusNotFound, fhir.IssueNotSupported, "no service owns "+typ)
	}
	if err != nil {
		return err
	}
	if len(owners) != 1 || owners[0] != routing.Builtin {
		return newOutcome(http.StatusNotImplemented, fhir.IssueNotSupported,
			typ+" is owned by an external service; forwarding to external owners is not available yet")
	}
	return nil
}

func (h *handlers) search(c echo.Context) error {
	typ, err := h.resourceType(c)
	if err != nil {
		return err
	}
	if err := requireInteraction(c, typ, auth.Search); err != nil {
		return err
	}
	params, err := searchValues(c)
	if err != nil {
		return err
	}
	var q store.Query
	for name, values := range params {
		if !searchParams[name] {
			return newOutcome(http.StatusBadRequest, fhir.IssueNotSupported, fmt.Sprintf("search parameter %q is not supported on %s (supported: identifier, _id, _count)", name, typ))
		}
		if len(values) > 1 {
			return newOutcome(http.StatusBadRequest, fhir.IssueNotSupported, fmt.Sprintf("search parameter %q given more than once", name))
		}
	}
	q.ID = params.Get("_id")
	if q.ID != "" && !fhir.ValidID(q.ID) {
		return newOutcome(http.StatusBadRequest, fhir.IssueValue, "_id is not a valid FHIR id")
	}
	if v := params.Get("identifier"); v != "" {
		ident, anySystem := fhir.ParseToken(v)
		if ident.Value == "" {
			return newOutcome(http.StatusBadRequest, fhir.IssueValue, "identifier needs a value: identifier=system|value")
		}
		q.Identifier, q.AnySystem = &ident, anySystem
	}
	if v := params.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return newOutcome(http.StatusBadRequest, fhir.IssueValue, "_count must be a non-negative integer")
		}
		q.Count = min(n, store.MaxCount)
		if n == 0 {
			q.Count = 1 // _count=0 asks for the total only
		}
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := h.owner(ctx, p.Tenant, typ); err != nil {
		return err
	}
	res, err := h.d.Store.Search(ctx, p.Tenant, typ, q)
	if err != nil {
		return fmt.Errorf("search %s: %w", typ, err)
	}
	if params.Get("_count") == "0" {
		res.Resources = nil
	}
	total := res.Total
	b := fhir.Bundle{
		ResourceType: "Bundle", Type: fhir.BundleSearchset, Total: &total,
		Meta:  &fhir.Meta{LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)},
		Link:  []fhir.BundleLink{{Relation: "self", URL: h.d.BaseURL + "/fhir/" + typ + selfQuery(params)}},
		Entry: make([]fhir.BundleEntry, 0, len(res.Resources)),
	}
	for _, r := range res.Resources {
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullURL: h.d.BaseURL + "/fhir/" + r.Type + "/" + r.ID, Resource: r.Body, Search: &fhir.EntrySearch{Mode: "match"},
		})
	}
	return fhirJSON(c, http.StatusOK, b)
}

// searchValues merges the query string with a POST _search form body.
func searchValues(c echo.Context) (url.Values, error) {
	values := url.Values{}
	for k, v := range c.QueryParams() {
		values[k] = append(values[k], v...)
	}
	if c.Request().Method == http.MethodPost {
		ct := c.Request().Header.Get(echo.HeaderContentType)
		if !strings.HasPrefix(ct, echo.MIMEApplicationForm) {
			return nil, newOutcome(http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "POST _search needs application/x-www-form-urlencoded")
		}
		form, err := c.FormParams()
		if isBodyTooLarge(err) {
			return nil, newOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		if err != nil {
			return nil, newOutcome(http.StatusBadRequest, fhir.IssueInvalid, "unreadable form body")
		}
		for k, v := range form {
			values[k] = append(values[k], v...)
		}
	}
	return values, nil
}

func selfQuery(params url.Values) string {
	if len(params) == 0 {
		return ""
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := url.Values{}
	for _, k := range keys {
		v[k] = params[k]
	}
	return "?" + v.Encode()
}

func (h *handlers) read(c echo.Context) error {
	typ, err := h.resourceType(c)
	if err != nil {
		return err
	}
	if err := requireInteraction(c, typ, auth.Read); err != nil {
		return err
	}
	id := c.Param("id")
	if !fhir.ValidID(id) {
		return newOutcome(http.StatusNotFound, fhir.IssueNotFound, typ+"/"+id+" is not a valid id")
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := h.owner(ctx, p.Tenant, typ); err != nil {
		return err
	}
	r, err := h.d.Store.Read(ctx, p.Tenant, typ, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The same answer whether the id exists in another tenant or nowhere.
		return newOutcome(http.StatusNotFound, fhir.IssueNotFound, typ+"/"+id+" not found")
	case errors.Is(err, store.ErrGone):
		return newOutcome(http.StatusGone, fhir.IssueDeleted, typ+"/"+id+" was deleted")
	case err != nil:
		return fmt.Errorf("read %s/%s: %w", typ, id, err)
	}
	setVersionHeaders(c, r)
	return fhirJSON(c, http.StatusOK, r.Body)
}

func (h *handlers) create(c echo.Context) error {
	typ, err := h.resourceType(c)
	if err != nil {
		return err
	}
	if err := requireInteraction(c, typ, auth.Create); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if isBodyTooLarge(err) {
			return newOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
		}
		return newOutcome(http.StatusBadRequest, fhir.IssueInvalid, "unreadable request body")
	}
	head, err := fhir.ReadHead(body)
	if err != nil {
		return newOutcome(http.StatusBadRequest, fhir.IssueStructure, err.Error())
	}
	if head.ResourceType != typ {
		return newOutcome(http.StatusBadRequest, fhir.IssueInvalid, fmt.Sprintf("body is a %s, the URL says %s", head.ResourceType, typ))
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := h.owner(ctx, p.Tenant, typ); err != nil {
		return err
	}
	var res store.WriteResult
	if cond := c.Request().Header.Get("If-None-Exist"); cond != "" {
		ident, err := parseIfNoneExist(cond)
		if err != nil {
			return err
		}
		res, err = h.d.Store.ConditionalCreate(ctx, p.Tenant, body, ident)
		if errors.Is(err, store.ErrMultipleMatches) {
			return newOutcome(http.StatusPreconditionFailed, fhir.IssueDuplicate, "If-None-Exist matched more than one "+typ)
		}
	} else {
		res, err = h.d.Store.Create(ctx, p.Tenant, body)
	}
	if errors.Is(err, fhir.ErrInvalidResource) {
		return newOutcome(http.StatusBadRequest, fhir.IssueStructure, err.Error())
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", typ, err)
	}
	setVersionHeaders(c, res.Resource)
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("%s/fhir/%s/%s/_history/%d", h.d.BaseURL, res.Type, res.ID, res.VersionID))
	status := http.StatusCreated
	if res.Action == store.ActionUnchanged {
		status = http.StatusOK
	}
	if c.Request().Header.Get("Prefer") == "return=minimal" {
		return c.NoContent(status)
	}
	return fhirJSON(c, status, res.Body)
}

func parseIfNoneExist(cond string) (fhir.Identifier, error) {
	values, err := url.ParseQuery(strings.TrimPrefix(cond, "?"))
	if err != nil {
		return fhir.Identifier{}, newOutcome(http.StatusBadRequest, fhir.IssueInvalid, "If-None-Exist is not a query string")
	}
	if len(values) != 1 || values.Get("identifier") == "" {
		return fhir.Identifier{}, newOutcome(http.StatusBadRequest, fhir.IssueNotSupported, "If-None-Exist supports identifier=system|value only")
	}
	ident, _ := fhir.ParseToken(values.Get("identifier"))
	if ident.Value == "" {
		return fhir.Identifier{}, newOutcome(http.StatusBadRequest, fhir.IssueValue, "If-None-Exist identifier has no value")
	}
	return ident, nil
}

func setVersionHeaders(c echo.Context, r store.Resource) {
	c.Response().Header().Set("ETag", fmt.Sprintf(`W/"%d"`, r.VersionID))
	c.Response().Header().Set("Last-Modified", r.LastUpdated.UTC().Format(http.TimeFormat))
}

func fhirJSON(c echo.Context, status int, v any) error {
	c.Response().Header().Set(echo.HeaderContentType, fhir.MediaType+"; charset=utf-8")
	if raw, ok := v.(json.RawMessage); ok {
		return c.Blob(status, fhir.MediaType+"; charset=utf-8", raw)
	}
	return c.JSON(status, v)
}
