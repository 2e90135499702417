package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// searchsetOf decodes a searchset: its self and next links, its match ids and the diagnostics
// of its outcome entries.
func searchsetOf(t *testing.T, body []byte) (self, next string, matches int, outcomes string) {
	t.Helper()
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Link         []struct{ Relation, URL string }
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Search   struct{ Mode string }
		}
	}
	require.NoError(t, json.Unmarshal(body, &b), string(body))
	require.Equal(t, "searchset", b.Type, string(body))
	for _, l := range b.Link {
		switch l.Relation {
		case "self":
			self = l.URL
		case "next":
			next = l.URL
		}
	}
	for _, e := range b.Entry {
		switch e.Search.Mode {
		case "outcome":
			outcomes += string(e.Resource) + "\n"
		case "match", "":
			matches++
		}
	}
	return self, next, matches, outcomes
}

// Prefer: handling=lenient reaches every owner of a search (issue #14: the gateway dropped
// it): unknown parameters are then ignored and reported in an outcome entry, and the self
// link shows only the parameters used; strict, or no Prefer (the declared default), refuses
// them with 400. The built-in store, an external owner and a fan-out over two owners alike.
func TestSearchPreferHandling(t *testing.T) {
	t.Parallel()
	o := newOwnersSetup(t)
	lenient := map[string]string{"Prefer": "handling=lenient"}
	strict := map[string]string{"Prefer": "handling=strict"}
	o.createPatient(o.tokA, apiMRN, "len-1")                                                                              // at the patients owner
	o.createPatient(o.tokA, apiMRN, "len-2")                                                                              // at the patients owner
	o.create(t, "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"`+apiMRN+`","value":"len-1"}]}`) // built-in
	o.create(t, "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"`+apiMRN+`","value":"len-2"}]}`)
	o.create(t, "Observation", observation("vital-signs", "8867-4"))
	o.create(t, "Observation", observation("laboratory", "2345-7"))

	for _, tc := range []struct {
		name, typ, query string
		matches          int
	}{
		{"built-in", "Practitioner", "identifier=" + url.QueryEscape(apiMRN+"|len-1"), 1},
		{"external owner", "Patient", "identifier=" + url.QueryEscape(apiMRN+"|len-1"), 1},
		{"fan-out", "Observation", "code=8867-4,2345-7", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/fhir/" + tc.typ + "?" + tc.query + "&bogus-param=1&_count=1"
			for _, h := range []map[string]string{nil, strict} {
				rec := o.do(apiRequest{path: path, token: o.tokA, header: h})
				m := requireAPIOutcome(t, rec, http.StatusBadRequest, "not-supported")
				require.Contains(t, outcomeText(m), "bogus-param")
			}
			rec := o.do(apiRequest{path: path, token: o.tokA, header: lenient})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			o.requireNoOwnerURL(t, rec)
			self, next, matches, outcomes := searchsetOf(t, rec.Body.Bytes())
			require.Contains(t, outcomes, "bogus-param", "the ignored parameter is reported: %s", rec.Body.String())
			require.NotContains(t, self, "bogus-param", "the self link shows only the parameters used")
			require.Contains(t, self, strings.SplitN(tc.query, "=", 2)[0], "the used parameters stay in the self link")
			require.Equal(t, 1, matches, "_count=1 was used")
			total := matches
			for next != "" {
				require.NotContains(t, next, "bogus-param")
				// The next link works without Prefer: it carries only the parameters used.
				rec = o.get(strings.TrimPrefix(next, apiBaseURL), o.tokA)
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				var n int
				_, next, n, _ = searchsetOf(t, rec.Body.Bytes())
				total += n
			}
			require.Equal(t, tc.matches, total, "the used parameters filtered")
		})
	}

	t.Run("batch entry", func(t *testing.T) {
		bundle := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?bogus-param=1"}},{"request":{"method":"GET","url":"Observation?bogus-param=1"}}]}`
		rec := o.post("/fhir", o.tokA, bundle, lenient)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		for _, e := range entriesOf(t, rec.Body.Bytes()) {
			require.Equal(t, "200 OK", e["response"].(map[string]any)["status"], rec.Body.String())
		}
		rec = o.post("/fhir", o.tokA, bundle, nil)
		for _, e := range entriesOf(t, rec.Body.Bytes()) {
			require.Equal(t, "400 Bad Request", e["response"].(map[string]any)["status"], rec.Body.String())
		}
	})

	t.Run("declared", func(t *testing.T) {
		rec := o.get("/fhir/metadata", "")
		rest := decodeBody(t, rec)["rest"].([]any)[0].(map[string]any)
		doc, _ := rest["documentation"].(string)
		require.Contains(t, doc, "handling=lenient")
		require.Contains(t, doc, "strict")
	})
	_ = context.Background()
}
