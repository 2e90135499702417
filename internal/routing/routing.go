// Package routing decides which service owns a FHIR request: the FhirRoutingRule table as a
// pure value, with no knowledge of HTTP or SQL. Ambiguity is refused, never guessed.
//
// A tenant's table holds its enabled rules. A resource type is either owned whole (one rule
// with no category) or split by category (several rules, one owner per category, the explicit
// fan-out); never both. Types no rule names go to the tenant's '*' rule, else to the process
// default (the built-in store in dev), else nowhere (ErrNoRoute). A split type never falls back:
// a category nobody owns has no owner.
package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Builtin names the in-process FHIR store as an owner.
const Builtin = "builtin"

// AnyType is the resource type of a tenant's default rule.
const AnyType = "*"

// Rule is one ResourceOwnership: resourceType (or AnyType), an optional category and the
// owner's base URL (or Builtin).
type Rule struct {
	ResourceType string
	Category     string
	OwnerURL     string
}

// Table is one tenant's enabled rules. The zero Table routes everything to Default.
// NewTable checks the invariants; a Table literal is trusted as loaded from the database,
// which enforces them.
type Table struct {
	Rules []Rule
	// Default owns types no rule names; "" means such types have no owner.
	Default string
}

// Errors of a routing decision. Every refusal is a *RouteError that wraps one of them.
var (
	// ErrNoRoute means no rule owns the type (or its category) and there is no default.
	ErrNoRoute = errors.New("no owner for resource")
	// ErrAmbiguous means one owner is needed (a write, or a read by id) but the request does not
	// say which: a type split by category without a category, or categories of several owners.
	ErrAmbiguous = errors.New("ambiguous route")
)

// RouteError explains a refused route in words fit for an OperationOutcome. Reason is
// ErrNoRoute or ErrAmbiguous (errors.Is works on the RouteError itself). Suggested statuses:
// ErrAmbiguous → 400 for a request that must name a category, 422 for a resource whose
// categories span owners; ErrNoRoute → 404 for reads and searches, 422 for writes.
type RouteError struct {
	Reason       error
	ResourceType string
	// Categories are the categories the request named, if any.
	Categories []string
	// Owned are the categories that have an owner, for a type split by category.
	Owned []string
}

func (e *RouteError) Error() string {
	switch {
	case errors.Is(e.Reason, ErrAmbiguous) && len(e.Categories) == 0:
		return fmt.Sprintf("%s is owned by category (%s): the request must name one", e.ResourceType, strings.Join(e.Owned, ", "))
	case errors.Is(e.Reason, ErrAmbiguous):
		return fmt.Sprintf("%s with categories %s spans several owners; one request can go to one owner only",
			e.ResourceType, strings.Join(e.Categories, ", "))
	case len(e.Owned) > 0:
		return fmt.Sprintf("no service owns %s with category %s (owned categories: %s)",
			e.ResourceType, strings.Join(e.Categories, ", "), strings.Join(e.Owned, ", "))
	}
	return "no service owns " + e.ResourceType
}

// Unwrap returns Reason.
func (e *RouteError) Unwrap() error { return e.Reason }

