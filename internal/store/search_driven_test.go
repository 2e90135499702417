package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/store"
)

// TestSearchDrivenBySelectiveParameters checks searches that start from a selective
// parameter (patient, subject, identifier, encounter) against the same filter computed in Go:
// every combination with other parameters, ORed values, several selective parameters,
// resources matching through several index rows, both sorts, and paging by cursor.
func TestSearchDrivenBySelectiveParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tick := 0
	s.Now = func() time.Time { tick++; return t0.Add(time.Duration(tick/2) * time.Second) } // ties in _lastUpdated

	type obs struct {
		id, patient, code, encounter string
		date                         time.Time
		updated                      time.Time
	}
	var all []obs
	for i := range 24 {
		o := obs{
			patient:   fmt.Sprintf("p%d", i%3),
			code:      fmt.Sprintf("c%d", i%4),
			encounter: fmt.Sprintf("e%d", i%2),
			date:      time.Date(2024, 1, 1+i%7, 0, 0, 0, 0, time.UTC),
		}
		// Two codings with the same code and two identifiers with the same value: a resource
		// matching through two index rows is still one match.
		body := fmt.Sprintf(`{"resourceType":"Observation","status":"final",
			"identifier":[{"system":"urn:a","value":"o%d"},{"system":"urn:b","value":"o%d"}],
			"subject":{"reference":"Patient/%s"},"encounter":{"reference":"Encounter/%s"},
			"code":{"coding":[{"system":"http://loinc.org","code":"%s"},{"system":"urn:local","code":"%s"}]},
			"effectiveDateTime":"%s"}`, i%5, i%5, o.patient, o.encounter, o.code, o.code, o.date.Format("2006-01-02"))
		r, err := s.Create(ctx, tenantA, []byte(body))
		require.NoError(t, err)
		o.id, o.updated = r.ID, r.LastUpdated
		all = append(all, o)
		_, err = s.Create(ctx, tenantB, []byte(body)) // another tenant's copy never matches
		require.NoError(t, err)
	}
	ident := func(o obs) string {
		for i := range all {
			if all[i].id == o.id {
				return fmt.Sprintf("o%d", i%5)
			}
		}
		return ""
	}
	in := func(v string, vs ...string) bool { return slices.Contains(vs, v) }
	cases := []struct {
		name   string
		params []store.Param
		want   func(obs) bool
	}{
		{"patient", []store.Param{{Name: "patient", Values: []string{"p1"}}},
			func(o obs) bool { return o.patient == "p1" }},
		{"patient ORed", []store.Param{{Name: "patient", Values: []string{"Patient/p1", "p2"}}},
			func(o obs) bool { return in(o.patient, "p1", "p2") }},
		{"subject and code", []store.Param{{Name: "subject", Values: []string{"Patient/p0"}}, {Name: "code", Values: []string{"c1", "c2"}}},
			func(o obs) bool { return o.patient == "p0" && in(o.code, "c1", "c2") }},
		{"patient, code with system, date", []store.Param{
			{Name: "patient", Values: []string{"p2"}}, {Name: "code", Values: []string{"http://loinc.org|c3"}}, {Name: "date", Values: []string{"ge2024-01-04"}}},
			func(o obs) bool {
				return o.patient == "p2" && o.code == "c3" && !o.date.Before(time.Date(2024, 1, 4, 0, 0, 0, 0, time.UTC))
			}},
		{"identifier under any system", []store.Param{{Name: "identifier", Values: []string{"o2"}}},
			func(o obs) bool { return ident(o) == "o2" }},
		{"identifier and patient", []store.Param{{Name: "identifier", Values: []string{"urn:b|o1", "urn:a|o3"}}, {Name: "patient", Values: []string{"p1"}}},
			func(o obs) bool { return in(ident(o), "o1", "o3") && o.patient == "p1" }},
		{"encounter and status", []store.Param{{Name: "encounter", Values: []string{"Encounter/e1"}}, {Name: "status", Values: []string{"final"}}},
			func(o obs) bool { return o.encounter == "e1" }},
		{"patient and _lastUpdated", []store.Param{{Name: "patient", Values: []string{"p0"}}, {Name: "_lastUpdated", Values: []string{"ge" + t0.Add(6*time.Second).Format(time.RFC3339)}}},
			func(o obs) bool { return o.patient == "p0" && !o.updated.Before(t0.Add(6*time.Second)) }},
		{"no match", []store.Param{{Name: "patient", Values: []string{"p1"}}, {Name: "code", Values: []string{"nope"}}},
			func(obs) bool { return false }},
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, c := range cases {
		for _, sort := range []string{"", "-date", "_id", "-_lastUpdated"} {
			var want []obs
			for _, o := range all {
				if c.want(o) {
					want = append(want, o)
				}
			}
			slices.SortFunc(want, func(a, b obs) int {
				var k int
				switch sort {
				case "", "-_lastUpdated":
					k = a.updated.Compare(b.updated)
				case "-date":
					k = a.date.Compare(b.date)
				}
				k = cmp.Or(k, cmp.Compare(a.id, b.id))
				if sort != "" && sort[0] == '-' {
					k = -k
				}
				return k
			})
			wantIDs := []string{}
			for _, o := range want {
				wantIDs = append(wantIDs, o.id)
			}

			res, err := s.Search(ctx, tenantA, "Observation", store.Query{Params: c.params, Sort: sort})
			require.NoError(t, err, c.name)
			require.Equal(t, wantIDs, ids(res.Resources), "%s, _sort=%s", c.name, sort)
			require.Equal(t, len(want), res.Total, "%s, _sort=%s", c.name, sort)

			q := store.Query{Params: c.params, Sort: sort, Count: 2, CursorKey: key}
			paged := []string{}
			for {
				res, err := s.Search(ctx, tenantA, "Observation", q)
				require.NoError(t, err, c.name)
				require.Equal(t, len(want), res.Total, "%s, _sort=%s: every page counts every match", c.name, sort)
				paged = append(paged, ids(res.Resources)...)
				if res.Next == "" {
					break
				}
				q.Cursor = res.Next
			}
			require.Equal(t, wantIDs, paged, "%s, _sort=%s: pages of 2", c.name, sort)
		}
	}

	// A deleted match leaves driven searches too.
	res, err := s.Search(ctx, tenantA, "Observation", store.Query{Params: []store.Param{{Name: "patient", Values: []string{"p1"}}}})
	require.NoError(t, err)
	_, err = s.Delete(ctx, tenantA, "Observation", res.Resources[0].ID)
	require.NoError(t, err)
	after, err := s.Search(ctx, tenantA, "Observation", store.Query{Params: []store.Param{{Name: "patient", Values: []string{"p1"}}}})
	require.NoError(t, err)
	require.Equal(t, ids(res.Resources)[1:], ids(after.Resources))
}
