package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/store"
)

// TestTypeAndSystemHistory pages type and system histories (deletions included, newest first,
// ties in lastUpdated broken by type, id and version) and checks _since, tenant isolation,
// cursor binding and that versions made while paging neither repeat nor shift a page.
func TestTypeAndSystemHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tick := 0
	s.Now = func() time.Time { tick++; return t0.Add(time.Duration(tick/3) * time.Second) } // three writes per instant

	type version struct {
		typ, id string
		v       int64
	}
	var made []version // in write order
	write := func(tenant string, body []byte) string {
		t.Helper()
		r, err := s.Create(ctx, tenant, body)
		require.NoError(t, err)
		if tenant == tenantA {
			made = append(made, version{r.Type, r.ID, r.VersionID})
		}
		return r.ID
	}
	var pats []string
	for i := range 5 {
		pats = append(pats, write(tenantA, patient(mrn, fmt.Sprint("h", i), nil)))
		write(tenantA, []byte(`{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/`+pats[i]+`"}}`))
		write(tenantB, patient(mrn, fmt.Sprint("h", i), nil))
	}
	u, err := s.Update(ctx, tenantA, "Patient", pats[1], patient(mrn, "h1", map[string]any{"active": true}))
	require.NoError(t, err)
	made = append(made, version{"Patient", pats[1], u.VersionID})
	tick += 3 // the deletion is the newest version
	d, err := s.Delete(ctx, tenantA, "Patient", pats[2])
	require.NoError(t, err)
	made = append(made, version{"Patient", pats[2], d.VersionID})

	// The expected order: newest lastUpdated first; within an instant by type, id, version, descending.
	read := func(page store.HistoryPage) []version {
		var out []version
		for _, e := range page.Entries {
			out = append(out, version{e.Type, e.ID, e.VersionID})
		}
		return out
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	pageAll := func(list func(store.HistoryOptions) (store.HistoryPage, error), opts store.HistoryOptions) []version {
		t.Helper()
		opts.CursorKey = key
		var all []version
		for range 100 {
			page, err := list(opts)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page.Entries), max(opts.Count, 1))
			for i := 1; i < len(page.Entries); i++ {
				require.False(t, page.Entries[i].LastUpdated.After(page.Entries[i-1].LastUpdated), "newest first")
			}
			all = append(all, read(page)...)
			if page.Next == "" {
				return all
			}
			opts.Cursor = page.Next
		}
		t.Fatal("history does not end")
		return nil
	}
	system := func(o store.HistoryOptions) (store.HistoryPage, error) { return s.SystemHistory(ctx, tenantA, o) }
	patients := func(o store.HistoryOptions) (store.HistoryPage, error) {
		return s.TypeHistory(ctx, tenantA, "Patient", o)
	}

	whole, err := s.SystemHistory(ctx, tenantA, store.HistoryOptions{Count: 100})
	require.NoError(t, err)
	require.Len(t, whole.Entries, len(made))
	require.Empty(t, whole.Next)
	require.True(t, whole.Entries[0].Deleted, "the deletion is the newest version")
	require.Equal(t, "DELETE", whole.Entries[0].Method)
	require.ElementsMatch(t, made, read(whole))
	for _, n := range []int{1, 2, 3, 7} {
		require.Equal(t, read(whole), pageAll(system, store.HistoryOptions{Count: n}), "system history in pages of %d", n)
	}
	var wantPatients []version
	for _, v := range read(whole) {
		if v.typ == "Patient" {
			wantPatients = append(wantPatients, v)
		}
	}
	require.Len(t, wantPatients, 7)
	require.Equal(t, wantPatients, pageAll(patients, store.HistoryOptions{Count: 2}))

	// _since keeps versions made at or after it.
	since := whole.Entries[3].LastUpdated
	var wantSince []version
	for _, e := range whole.Entries {
		if !e.LastUpdated.Before(since) {
			wantSince = append(wantSince, version{e.Type, e.ID, e.VersionID})
		}
	}
	require.Equal(t, wantSince, pageAll(system, store.HistoryOptions{Count: 2, Since: since}))

	// Versions made while paging are above the position: the rest of the pages is unchanged.
	first, err := s.TypeHistory(ctx, tenantA, "Patient", store.HistoryOptions{Count: 3, CursorKey: key})
	require.NoError(t, err)
	_, err = s.Update(ctx, tenantA, "Patient", pats[0], patient(mrn, "h0", map[string]any{"active": false}))
	require.NoError(t, err)
	rest := pageAll(patients, store.HistoryOptions{Count: 3, Cursor: first.Next})
	require.Equal(t, wantPatients[3:], rest)

	// Cursors are bound to tenant, type, _since and key; another tenant's history is its own.
	for name, o := range map[string]func() (store.HistoryPage, error){
		"other tenant": func() (store.HistoryPage, error) {
			return s.TypeHistory(ctx, tenantB, "Patient", store.HistoryOptions{Count: 3, CursorKey: key, Cursor: first.Next})
		},
		"other type": func() (store.HistoryPage, error) {
			return s.TypeHistory(ctx, tenantA, "Observation", store.HistoryOptions{Count: 3, CursorKey: key, Cursor: first.Next})
		},
		"system": func() (store.HistoryPage, error) {
			return s.SystemHistory(ctx, tenantA, store.HistoryOptions{Count: 3, CursorKey: key, Cursor: first.Next})
		},
		"other _since": func() (store.HistoryPage, error) {
			return s.TypeHistory(ctx, tenantA, "Patient", store.HistoryOptions{Count: 3, CursorKey: key, Cursor: first.Next, Since: t0})
		},
		"other key": func() (store.HistoryPage, error) {
			return s.TypeHistory(ctx, tenantA, "Patient", store.HistoryOptions{Count: 3, CursorKey: []byte("another key 0123456789abcdef0123"), Cursor: first.Next})
		},
		"a search cursor": func() (store.HistoryPage, error) {
			res, err := s.Search(ctx, tenantA, "Patient", store.Query{Count: 1, CursorKey: key})
			require.NoError(t, err)
			return s.TypeHistory(ctx, tenantA, "Patient", store.HistoryOptions{Count: 3, CursorKey: key, Cursor: res.Next})
		},
	} {
		_, err := o()
		require.ErrorIs(t, err, store.ErrBadCursor, name)
	}
	b, err := s.SystemHistory(ctx, tenantB, store.HistoryOptions{})
	require.NoError(t, err)
	require.Len(t, b.Entries, 5)
	for _, e := range b.Entries {
		require.NotContains(t, pats, e.ID, "tenant B's history holds only its own")
	}
	empty, err := s.TypeHistory(ctx, tenantA, "Encounter", store.HistoryOptions{})
	require.NoError(t, err)
	require.Empty(t, empty.Entries)
	require.NotNil(t, empty.Entries)
}
