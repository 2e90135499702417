package store_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

func TestVersionsHistoryAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	c, err := s.Create(ctx, tenantA, patient(mrn, "v", nil))
	require.NoError(t, err)
	id := c.ID

	_, err = s.UpdateIfMatch(ctx, tenantA, "Patient", id, patient(mrn, "v", map[string]any{"active": true}), 2)
	require.ErrorIs(t, err, store.ErrVersionConflict)
	u, err := s.UpdateIfMatch(ctx, tenantA, "Patient", id, patient(mrn, "v", map[string]any{"active": true}), 1)
	require.NoError(t, err)
	require.Equal(t, int64(2), u.VersionID)
	_, err = s.UpdateIfMatch(ctx, tenantA, "Patient", "missing", patient(mrn, "v", nil), 1)
	require.ErrorIs(t, err, store.ErrVersionConflict)

	v1, err := s.ReadVersion(ctx, tenantA, "Patient", id, 1)
	require.NoError(t, err)
	require.Nil(t, decode(t, v1.Body)["active"])
	_, err = s.ReadVersion(ctx, tenantA, "Patient", id, 3)
	require.ErrorIs(t, err, store.ErrNotFound)

	d, err := s.Delete(ctx, tenantA, "Patient", id)
	require.NoError(t, err)
	require.Equal(t, store.DeleteResult{Deleted: true, ID: id, VersionID: 3}, d)
	_, err = s.Read(ctx, tenantA, "Patient", id)
	require.ErrorIs(t, err, store.ErrGone)
	_, err = s.ReadVersion(ctx, tenantA, "Patient", id, 3)
	require.ErrorIs(t, err, store.ErrGone)
	again, err := s.Delete(ctx, tenantA, "Patient", id)
	require.NoError(t, err)
	require.False(t, again.Deleted)
	none, err := s.Delete(ctx, tenantA, "Patient", "never")
	require.NoError(t, err)
	require.Equal(t, store.DeleteResult{}, none)

	h, err := s.History(ctx, tenantA, "Patient", id, store.HistoryOptions{})
	require.NoError(t, err)
	require.Len(t, h, 3)
	require.True(t, h[0].Deleted)
	require.Equal(t, "DELETE", h[0].Method)
	require.Equal(t, []int64{3, 2, 1}, []int64{h[0].VersionID, h[1].VersionID, h[2].VersionID})
	page, err := s.History(ctx, tenantA, "Patient", id, store.HistoryOptions{Count: 1, BeforeVersion: 3})
	require.NoError(t, err)
	require.Equal(t, int64(2), page[0].VersionID)
	_, err = s.History(ctx, tenantB, "Patient", id, store.HistoryOptions{})
	require.ErrorIs(t, err, store.ErrNotFound, "another tenant's history does not exist")

	res, err := s.Search(ctx, tenantA, "Patient", store.Query{Identifier: &fhir.Identifier{System: mrn, Value: "v"}})
	require.NoError(t, err)
	require.Empty(t, res.Resources, "deleted resources leave the search index")

	// The identifier is free again for a conditional create.
	cc, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "v", nil), fhir.Identifier{System: mrn, Value: "v"})
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, cc.Action)
}

func TestCursorPagingAndBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	s.Now = func() time.Time { n++; return t0.Add(time.Duration(n%3) * time.Second) } // ties in _lastUpdated
	for range 7 {
		_, err := s.Create(ctx, tenantA, patient(mrn, "same", nil))
		require.NoError(t, err)
		_, err = s.Create(ctx, tenantB, patient(mrn, "same", nil))
		require.NoError(t, err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, sort := range []string{"", "-_lastUpdated", "_id", "-_id"} {
		q := store.Query{Identifier: &fhir.Identifier{System: mrn, Value: "same"}, Count: 3, Sort: sort, CursorKey: key}
		var seen []string
		for page := 0; ; page++ {
			res, err := s.Search(ctx, tenantA, "Patient", q)
			require.NoError(t, err)
			require.Equal(t, 7, res.Total)
			seen = append(seen, ids(res.Resources)...)
			if res.Next == "" {
				break
			}
			_, err = s.Search(ctx, tenantB, "Patient", store.Query{Identifier: q.Identifier, Count: 3, Sort: sort, CursorKey: key, Cursor: res.Next})
			require.ErrorIs(t, err, store.ErrBadCursor, "a cursor of tenant A is refused for tenant B")
			_, err = s.Search(ctx, tenantA, "Patient", store.Query{Count: 3, Sort: sort, CursorKey: key, Cursor: res.Next})
			require.ErrorIs(t, err, store.ErrBadCursor, "a cursor is bound to its query")
			_, err = s.Search(ctx, tenantA, "Patient", store.Query{Identifier: q.Identifier, Count: 3, Sort: sort, CursorKey: []byte("other key 0123456789abcdef012345"), Cursor: res.Next})
			require.ErrorIs(t, err, store.ErrBadCursor, "a cursor is bound to its key")
			tampered := []byte(res.Next)
			tampered[2] ^= 1
			_, err = s.Search(ctx, tenantA, "Patient", store.Query{Identifier: q.Identifier, Count: 3, Sort: sort, CursorKey: key, Cursor: string(tampered)})
			require.ErrorIs(t, err, store.ErrBadCursor)
			q.Cursor = res.Next
		}
		require.Len(t, seen, 7, sort)
		uniq := map[string]bool{}
		for _, id := range seen {
			uniq[id] = true
		}
		require.Len(t, uniq, 7, "pages neither repeat nor skip (%q)", sort)
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	vals, err := url.ParseQuery("identifier=a|b,c&patient=Patient/1&_count=5&_sort=-date&_total=none&_include=Observation:patient&_format=json&date=ge2024&date=lt2025")
	require.NoError(t, err)
	q, ignored, err := store.ParseQuery("Observation", vals, false)
	require.NoError(t, err)
	require.Empty(t, ignored)
	require.Equal(t, 5, q.Count)
	require.Equal(t, "-date", q.Sort)
	require.Equal(t, store.TotalNone, q.Total)
	require.Equal(t, []string{"patient"}, q.Include)
	require.Len(t, q.Params, 4)

	for _, bad := range []string{"name=x", "identifier:text=x", "_sort=name", "_count=-1", "date=xx2024", "_include=Patient:general-practitioner", "_revinclude=Provenance:target", "patient=a/b/c"} {
		vals, err := url.ParseQuery(bad)
		require.NoError(t, err)
		_, _, err = store.ParseQuery("Observation", vals, false)
		require.ErrorIs(t, err, store.ErrInvalidSearch, bad)
	}
	vals, _ = url.ParseQuery("name=x&_summary=true&status=final")
	q, ignored, err = store.ParseQuery("Observation", vals, true)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"name", "_summary"}, ignored)
	require.Len(t, q.Params, 1)
}

func TestReindexIndexesOldRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	_, err := pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource)
		VALUES ($1, 'Observation', 'old1', 1, now(), '{"resourceType":"Observation","id":"old1","status":"final","subject":{"reference":"Patient/p9"}}')`, tenantA)
	require.NoError(t, err)
	res, err := s.Search(ctx, tenantA, "Observation", store.Query{Params: []store.Param{{Name: "patient", Values: []string{"p9"}}}})
	require.NoError(t, err)
	require.Empty(t, res.Resources)
	n, err := s.Reindex(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	res, err = s.Search(ctx, tenantA, "Observation", store.Query{Params: []store.Param{{Name: "patient", Values: []string{"p9"}}}})
	require.NoError(t, err)
	require.Equal(t, []string{"old1"}, ids(res.Resources))
	n, err = s.Reindex(ctx, 1)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestTransactionRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Create(ctx, tenantA, patient(mrn, "tx", nil)); err != nil {
			return err
		}
		_, err := tx.UpdateIfMatch(ctx, tenantA, "Patient", "nope", patient(mrn, "tx2", nil), 1)
		return err
	})
	require.ErrorIs(t, err, store.ErrVersionConflict)
	require.Zero(t, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
	require.Zero(t, countRows(t, pool, "fhir_search_tokens", tenantA, "Patient"))
}
