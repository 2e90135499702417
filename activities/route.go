package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirclient"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// RouteResult counts what the owners did with the mapped resources.
type RouteResult struct {
	Created   int
	Updated   int
	Unchanged int
}

// RouteBundle applies the attempt's mapped transaction Bundle entry by entry, each to the
// service that owns its resource type, rewriting urn:uuid references to the ids the owners
// assigned, and links every resource to the message. Entries are conditional writes keyed on
// business identifiers, so a retry or a replay converges on the same resources.
func (a *Activities) RouteBundle(ctx context.Context, ref MessageRef) (RouteResult, error) {
	q := db.New(a.Pool)
	attempt, err := q.Hl7ProcessingAttemptGet(ctx, ref.AttemptID)
	if err != nil {
		return RouteResult{}, fmt.Errorf("load attempt: %w", err)
	}
	var bundle fhir.Bundle
	if err := json.Unmarshal(attempt.MappedBundle, &bundle); err != nil {
		return RouteResult{}, temporal.NewNonRetryableApplicationError("attempt has no mapped bundle", ErrTypeMapping, err)
	}
	table, err := a.routingTable(ctx, attempt.TenantID)
	if err != nil {
		return RouteResult{}, err
	}

	var res RouteResult
	refs := map[string]string{}
	for i, entry := range bundle.Entry {
		body, err := fhir.RewriteReferences(entry.Resource, refs)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d: %v", i, err), ErrTypeMapping, err)
		}
		head, err := fhir.ReadHead(body)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d: %v", i, err), ErrTypeMapping, err)
		}
		ident, err := conditionalIdentifier(entry.Request)
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("entry %d (%s): %v", i, head.ResourceType, err), ErrTypeMapping, err)
		}
		owner, err := table.Owner(head.ResourceType, "")
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRouting, err)
		}
		id, action, err := a.conditionalCreate(ctx, attempt.TenantID, owner, head.ResourceType, body, ident)
		if err != nil {
			return res, err
		}
		if entry.FullURL != "" {
			refs[entry.FullURL] = head.ResourceType + "/" + id
		}
		switch action {
		case store.ActionCreated:
			res.Created++
		case store.ActionUpdated:
			res.Updated++
		default:
			res.Unchanged++
		}
		if err := q.Hl7ResourceLinkInsert(ctx, db.Hl7ResourceLinkInsertParams{
			TenantID: attempt.TenantID, MessageID: ref.MessageID, AttemptID: &ref.AttemptID,
			ResourceType: head.ResourceType, ResourceID: id, Action: string(action), Owner: owner,
		}); err != nil {
			return res, fmt.Errorf("link %s/%s: %w", head.ResourceType, id, err)
		}
	}
	return res, nil
}

func (a *Activities) routingTable(ctx context.Context, tenant string) (routing.Table, error) {
	rows, err := db.New(a.Pool).FhirRoutingRuleListEnabled(ctx, tenant)
	if err != nil {
		return routing.Table{}, fmt.Errorf("load routing rules: %w", err)
	}
	t := routing.Table{Default: a.DefaultOwner}
	for _, r := range rows {
		t.Rules = append(t.Rules, routing.Rule{ResourceType: r.ResourceType, Category: r.Category, OwnerURL: r.OwnerURL})
	}
	return t, nil
}

// conditionalCreate writes to the builtin store in-process, or to an external owner over HTTP.
func (a *Activities) conditionalCreate(ctx context.Context, tenant, owner, typ string, body []byte, ident fhir.Identifier) (string, store.Action, error) {
	if owner == routing.Builtin {
		r, err := a.Store.ConditionalCreate(ctx, tenant, body, ident)
		switch {
		case errors.Is(err, fhir.ErrInvalidResource), errors.Is(err, store.ErrMultipleMatches):
			return "", "", temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeOwnerRefused, err)
		case err != nil:
			return "", "", fmt.Errorf("builtin store: %w", err)
		}
		return r.ID, r.Action, nil
	}
	c := fhirclient.Client{BaseURL: owner, HTTP: a.HTTP}
	r, err := c.ConditionalCreate(ctx, typ, body, ident)
	if fhirclient.IsPermanent(err) {
		return "", "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s refused %s: %v", owner, typ, err), ErrTypeOwnerRefused, err)
	}
	if err != nil {
		return "", "", fmt.Errorf("owner %s: %w", owner, err)
	}
	if r.Created {
		return r.ID, store.ActionCreated, nil
	}
	return r.ID, store.ActionUnchanged, nil
}

// conditionalIdentifier reads the identifier of an entry's ifNoneExist ("identifier=sys|val").
// Every mapped entry must be conditional: an unconditional create would duplicate on replay.
func conditionalIdentifier(req *fhir.EntryRequest) (fhir.Identifier, error) {
	if req == nil || req.IfNoneExist == "" {
		return fhir.Identifier{}, errors.New("entry is not a conditional create")
	}
	values, err := url.ParseQuery(req.IfNoneExist)
	if err != nil {
		return fhir.Identifier{}, fmt.Errorf("ifNoneExist %q: %w", req.IfNoneExist, err)
	}
	token := values.Get("identifier")
	if token == "" || !strings.Contains(token, "|") {
		return fhir.Identifier{}, fmt.Errorf("ifNoneExist %q: want identifier=system|value", req.IfNoneExist)
	}
	ident, _ := fhir.ParseToken(token)
	return ident, nil
}
