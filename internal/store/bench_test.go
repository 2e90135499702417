package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/store"
)

// loadBench fills a fresh database with n resources of tenant "bench": n/5 Patients and four
// Observations per Patient, with the search index rows the store's writes make, plus n/10
// resources of another tenant. It writes with INSERT … SELECT generate_series, not through
// the store, so that a million rows load in about a minute.
func loadBench(b *testing.B, n int) *db.Pool {
	b.Helper()
	ctx := context.Background()
	_, pool := dbtest.New(b)
	start := time.Now()
	patients := n / 5
	stmts := []string{
		`INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
		 SELECT 'bench', 'Patient', 'pat-' || g, 1, '2024-01-01'::timestamptz + g * interval '1 s',
		        jsonb_build_object('resourceType', 'Patient', 'id', 'pat-' || g,
		          'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:mrn', 'value', 'p' || g)),
		          'name', jsonb_build_array(jsonb_build_object('family', 'Family' || g, 'given', jsonb_build_array('Given'))),
		          'gender', 'female', 'birthDate', '1980-01-01'), true
		 FROM generate_series(1, $1::int) g`,
		`INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, sort_date, search_indexed)
		 SELECT 'bench', 'Observation', 'obs-' || g || '-' || k, 1, '2024-06-01'::timestamptz + (g * 4 + k) * interval '1 s',
		        jsonb_build_object('resourceType', 'Observation', 'id', 'obs-' || g || '-' || k, 'status', 'final',
		          'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:obs', 'value', 'o' || g || '-' || k)),
		          'subject', jsonb_build_object('reference', 'Patient/pat-' || g),
		          'code', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object('system', 'http://loinc.org', 'code', '8867-' || k))),
		          'effectiveDateTime', to_char('2024-01-01'::timestamptz + (g % 365) * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		          'valueQuantity', jsonb_build_object('value', 60 + g % 40, 'unit', '/min')),
		        '2024-01-01'::timestamptz + (g % 365) * interval '1 day', true
		 FROM generate_series(1, $1::int) g, generate_series(1, 4) k`,
		`INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
		 SELECT 'other', 'Patient', 'pat-' || g, 1, now(),
		        jsonb_build_object('resourceType', 'Patient', 'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:mrn', 'value', 'p' || g))), true
		 FROM generate_series(1, $1::int / 2) g`,
		`INSERT INTO fhir_search_tokens (tenant_id, resource_type, id, param, system, code)
		 SELECT tenant_id, resource_type, id, 'identifier', resource->'identifier'->0->>'system', resource->'identifier'->0->>'value' FROM fhir_resources WHERE $1::int > 0`,
		`INSERT INTO fhir_search_tokens (tenant_id, resource_type, id, param, system, code)
		 SELECT tenant_id, resource_type, id, p.param, p.system, p.code FROM fhir_resources
		 CROSS JOIN LATERAL (VALUES ('code', 'http://loinc.org', resource->'code'->'coding'->0->>'code'), ('status', '', 'final')) p(param, system, code)
		 WHERE resource_type = 'Observation' AND $1::int > 0`,
		`INSERT INTO fhir_search_refs (tenant_id, resource_type, id, param, target_type, target_id)
		 SELECT tenant_id, resource_type, id, p.param, 'Patient', split_part(resource->'subject'->>'reference', '/', 2) FROM fhir_resources
		 CROSS JOIN LATERAL (VALUES ('subject'), ('patient')) p(param)
		 WHERE resource_type = 'Observation' AND $1::int > 0`,
		`INSERT INTO fhir_search_dates (tenant_id, resource_type, id, param, lo, hi)
		 SELECT tenant_id, resource_type, id, 'date', sort_date, sort_date + interval '1 s' FROM fhir_resources
		 WHERE resource_type = 'Observation' AND $1::int > 0`,
		`ANALYZE`,
	}
	for _, s := range stmts {
		var err error
		if s == "ANALYZE" {
			_, err = pool.Exec(ctx, s)
		} else {
			_, err = pool.Exec(ctx, s, patients)
		}
		if err != nil {
			b.Fatalf("load: %v", err)
		}
	}
	var total int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM fhir_resources WHERE tenant_id = 'bench'`).Scan(&total); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d resources of tenant bench (+%d of another tenant) in %s", total, patients/2, time.Since(start).Round(time.Second))
	return pool
}

// BenchmarkSearchAt1M measures search latency by identifier and by patient at 10,000 stored
// resources, and at 1,000,000 with INTEROP_BENCH_1M=1 (loading takes about a minute). Each
// reports p50 and p99 in µs: the target is p50 < 5 ms at a million. The
// "containment" cases run the same identifier and subject lookups as JSONB containment over
// the GIN jsonb_path_ops index, the alternative to the search tables.
func BenchmarkSearchAt1M(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("INTEROP_BENCH_1M") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	ctx := context.Background()
	for _, n := range sizes {
		pool := loadBench(b, n)
		s := &store.Store{Pool: pool}
		patients := n / 5
		cases := []struct {
			name string
			run  func(i int) (int, error)
		}{
			{"identifier", func(i int) (int, error) {
				r, err := s.Search(ctx, "bench", "Patient", store.Query{Params: []store.Param{{Name: "identifier", Values: []string{fmt.Sprintf(`urn:mrn|p%d`, i)}}}})
				return len(r.Resources), err
			}},
			{"patient", func(i int) (int, error) {
				r, err := s.Search(ctx, "bench", "Observation", store.Query{Params: []store.Param{{Name: "patient", Values: []string{fmt.Sprintf("Patient/pat-%d", i)}}}})
				return len(r.Resources), err
			}},
			{"patient+code+date", func(i int) (int, error) {
				r, err := s.Search(ctx, "bench", "Observation", store.Query{Params: []store.Param{
					{Name: "patient", Values: []string{fmt.Sprintf("pat-%d", i)}},
					{Name: "code", Values: []string{"http://loinc.org|8867-2"}},
					{Name: "date", Values: []string{"ge2024"}},
				}, Sort: "-date"})
				return len(r.Resources), err
			}},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					i := 1 + rand.IntN(patients)
					t0 := time.Now()
					got, err := c.run(i)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					if got == 0 {
						b.Fatalf("%s %d: no match", c.name, i)
					}
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
