package auth

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestGrantScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, requested, registered, want string
	}{
		{"exact", "system/Observation.rs", "system/Observation.rs", "system/Observation.rs"},
		{"narrowed by letters", "system/Observation.cruds", "system/Observation.rs", "system/Observation.rs"},
		{"narrowed by type", "system/*.rs", "system/Observation.rs system/Patient.r", "system/Observation.rs system/Patient.r"},
		{"wildcard registration", "system/Observation.rs", "system/*.cruds", "system/Observation.rs"},
		{"v1 request", "system/Patient.read", "system/Patient.cruds", "system/Patient.rs"},
		{"not registered", "system/Patient.rs", "system/Observation.rs", ""},
		{"no common letter", "system/Observation.cud", "system/Observation.rs", ""},
		{"admin only when registered", "interop/admin system/Patient.r", "system/Patient.rs", "system/Patient.r"},
		{"admin registered", "interop/admin", "interop/admin system/*.rs", "interop/admin"},
		{"user and patient never", "user/Patient.rs patient/Patient.rs", "system/*.cruds", ""},
		{"constrained never", "system/Observation.rs?category=laboratory", "system/*.cruds", ""},
		{"unknown never", "openid fhirUser offline_access", "system/*.cruds", ""},
		{"covered by wildcard", "system/*.rs system/Patient.r", "system/*.cruds", "system/*.rs"},
		{"merged", "system/Patient.r system/Patient.s", "system/Patient.rs", "system/Patient.rs"},
		{"letters out of order", "system/Patient.sr", "system/*.cruds", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := GrantScopes(ParseScopes(tc.requested), ParseScopes(tc.registered))
			if diff := cmp.Diff(ParseScopes(tc.want), got, cmp.Comparer(func(a, b Scopes) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal([]string(a), []string(b))
			})); diff != "" {
				t.Fatalf("GrantScopes(%q, %q) (-want +got):\n%s", tc.requested, tc.registered, diff)
			}
			// Never more than registered: every granted scope is allowed by the registration.
			for _, g := range got {
				if sc, ok := parseSystemScope(g); ok {
					for _, r := range sc.letters {
						typ := sc.typ
						if typ == "*" {
							typ = "Observation"
						}
						require.True(t, ParseScopes(tc.registered).Allows(typ, Interaction(r)), "%s exceeds %s", g, tc.registered)
					}
				}
			}
		})
	}
}

func TestValidateClientScope(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"system/Observation.rs", "system/*.cruds", "system/Patient.read", "interop/admin", "system/Patient.*"} {
		require.NoError(t, ValidateClientScope(ok), ok)
	}
	for _, bad := range []string{"user/Patient.rs", "system/Patient.sr", "system/Patient.rs?x=y", "openid", "system/patient.rs", "system/Patient.", ""} {
		require.Error(t, ValidateClientScope(bad), bad)
	}
}
