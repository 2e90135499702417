package fhirserver_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhirserver"
)

// Text PostgreSQL cannot store is the client's error, 400 invalid naming the problem, in
// every body the handler takes (it serves `interop store` alone, with no gateway in front):
// never a 500 from the database (issue #14).
func TestTextPostgresCannotStore(t *testing.T) {
	t.Parallel()
	e := setup(t, fhirserver.Options{})
	for value, want := range map[string]string{
		"\"Do\xffe\"":  "UTF-8",
		`"Do\ud800e"`:  "lone surrogate",
		`"Do\u0000e"`:  "NUL",
		`"\udc00\\u0"`: "lone surrogate",
	} {
		patient := `{"resourceType":"Patient","name":[{"family":` + value + `}]}`
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/Patient", patient},
			{"PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","name":[{"family":` + value + `}]}`},
			{"PUT", "/Patient?identifier=a|b", patient},
			{"POST", "/", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + patient + `,"request":{"method":"POST","url":"Patient"}}]}`},
			{"POST", "/", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + patient + `,"request":{"method":"POST","url":"Patient"}}]}`},
		} {
			m := requireOutcome(t, e.do(tA, r.method, r.path, r.body), http.StatusBadRequest)
			issue := m["issue"].([]any)[0].(map[string]any)
			require.Equal(t, "invalid", issue["code"], "%s %s", r.method, r.path)
			require.Contains(t, issue["diagnostics"], want, "%s %s", r.method, r.path)
		}
	}
	// A literal backslash-u in text is not an escape: it is stored.
	require.Equal(t, http.StatusCreated, e.do(tA, "POST", "/Patient", `{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}`).status)
}
