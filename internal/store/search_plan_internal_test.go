package store

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
)

// TestSearchPlanStartsFromTheSelectiveParameter plans a search by patient on a young table:
// statistics taken when it held a few Patients and no Observation, then 20,000 Observations.
// The planner, believing the type holds a row, used to walk every Observation in sort order
// and probe the search table for each. Driven by the patient parameter, the plan must start
// from the materialised ids, look each up and sort what it reads.
func TestSearchPlanStartsFromTheSelectiveParameter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := dbtest.New(t)
	conn := dbtest.Connect(t, u) // one session: the SET and the prepared statement below
	for _, sql := range []string{
		`INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
		 SELECT 't', 'Patient', 'pat-' || g, 1, now(), '{"resourceType":"Patient"}', true FROM generate_series(1, 5) g`,
		`INSERT INTO fhir_search_tokens (tenant_id, resource_type, id, param, system, code)
		 SELECT 't', 'Patient', 'pat-' || g, 'identifier', 'urn:mrn', 'p' || g FROM generate_series(1, 5) g`,
		`ANALYZE fhir_resources, fhir_search_tokens, fhir_search_refs`,
		`INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
		 SELECT 't', 'Observation', 'obs-' || g, 1, now() + g * interval '1 ms', '{"resourceType":"Observation"}', true FROM generate_series(1, 20000) g`,
		`INSERT INTO fhir_search_refs (tenant_id, resource_type, id, param, target_type, target_id)
		 SELECT 't', 'Observation', 'obs-' || g, 'patient', 'Patient', 'pat-' || (g % 5000) FROM generate_series(1, 20000) g`,
		`SET plan_cache_mode = force_generic_plan`,
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}

	q := Query{Params: []Param{{Name: "patient", Values: []string{"pat-7"}}}}
	args := &sqlArgs{}
	args.add("t")
	args.add("Observation")
	w, err := compileWhere("Observation", q.params(), args, true)
	require.NoError(t, err)
	require.Len(t, w.drivers, 1)
	sql := pageSQL(w, q.sortSpec(), nil, args.add(51))

	_, err = conn.Prepare(ctx, "plan_test", sql)
	require.NoError(t, err)
	rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) EXECUTE plan_test('t', 'Observation', 'pat-7', 'Patient', 'patient', 51)")
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		lines = append(lines, strings.TrimSpace(l))
	}
	require.NoError(t, rows.Err())
	plan := strings.Join(lines, "\n")
	t.Log(plan)
	// Which index of the search table (or of fhir_resources, for the lookups by id) it takes is
	// the planner's choice, and with statistics this stale a tie: asserted is the shape.
	require.Regexp(t, `^Limit\nCTE m\n->  Index Scan using fhir_search_refs_\w+ on fhir_search_refs t\n`, plan, "the ids come first")
	require.Contains(t, plan, "->  Sort\nSort Key: r.last_updated, r.id\n->  Nested Loop\n", "what was read is sorted, not walked in order")
	require.Contains(t, plan, "->  CTE Scan on m\n->  Index Scan using fhir_resources_", "each id is looked up")
	require.NotContains(t, plan, "Semi Join")
}
