// Package auth issues and verifies the service's bearer tokens and decides what their SMART
// scopes allow. Tokens carry the caller's tenant; every data access is confined to it.
package auth

import (
	"fmt"
	"strings"
)

// AdminScope grants the admin API (/admin) within the token's tenant.
const AdminScope = "interop/admin"

// Interaction is a FHIR interaction class in SMART v2 terms: c(reate) r(ead) u(pdate) d(elete) s(earch).
type Interaction byte

// SMART v2 interaction letters.
const (
	Create Interaction = 'c'
	Read   Interaction = 'r'
	Update Interaction = 'u'
	Delete Interaction = 'd'
	Search Interaction = 's'
)

// Scopes is the parsed, space-separated scope claim.
type Scopes []string

// ParseScopes splits a scope claim.
func ParseScopes(claim string) Scopes {
	return Scopes(strings.Fields(claim))
}

// Has reports whether the exact scope s was granted.
func (ss Scopes) Has(s string) bool {
	for _, granted := range ss {
		if granted == s {
			return true
		}
	}
	return false
}

// Allows reports whether any scope grants interaction on resourceType. It accepts SMART v2
// (`system/Patient.rs`, `system/*.cruds`) and the v1 forms (`system/Patient.read`,
// `.write`, `.*`) that many clients still send; `user/` and `patient/` scopes are not
// accepted here because the gateway has no user or patient context to narrow them with.
func (ss Scopes) Allows(resourceType string, interaction Interaction) bool {
	for _, s := range ss {
		rest, ok := strings.CutPrefix(s, "system/")
		if !ok {
			continue
		}
		typ, perms, ok := strings.Cut(rest, ".")
		if !ok || (typ != "*" && typ != resourceType) {
			continue
		}
		if grants(perms, interaction) {
			return true
		}
	}
	return false
}

func grants(perms string, in Interaction) bool {
	switch perms {
	case "*":
		return true
	case "read":
		return in == Read || in == Search
	case "write":
		return in == Create || in == Update || in == Delete
	}
	// SMART v2 letters must come in cruds order, each at most once, with optional
	// "?param=value" constraints we do not narrow by yet (refuse rather than over-grant).
	if strings.Contains(perms, "?") {
		return false
	}
	const order = "cruds"
	i := 0
	seen := false
	for _, r := range perms {
		j := strings.IndexRune(order[i:], r)
		if j < 0 {
			return false
		}
		i += j + 1
		if r == rune(in) {
			seen = true
		}
	}
	return seen
}

// systemScope is a parsed SMART system scope: a resource type (or "*") and the v2 letters it
// grants, in cruds order.
type systemScope struct {
	typ, letters string
}

// parseSystemScope reads `system/<Type|*>.<cruds letters|read|write|*>`. Scopes with
// "?param=value" constraints are not read (never granted: we cannot narrow by them yet).
func parseSystemScope(s string) (systemScope, bool) {
	rest, ok := strings.CutPrefix(s, "system/")
	if !ok {
		return systemScope{}, false
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || !(typ == "*" || validResourceTypeName(typ)) {
		return systemScope{}, false
	}
	switch perms {
	case "*":
		return systemScope{typ, "cruds"}, true
	case "read":
		return systemScope{typ, "rs"}, true
	case "write":
		return systemScope{typ, "cud"}, true
	case "":
		return systemScope{}, false
	}
	if !grantsAnyInOrder(perms) {
		return systemScope{}, false
	}
	return systemScope{typ, perms}, true
}

// grantsAnyInOrder reports whether perms are SMART v2 letters in cruds order, each once.
func grantsAnyInOrder(perms string) bool {
	const order = "cruds"
	i := 0
	for _, r := range perms {
		j := strings.IndexRune(order[i:], r)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return perms != ""
}

// validResourceTypeName is the shape of a FHIR resource type name.
func validResourceTypeName(s string) bool {
	if len(s) < 2 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// commonLetters are the letters of "cruds" in both a and b.
func commonLetters(a, b string) string {
	var out strings.Builder
	for _, r := range "cruds" {
		if strings.ContainsRune(a, r) && strings.ContainsRune(b, r) {
			out.WriteRune(r)
		}
	}
	return out.String()
}

// ValidateClientScope says why s cannot be registered for a SMART backend client: only SMART
// system scopes (v2 letters, or the v1 read/write/*) on a resource type or "*", and the
// admin scope, can be; nil when it can.
func ValidateClientScope(s string) error {
	if s == AdminScope {
		return nil
	}
	if strings.Contains(s, "?") {
		return fmt.Errorf("scope %q: constraints (?param=value) are not supported", s)
	}
	if _, ok := parseSystemScope(s); !ok {
		return fmt.Errorf("scope %q: want system/<ResourceType or *>.<cruds letters in order, or read, write, *>, or %s", s, AdminScope)
	}
	return nil
}

// GrantScopes is what a client asking for requested gets when registered for registered: each
// requested system scope narrowed to the types and interactions some registered scope allows
// (system/Observation.cruds asked of a client registered for system/*.rs gives
// system/Observation.rs), written as SMART v2 scopes; any other scope (the admin scope) only
// when registered as asked. user/, patient/, constrained (?…) and unknown scopes are never
// granted. The result is empty when nothing asked is allowed.
func GrantScopes(requested, registered Scopes) Scopes {
	var regs []systemScope
	for _, g := range registered {
		if sc, ok := parseSystemScope(g); ok {
			regs = append(regs, sc)
		}
	}
	letters := map[string]string{} // type → letters granted
	var order []string
	var others Scopes
	for _, r := range requested {
		rs, ok := parseSystemScope(r)
		if !ok {
			if registered.Has(r) && !strings.HasPrefix(r, "system/") && !others.Has(r) {
				others = append(others, r)
			}
			continue
		}
		for _, g := range regs {
			typ := rs.typ
			switch {
			case g.typ == "*":
			case rs.typ == "*":
				typ = g.typ
			case g.typ != rs.typ:
				continue
			}
			common := commonLetters(rs.letters, g.letters)
			if common == "" {
				continue
			}
			if _, seen := letters[typ]; !seen {
				order = append(order, typ)
			}
			letters[typ] = commonLetters("cruds", letters[typ]+common)
		}
	}
	granted := Scopes{}
	for _, typ := range order {
		// A type-specific grant that the wildcard grant already covers adds nothing.
		if typ != "*" && commonLetters(letters[typ], letters["*"]) == letters[typ] {
			continue
		}
		granted = append(granted, "system/"+typ+"."+letters[typ])
	}
	return append(granted, others...)
}
