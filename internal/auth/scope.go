// Package auth issues and verifies the service's bearer tokens and decides what their SMART
// scopes allow. Tokens carry the caller's tenant; every data access is confined to it.
package auth

import (
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
