package store_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/store"
)

// TestSearchByPatientOfMappedTypes: the mapping writes RelatedPerson (NK1), Specimen (SPM)
// and Coverage (IN1) for a patient; each is found by patient, as the FHIR R4 parameters
// define it (RelatedPerson.patient, Specimen.subject, Coverage.beneficiary), and counted by
// _summary=count.
func TestSearchByPatientOfMappedTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	create := func(body string) string {
		t.Helper()
		r, err := s.Create(ctx, tenantA, []byte(body))
		require.NoError(t, err)
		return r.ID
	}
	rp1 := create(`{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p1"},"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0063","code":"MTH"}]}]}`)
	create(`{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p2"}}`)
	sp1 := create(`{"resourceType":"Specimen","subject":{"reference":"Patient/p1"},"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0487","code":"BLD"}]}}`)
	spGroup := create(`{"resourceType":"Specimen","subject":{"reference":"Group/p1"}}`)
	cv1 := create(`{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p1"},"payor":[{"reference":"Organization/o1"}]}`)
	cv2 := create(`{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p1"},"payor":[{"reference":"Organization/o2"}]}`)
	create(`{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/p2"},"payor":[{"reference":"Organization/o1"}]}`)

	search := func(typ, query string) store.SearchResult {
		t.Helper()
		vals, err := url.ParseQuery(query)
		require.NoError(t, err)
		q, ignored, err := store.ParseQuery(typ, vals, false)
		require.NoError(t, err, "%s?%s", typ, query)
		require.Empty(t, ignored)
		res, err := s.Search(ctx, tenantA, typ, q)
		require.NoError(t, err)
		return res
	}
	for _, tc := range []struct {
		typ, query string
		want       []string
	}{
		{"RelatedPerson", "patient=p1", []string{rp1}},
		{"RelatedPerson", "patient=Patient/p1&relationship=MTH", []string{rp1}},
		{"Specimen", "patient=Patient/p1", []string{sp1}},
		{"Specimen", "subject=p1", []string{sp1, spGroup}}, // subject is of any type
		{"Specimen", "subject=Group/p1", []string{spGroup}},
		{"Specimen", "type=BLD", []string{sp1}},
		{"Coverage", "patient=p1", []string{cv1, cv2}},
		{"Coverage", "beneficiary=Patient/p1", []string{cv1, cv2}},
		{"Coverage", "patient=p1&payor=Organization/o2", []string{cv2}},
	} {
		res := search(tc.typ, tc.query)
		require.ElementsMatch(t, tc.want, ids(res.Resources), "%s?%s", tc.typ, tc.query)
	}

	res := search("Coverage", "patient=p1&_summary=count")
	require.Equal(t, 2, res.Total)
	require.Empty(t, res.Resources, "_summary=count returns the total only")
	require.Empty(t, res.Next)
	res = search("Coverage", "_summary=count&_count=1")
	require.Equal(t, 3, res.Total)
	require.Empty(t, res.Resources)
}

// TestMigrationReindexesMappedTypes: rows of RelatedPerson, Specimen and Coverage stored
// before their parameters existed (index holding only identifiers) are found by patient once
// migration 000016 has marked them and Reindex has run.
func TestMigrationReindexesMappedTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	_, err := pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
		VALUES ($1, 'Coverage', 'old1', 1, now(), '{"resourceType":"Coverage","id":"old1","status":"active","beneficiary":{"reference":"Patient/p9"},"payor":[{"reference":"Organization/o"}]}', true)`, tenantA)
	require.NoError(t, err)
	q := store.Query{Params: []store.Param{{Name: "patient", Values: []string{"p9"}}}}
	res, err := s.Search(ctx, tenantA, "Coverage", q)
	require.NoError(t, err)
	require.Empty(t, res.Resources, "not indexed yet")

	up, err := os.ReadFile(filepath.Join("..", "..", "migrations", "000016_reindex_patient_compartment_types.up.sql"))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, string(up))
	require.NoError(t, err)
	_, err = s.Reindex(ctx, 10)
	require.NoError(t, err)
	res, err = s.Search(ctx, tenantA, "Coverage", q)
	require.NoError(t, err)
	require.Equal(t, []string{"old1"}, ids(res.Resources))
}
