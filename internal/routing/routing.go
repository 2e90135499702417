// Package routing decides which service owns a FHIR request: the FhirRoutingRule table as a
// pure value, with no knowledge of HTTP or SQL. Ambiguity is refused, never guessed.
package routing

import (
	"errors"
	"fmt"
	"sort"
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
type Table struct {
	Rules []Rule
	// Default owns types no rule names; "" means such types have no owner.
	Default string
}

// Errors of a routing decision.
var (
	// ErrNoRoute means no rule owns the type (or its category) and there is no default.
	ErrNoRoute = errors.New("no owner for resource")
	// ErrAmbiguous means the request names no category for a type split by category, where
	// one owner is needed (a write or a read by id).
	ErrAmbiguous = errors.New("ambiguous route")
)

// Owner returns the single owner of a resource of typ with category ("" when the resource
// has none or the caller does not know it).
func (t Table) Owner(typ, category string) (string, error) {
	var whole string
	var split []Rule
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
	if whole != "" {
		return whole, nil
	}
	if len(split) > 0 {
		for _, r := range split {
			if r.Category == category {
				return r.OwnerURL, nil
			}
		}
		if category == "" {
			return "", fmt.Errorf("%w: %s is owned by category (%s); say which", ErrAmbiguous, typ, categories(split))
		}
		return "", fmt.Errorf("%w: %s with category %q (owned categories: %s)", ErrNoRoute, typ, category, categories(split))
	}
	return t.fallback(typ)
}

// Owners returns every owner a search over typ must ask: one for a whole-owned type, several
// (deduplicated, in a stable order) for a type split by category — the fan-out.
func (t Table) Owners(typ string) ([]string, error) {
	seen := map[string]bool{}
	var owners []string
	for _, r := range t.Rules {
		if r.ResourceType == typ && !seen[r.OwnerURL] {
			seen[r.OwnerURL] = true
			owners = append(owners, r.OwnerURL)
		}
	}
	if len(owners) == 0 {
		o, err := t.fallback(typ)
		if err != nil {
			return nil, err
		}
		return []string{o}, nil
	}
	sort.Strings(owners)
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
	return "", fmt.Errorf("%w: %s", ErrNoRoute, typ)
}

func categories(rules []Rule) string {
	s := ""
	for i, r := range rules {
		if i > 0 {
			s += ", "
		}
		s += r.Category
	}
	return s
}
