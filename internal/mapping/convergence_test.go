package mapping_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
)

// memStore applies transaction Bundles with the semantics of internal/store and
// activities/route.go: entries in order, urn:uuid references rewritten to earlier entries'
// ids, conditional update (PUT Type?identifier=) replacing the match unless it holds a newer
// source event time, conditional create (POST + ifNoneExist) creating only when nothing
// matches, and lists marked fhir.ExtMergeList merged with fhir.MergeLists.
type memStore struct {
	byType map[string][]map[string]any
}

func (s *memStore) apply(t *testing.T, b *fhir.Bundle) {
	t.Helper()
	refs := map[string]string{}
	written := map[string]bool{} // see activities.RouteBundle
	for i, e := range b.Entry {
		body, err := fhir.RewriteReferences(e.Resource, refs)
		require.NoError(t, err)
		head, err := fhir.ReadHead(body)
		require.NoError(t, err)
		var query string
		if e.Request.Method == "PUT" {
			_, query, _ = strings.Cut(e.Request.URL, "?")
		} else {
			query = e.Request.IfNoneExist
		}
		q, err := url.ParseQuery(query)
		require.NoError(t, err)
		ident, _ := fhir.ParseToken(q.Get("identifier"))
		var res map[string]any
		require.NoError(t, json.Unmarshal(body, &res))
		list := s.byType[head.ResourceType]
		idx := -1
		for j, r := range list {
			if hasIdent(r, ident) {
				require.Equal(t, -1, idx, "entry %d: two %s match %v", i, head.ResourceType, ident)
				idx = j
			}
		}
		id := head.ResourceType + "-" + ident.Token()
		switch {
		case idx < 0:
			s.byType[head.ResourceType] = append(list, res)
			if e.Request.Method == "PUT" {
				written[head.ResourceType+"/"+id] = true
			}
		case e.Request.Method == "PUT" && len(fhir.MergedLists(body)) > 0:
			merged, _, err := fhir.MergeLists(mustJSON(t, list[idx]), body, written)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(merged, &m))
			list[idx] = m
		case e.Request.Method == "PUT":
			applied := !newer(list[idx], body)
			if applied {
				list[idx] = res
			}
			written[head.ResourceType+"/"+id] = applied
		}
		refs[e.FullURL] = head.ResourceType + "/" + id
	}
}

func hasIdent(r map[string]any, want fhir.Identifier) bool {
	ids, _ := r["identifier"].([]any)
	for _, x := range ids {
		m, _ := x.(map[string]any)
		sys, _ := m["system"].(string)
		if sys == want.System && m["value"] == want.Value {
			return true
		}
	}
	return false
}

// newer reports whether the stored resource holds a later event than the incoming body.
func newer(stored map[string]any, incoming []byte) bool {
	raw, _ := json.Marshal(stored)
	st, ok1 := fhir.SourceEventTime(raw)
	in, ok2 := fhir.SourceEventTime(incoming)
	return ok1 && ok2 && st.After(in)
}

// TestConvergence: A01 → A08 → A03 → A08 about one patient and visit, in order, replayed, and
// out of order, leave exactly one Patient and one Encounter with the newest state.
func TestConvergence(t *testing.T) {
	files := []string{"adt_a01_raster.hl7", "convergence_a08_inpatient.hl7", "adt_a03_raster.hl7", "adt_a08_raster.hl7"}
	var bundles []*fhir.Bundle
	for _, f := range files {
		path := filepath.Join("testdata", f)
		if strings.HasPrefix(f, "convergence_") {
			path = filepath.Join("testdata", "sequences", f)
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		bundles = append(bundles, mapFile(t, raw))
	}
	orders := map[string][]int{
		"in order":        {0, 1, 2, 3},
		"replayed":        {0, 1, 2, 3, 0, 1, 2, 3},
		"reversed":        {3, 2, 1, 0},
		"discharge first": {2, 0, 3, 1},
		"each twice":      {0, 0, 1, 1, 2, 2, 3, 3},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			s := &memStore{byType: map[string][]map[string]any{}}
			for _, i := range order {
				s.apply(t, bundles[i])
			}
			require.Len(t, s.byType["Patient"], 1)
			require.Len(t, s.byType["Encounter"], 1)
			require.Len(t, s.byType["RelatedPerson"], 1, "NK1 set id 1 of the same patient is one contact")
			enc := s.byType["Encounter"][0]
			require.Equal(t, "finished", enc["status"], "A03 is the newest event about the visit")
			require.Equal(t, map[string]any{"start": "2024-02-07", "end": "2024-02-09"}, enc["period"])
			pat := s.byType["Patient"][0]
			addr := pat["address"].([]any)[0].(map[string]any)
			require.Equal(t, "Cambridge", addr["city"], "the A08 of 10 February is the newest patient state")
			ts, ok := fhir.SourceEventTime(mustJSON(t, pat))
			require.True(t, ok)
			require.Equal(t, time.Date(2024, 2, 10, 10, 0, 0, 0, time.UTC), ts)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