// NewTable builds a table from rules (loaded from anywhere: the database, a file, a test),
// normalising each and refusing what the database would refuse: a bad rule, two owners of one
// (type, category), a type owned whole and split at once, a '*' rule with a category.
func NewTable(rules []Rule, defaultOwner string) (Table, error) {
	var problems []string
	t := Table{Default: defaultOwner, Rules: make([]Rule, 0, len(rules))}
	if defaultOwner != "" {
		if _, err := NormalizeOwnerURL(defaultOwner); err != nil {
			problems = append(problems, "default owner: "+err.Error())
		}
	}
	type key struct{ typ, category string }
	owners := map[key]string{}
	whole, split := map[string]bool{}, map[string]bool{}
	for i, r := range rules {
		n, ps := r.Normalize()
		for _, p := range ps {
			problems = append(problems, fmt.Sprintf("rule %d (%s): %s", i, r, p))
		}
		if len(ps) > 0 {
			continue
		}
		k := key{n.ResourceType, n.Category}
		if o, dup := owners[k]; dup {
			problems = append(problems, fmt.Sprintf("rule %d (%s): %s is already owned by %s", i, n, k.typ+categorySuffix(k.category), o))
			continue
		}
		owners[k] = n.OwnerURL
		if n.Category == "" {
			whole[n.ResourceType] = true
		} else {
			split[n.ResourceType] = true
		}
		t.Rules = append(t.Rules, n)
	}
	for typ := range whole {
		if split[typ] {
			problems = append(problems, fmt.Sprintf("%s is owned whole and split by category at once; that is ambiguous", typ))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return Table{}, fmt.Errorf("invalid routing table: %s", strings.Join(problems, "; "))
	}
	return t, nil
}

func categorySuffix(category string) string {
	if category == "" {
		return ""
	}
	return " category " + category
}

// String renders the rule as "Type[/category] → owner".
func (r Rule) String() string {
	s := r.ResourceType
	if r.Category != "" {
		s += "/" + r.Category
	}
	return s + " → " + r.OwnerURL
}

// IsSplit reports whether typ is owned by category (a search without a category fans out).
func (t Table) IsSplit(typ string) bool {
	for _, r := range t.Rules {
		if r.ResourceType == typ && r.Category != "" {
			return true
		}
	}
	return false
}

// rulesOf returns the whole-type owner of typ ("" if none) and its category rules.
func (t Table) rulesOf(typ string) (whole string, split []Rule) {
	for _, r := range t.Rules {
		if r.ResourceType != typ {
			continue
		}
		if r.Category == "" {
			whole = r.OwnerURL
		} else {
			split = append(split, r)
		}
	}
	return whole, split
}

// Owner returns the single owner of a resource of typ with category ("" when the resource
// has none or the caller does not know it).
func (t Table) Owner(typ, category string) (string, error) {
	if category == "" {
		return t.OwnerByCategories(typ, nil)
	}
	return t.OwnerByCategories(typ, []string{category})
}

// OwnerByCategories returns the single owner of a resource of typ that carries categories (a
// resource's category codes; "system|code" tokens are read as their code). A whole-owned type
// ignores them; for a split type the categories must lead to exactly one owner.
func (t Table) OwnerByCategories(typ string, categories []string) (string, error) {
	whole, split := t.rulesOf(typ)
	if whole != "" {
		return whole, nil
	}
	if len(split) == 0 {
		return t.fallback(typ)
	}
	categories = codes(categories)
	var owners []string
	for _, c := range categories {
		for _, r := range split {
			if r.Category == c && !slices.Contains(owners, r.OwnerURL) {
				owners = append(owners, r.OwnerURL)
			}
		}
	}
	e := &RouteError{ResourceType: typ, Categories: categories, Owned: categoryNames(split)}
	switch {
	case len(owners) == 1:
		return owners[0], nil
	case len(categories) == 0 || len(owners) > 1:
		e.Reason = ErrAmbiguous
	default:
		e.Reason = ErrNoRoute
	}
	return "", e
}

// Owners returns every owner a search over typ must ask: one for a whole-owned type, several
// (deduplicated, sorted) for a type split by category — the fan-out.
func (t Table) Owners(typ string) ([]string, error) {
	return t.SearchOwners(typ, nil)
}

// SearchOwners returns the owners a search over typ asks when it names categories (the values
// of its category parameter, OR-ed; "system|code" tokens are read as their code): for a split
// type, the owners of the named categories (categories nobody owns match nothing, and if none
// is owned the search has no owner); all owners when none is named; for a whole-owned type,
// its owner. Owners are deduplicated and sorted.
func (t Table) SearchOwners(typ string, categories []string) ([]string, error) {
	whole, split := t.rulesOf(typ)
	if whole != "" {
		return []string{whole}, nil
	}
	if len(split) == 0 {
		o, err := t.fallback(typ)
		if err != nil {
			return nil, err
		}
		return []string{o}, nil
	}
	categories = codes(categories)
	var owners []string
	for _, r := range split {
		if (len(categories) == 0 || slices.Contains(categories, r.Category)) && !slices.Contains(owners, r.OwnerURL) {
			owners = append(owners, r.OwnerURL)
		}
	}
	if len(owners) == 0 {
		return nil, &RouteError{Reason: ErrNoRoute, ResourceType: typ, Categories: categories, Owned: categoryNames(split)}
	}
	slices.Sort(owners)
	return owners, nil
}

func (t Table) fallback(typ string) (string, error) {
	for _, r := range t.Rules {
		if r.ResourceType == AnyType && r.Category == "" {
			return r.OwnerURL, nil
		}
	}
	if t.Default != "" {
		return t.Default, nil
	}
	return "", &RouteError{Reason: ErrNoRoute, ResourceType: typ}
}

// codes reads "system|code" tokens as their code and drops empty ones.
func codes(categories []string) []string {
	out := make([]string, 0, len(categories))
	for _, c := range categories {
		if i := strings.LastIndexByte(c, '|'); i >= 0 {
			c = c[i+1:]
		}
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func categoryNames(rules []Rule) []string {
	names := make([]string, 0, len(rules))
	for _, r := range rules {
		names = append(names, r.Category)
	}
	slices.Sort(names)
	return names
}

// FallbackOwner is the owner of the types no rule names: the '*' rule's owner, else Default
// ("" when there is neither).
func (t Table) FallbackOwner() string {
	o, _ := t.fallback(AnyType)
	return o
}
