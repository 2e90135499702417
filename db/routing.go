package db

import (
	"context"
	"fmt"

	"github.com/nhp/interop/internal/routing"
)

// RoutingTable reads tenant's enabled FhirRoutingRules into a routing.Table whose default
// owner (for types no rule names) is defaultOwner. The gateway and the inbound pipeline's
// Route step both route with it, so a rule means the same to both.
func (q *Queries) RoutingTable(ctx context.Context, tenant, defaultOwner string) (routing.Table, error) {
	rows, err := q.FhirRoutingRuleListEnabled(ctx, tenant)
	if err != nil {
		return routing.Table{}, fmt.Errorf("load routing rules: %w", err)
	}
	t := routing.Table{Default: defaultOwner, Rules: make([]routing.Rule, 0, len(rows))}
	for _, r := range rows {
		t.Rules = append(t.Rules, routing.Rule{ResourceType: r.ResourceType, Category: r.Category, OwnerURL: r.OwnerURL})
	}
	return t, nil
}
