package temporaldev

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/authorization"

	"github.com/nhp/interop/internal/oidctest"
)

func TestClaimMapperRoles(t *testing.T) {
	t.Parallel()
	idp := oidctest.New(t, "temporal-ui", "ui-secret")
	newMapper := func(rolesClaim string) *claimMapper {
		o := OIDC{Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, RolesClaim: rolesClaim,
			ReadRoles: []string{"support", "Support Staff"}, WriteRoles: []string{"operators"}}
		m, err := newClaimMapper(context.Background(), o.withDefaults(), "default", "the-service-token", slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		return m
	}
	groups, nested := newMapper(""), newMapper("realm_access.roles")
	reader := &authorization.Claims{Subject: "u1", AuthType: authTypeOIDC, System: authorization.RoleReader,
		Namespaces: map[string]authorization.Role{"default": authorization.RoleReader}}
	writer := &authorization.Claims{Subject: "u1", AuthType: authTypeOIDC, System: authorization.RoleReader,
		Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	noRole := &authorization.Claims{Subject: "u1", AuthType: authTypeOIDC}
	service := &authorization.Claims{Subject: serviceSubject, AuthType: authTypeSelf, System: authorization.RoleAdmin}
	bearer := func(claims map[string]any) string {
		claims["sub"] = "u1"
		return "Bearer " + idp.IDToken(claims)
	}

	for _, tc := range []struct {
		name   string
		mapper *claimMapper
		header string
		want   *authorization.Claims
	}{
		{"reader group", groups, bearer(map[string]any{"groups": []string{"staff", "support"}}), reader},
		{"role with a space", groups, bearer(map[string]any{"groups": []string{"Support Staff"}}), reader},
		{"writer group", groups, bearer(map[string]any{"groups": []string{"operators"}}), writer},
		{"both: the stronger wins", groups, bearer(map[string]any{"groups": []string{"support", "operators"}}), writer},
		{"one group as a string", groups, bearer(map[string]any{"groups": "operators"}), writer},
		{"no matching group", groups, bearer(map[string]any{"groups": []string{"staff"}}), noRole},
		{"no groups claim", groups, bearer(map[string]any{}), noRole},
		{"groups of another type", groups, bearer(map[string]any{"groups": 7}), noRole},
		{"role names compare exactly", groups, bearer(map[string]any{"groups": []string{"Operators"}}), noRole},
		{"nested claim", nested, bearer(map[string]any{"realm_access": map[string]any{"roles": []string{"support"}}}), reader},
		{"nested claim missing", nested, bearer(map[string]any{"groups": []string{"operators"}}), noRole},
		{"the service's own token", groups, "Bearer the-service-token", service},
		{"bearer in lower case", groups, "bearer the-service-token", service},
	} {
		got, err := tc.mapper.GetClaims(&authorization.AuthInfo{AuthToken: tc.header})
		require.NoError(t, err, tc.name)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: claims (-want +got):\n%s", tc.name, diff)
		}
	}

	stranger := oidctest.New(t, idp.ClientID, idp.ClientSecret)
	hour := time.Hour
	for name, header := range map[string]string{ //nolint:gosec // G101: tokens the mapper must refuse
		"not a bearer":         "Basic dXNlcjpwYXNz",
		"empty bearer":         "Bearer ",
		"a guess at the token": "Bearer the-service-tokeN",
		"forged":               "Bearer " + idp.Forge(map[string]any{"groups": []string{"operators"}}),
		"another issuer":       "Bearer " + stranger.IDToken(map[string]any{"groups": []string{"operators"}}),
		"another audience":     bearer(map[string]any{"aud": "another-client", "groups": []string{"operators"}}),
		"expired":              bearer(map[string]any{"iat": time.Now().Add(-2 * hour).Unix(), "exp": time.Now().Add(-hour).Unix(), "groups": []string{"operators"}}),
		"without expiry":       bearer(map[string]any{"exp": nil, "groups": []string{"operators"}}),
	} {
		_, err := groups.GetClaims(&authorization.AuthInfo{AuthToken: header})
		require.Error(t, err, name)
	}
}
