package fhirclient_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

var reportIdent = fhir.Identifier{System: "urn:id:LAB", Value: "ACC-1"}

func reportAt(event time.Time, status string, results ...string) []byte {
	var refs []string
	for _, r := range results {
		refs = append(refs, `{"reference":"Observation/`+r+`"}`)
	}
	return []byte(`{"resourceType":"DiagnosticReport","meta":{"extension":[{"url":"` + fhir.ExtSourceEventTime + `","valueDateTime":"` +
		event.UTC().Format(time.RFC3339Nano) + `"},{"url":"` + fhir.ExtMergeList + `","valueCode":"result"}]},` +
		`"identifier":[{"system":"urn:id:LAB","value":"ACC-1"}],"status":"` + status + `","code":{"text":"panel"},"result":[` + strings.Join(refs, ",") + `]}`)
}

func (o *ownerServer) report(t *testing.T) (status string, results []string) {
	t.Helper()
	res, err := o.st.Search(context.Background(), newestTenant, "DiagnosticReport", store.Query{Identifier: &reportIdent})
	require.NoError(t, err)
	require.Len(t, res.Resources, 1)
	var r struct {
		Status string
		Result []struct{ Reference string }
	}
	require.NoError(t, jsonUnmarshal(res.Resources[0].Body, &r))
	for _, x := range r.Result {
		results = append(results, strings.TrimPrefix(x.Reference, "Observation/"))
	}
	return r.Status, results
}

// An external owner's report merges its result list through read, merge and If-Match write;
// a writer coming between makes the client read and merge again, losing neither's results.
func TestConditionalUpdateMerge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o, c := newOwner(t)
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	merge := func(body []byte, written map[string]bool) func([]byte) ([]byte, error) {
		return func(stored []byte) ([]byte, error) {
			m, _, err := fhir.MergeLists(stored, body, written)
			return m, err
		}
	}

	body := reportAt(t0, "final", "o1", "o2", "o3")
	res, err := c.ConditionalUpdateMerge(ctx, "DiagnosticReport", reportIdent, merge(body, nil))
	require.NoError(t, err)
	require.True(t, res.Created)
	o.requests()

	body = reportAt(t0.Add(time.Hour), "corrected", "o2")
	_, err = c.ConditionalUpdateMerge(ctx, "DiagnosticReport", reportIdent, merge(body, map[string]bool{"Observation/o2": true}))
	require.NoError(t, err)
	status, results := o.report(t)
	require.Equal(t, "corrected", status)
	require.Equal(t, []string{"o1", "o2", "o3"}, results)
	reqs := o.requests()
	require.Len(t, reqs, 2)
	require.Contains(t, reqs[1], `W/"1"`, "written on the version read")

	// Between the read and the write another message adds o4: the If-Match write is refused,
	// the client reads again and merges into that.
	var once sync.Once
	o.before = func(r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(func() {
				other := reportAt(t0.Add(3*time.Hour), "corrected", "o4")
				_, err := o.st.ConditionalUpdateMerge(context.Background(), newestTenant, other, reportIdent, func(stored []byte) ([]byte, error) {
					m, _, err := fhir.MergeLists(stored, other, map[string]bool{"Observation/o4": true})
					return m, err
				})
				require.NoError(t, err)
			})
		}
	}
	body = reportAt(t0.Add(2*time.Hour), "final", "o5")
	_, err = c.ConditionalUpdateMerge(ctx, "DiagnosticReport", reportIdent, merge(body, map[string]bool{"Observation/o5": true}))
	require.NoError(t, err)
	status, results = o.report(t)
	require.Equal(t, "corrected", status, "the newest event's status stays")
	require.Equal(t, []string{"o1", "o2", "o3", "o4", "o5"}, results)
	require.Len(t, o.requests(), 4, "read, refused write, read again, write")
}
