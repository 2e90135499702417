package adminapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Admin bodies and query parameters PostgreSQL cannot store (invalid UTF-8, a lone surrogate,
// NUL) are 400 invalid naming the problem (issue #14), never a 5xx from the database.
func TestAdminRefusesTextPostgresCannotStore(t *testing.T) {
	t.Parallel()
	a := newConnAPI(t)
	for _, v := range []struct{ value, want string }{
		{"\"x\xffy\"", "UTF-8"},
		{`"x\ud800y"`, "lone surrogate"},
		{`"x\u0000y"`, "NUL"},
	} {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodPost, "/admin/routing-rules", `{"resourceType":"Patient","ownerUrl":"builtin","description":` + v.value + `}`},
			{http.MethodPost, "/admin/connectors", `{"name":` + v.value + `,"facilityId":"fac-1","protocol":"mllp","direction":"inbound"}`},
			{http.MethodPost, "/admin/connectors", `{"name":"n","facilityId":"fac-1","protocol":"mllp","direction":"inbound","settings":{"note":` + v.value + `}}`},
			{http.MethodPost, "/admin/messages/reprocess", `{"status":` + v.value + `}`},
		} {
			rec := a.call(r.method, r.path, a.tokA, r.body, map[string]string{"Content-Type": "application/json"})
			m := requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
			require.Contains(t, outcomeText(m), v.want, "%s %s", r.method, r.path)
		}
	}
	for _, q := range []string{"?controlId=%00", "?controlId=%FF", "?type=%C3"} {
		rec := a.call(http.MethodGet, "/admin/messages"+q, a.tokA, "", nil)
		requireAPIOutcome(t, rec, http.StatusBadRequest, "invalid")
	}
}
