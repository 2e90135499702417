package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
	mrn     = "urn:oid:1.2.3.4.5"
)

func newStore(t *testing.T) (*store.Store, *db.Pool) {
	t.Helper()
	_, pool := dbtest.New(t)
	return &store.Store{Pool: pool}, pool
}

// patient returns a Patient carrying one identifier; extra elements are merged in.
func patient(system, value string, extra map[string]any) []byte {
	ident := map[string]any{"value": value}
	if system != "" {
		ident["system"] = system
	}
	m := map[string]any{"resourceType": "Patient", "identifier": []any{ident}}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

func countRows(t *testing.T, pool *db.Pool, table, tenant, typ string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT count(*) FROM "+table+" WHERE tenant_id = $1 AND resource_type = $2", tenant, typ).Scan(&n))
	return n
}

func ids(rs []store.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestCreateAssignsIDAndMetaAndKeepsEveryOtherElement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	s.Now = func() time.Time { return at }

	in := []byte(`{
		"resourceType": "Patient",
		"id": "client-chosen",
		"meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z",
		         "profile": ["http://example.org/StructureDefinition/p"], "tag": [{"code": "t1"}]},
		"identifier": [{"system": "` + mrn + `", "value": "123"}, {"value": "no-system"}],
		"active": true,
		"name": [{"family": "Müller", "given": ["Anna", "<b>&"]}],
		"birthDate": "1970-01-01",
		"multipleBirthInteger": 2,
		"extension": [{"url": "http://example.org/x", "valueDecimal": 1.50}],
		"_birthDate": {"extension": [{"url": "http://example.org/y", "valueBoolean": false}]}
	}`)
	res, err := s.Create(ctx, tenantA, in)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, res.Action)
	require.Equal(t, "Patient", res.Type)
	require.True(t, fhir.ValidID(res.ID), res.ID)
	require.NotEqual(t, "client-chosen", res.ID, "create ignores the client's id")
	require.Equal(t, int64(1), res.VersionID)
	require.True(t, res.LastUpdated.Equal(at.Truncate(time.Microsecond)), "lastUpdated %s", res.LastUpdated)

	got := decode(t, res.Body)
	require.Equal(t, res.ID, got["id"])
	meta := got["meta"].(map[string]any)
	require.Equal(t, "1", meta["versionId"])
	lu, err := time.Parse(time.RFC3339Nano, meta["lastUpdated"].(string))
	require.NoError(t, err)
	require.True(t, lu.Equal(res.LastUpdated), "meta.lastUpdated %s, result %s", lu, res.LastUpdated)

	// Everything but id and meta.versionId/lastUpdated is kept as sent.
	want := decode(t, in)
	for _, m := range []map[string]any{want, got} {
		delete(m, "id")
		delete(m["meta"].(map[string]any), "versionId")
		delete(m["meta"].(map[string]any), "lastUpdated")
	}
	require.Equal(t, want, got)

	// Read returns what Create returned, and the history holds version 1.
	read, err := s.Read(ctx, tenantA, "Patient", res.ID)
	require.NoError(t, err)
	require.Equal(t, res.ID, read.ID)
	require.Equal(t, int64(1), read.VersionID)
	require.True(t, read.LastUpdated.Equal(res.LastUpdated))
	require.JSONEq(t, string(res.Body), string(read.Body))
	require.Equal(t, 1, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))

	// Two creates of the same body are two resources.
	res2, err := s.Create(ctx, tenantA, in)
	require.NoError(t, err)
	require.NotEqual(t, res.ID, res2.ID)
	require.Equal(t, 2, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
}

func TestCreateRefusesInvalidResources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	for _, body := range []string{
		``, `not json`, `[]`, `null`, `{}`, `{"resourceType": ""}`, `{"resourceType": "patient"}`,
		`{"resourceType": 7}`, `{"resourceType": "Patient", "id": "bad id!"}`,
		`{"resourceType": "Patient", "meta": "not an object"}`,
	} {
		_, err := s.Create(ctx, tenantA, []byte(body))
		require.ErrorIs(t, err, fhir.ErrInvalidResource, "%q", body)
		_, err = s.ConditionalCreate(ctx, tenantA, []byte(body), fhir.Identifier{System: mrn, Value: "1"})
		require.ErrorIs(t, err, fhir.ErrInvalidResource, "%q", body)
	}
	_, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "1", nil), fhir.Identifier{System: mrn})
	require.ErrorIs(t, err, fhir.ErrInvalidResource, "a conditional write needs an identifier value")
	require.Zero(t, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
}

func TestReadMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := s.Read(ctx, tenantA, "Patient", "does-not-exist")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A resource of another type with that id is not it.
	res, err := s.Create(ctx, tenantA, []byte(`{"resourceType":"Observation","status":"final"}`))
	require.NoError(t, err)
	_, err = s.Read(ctx, tenantA, "Patient", res.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Read(ctx, tenantA, "Observation", res.ID)
	require.NoError(t, err)
}

func TestConditionalCreateTwiceReturnsTheSameResource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "42"}

	first, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "42", map[string]any{"gender": "female"}), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, first.Action)
	require.Equal(t, int64(1), first.VersionID)

	// The second body differs, but a conditional create never updates.
	second, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "42", map[string]any{"gender": "male"}), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionUnchanged, second.Action)
	require.Equal(t, first.ID, second.ID)
	require.Equal(t, int64(1), second.VersionID)
	require.Equal(t, "female", decode(t, second.Body)["gender"])
	require.Equal(t, 1, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
	require.Equal(t, 1, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))

	// Another value of the same system, or the same value under another system, is another resource.
	other, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "43", nil), fhir.Identifier{System: mrn, Value: "43"})
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, other.Action)
	require.NotEqual(t, first.ID, other.ID)
	otherSys, err := s.ConditionalCreate(ctx, tenantA, patient("urn:other", "42", nil), fhir.Identifier{System: "urn:other", Value: "42"})
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, otherSys.Action)
	require.NotEqual(t, first.ID, otherSys.ID)

	// The identifier is matched within the resource type only.
	obs, err := s.ConditionalCreate(ctx, tenantA,
		[]byte(`{"resourceType":"Observation","identifier":[{"system":"`+mrn+`","value":"42"}]}`), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, obs.Action)
	require.Equal(t, "Observation", obs.Type)
}

func TestConditionalCreateConcurrentCreatesExactlyOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "race"}

	const n = 20
	results := make([]store.WriteResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.ConditionalCreate(ctx, tenantA, patient(mrn, "race", map[string]any{"active": true}), ident)
		})
	}
	close(start)
	wg.Wait()

	created := 0
	for i := range n {
		require.NoError(t, errs[i], "goroutine %d", i)
		require.Equal(t, results[0].ID, results[i].ID, "goroutine %d got another resource", i)
		require.Equal(t, int64(1), results[i].VersionID)
		if results[i].Action == store.ActionCreated {
			created++
		} else {
			require.Equal(t, store.ActionUnchanged, results[i].Action)
		}
	}
	require.Equal(t, 1, created, "exactly one call creates")
	require.Equal(t, 1, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
	require.Equal(t, 1, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))
}

func TestConditionalUpdateCreatesThenUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "7"}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	s.Now = func() time.Time { return clock }

	v1, err := s.ConditionalUpdate(ctx, tenantA, patient(mrn, "7", map[string]any{"gender": "female"}), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, v1.Action)
	require.Equal(t, int64(1), v1.VersionID)

	clock = t0.Add(time.Hour)
	v2, err := s.ConditionalUpdate(ctx, tenantA, patient(mrn, "7", map[string]any{"gender": "male"}), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionUpdated, v2.Action)
	require.Equal(t, v1.ID, v2.ID)
	require.Equal(t, int64(2), v2.VersionID)
	require.True(t, v2.LastUpdated.Equal(clock), "lastUpdated %s", v2.LastUpdated)
	body := decode(t, v2.Body)
	require.Equal(t, "male", body["gender"])
	require.Equal(t, v1.ID, body["id"])
	require.Equal(t, "2", body["meta"].(map[string]any)["versionId"])
	require.Equal(t, 1, countRows(t, pool, "fhir_resources", tenantA, "Patient"))
	require.Equal(t, 2, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))

	read, err := s.Read(ctx, tenantA, "Patient", v1.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), read.VersionID)
	require.Equal(t, "male", decode(t, read.Body)["gender"])

	var methods []string
	rows, err := pool.Query(ctx, `SELECT method FROM fhir_resource_history WHERE tenant_id = $1 AND id = $2 ORDER BY version_id`, tenantA, v1.ID)
	require.NoError(t, err)
	for rows.Next() {
		var m string
		require.NoError(t, rows.Scan(&m))
		methods = append(methods, m)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"POST", "PUT"}, methods)

	// The same content again (even carrying the stored id and meta) is not a new version.
	clock = t0.Add(2 * time.Hour)
	for _, again := range [][]byte{patient(mrn, "7", map[string]any{"gender": "male"}), v2.Body} {
		v3, err := s.ConditionalUpdate(ctx, tenantA, again, ident)
		require.NoError(t, err)
		require.Equal(t, store.ActionUnchanged, v3.Action)
		require.Equal(t, v1.ID, v3.ID)
		require.Equal(t, int64(2), v3.VersionID)
		require.True(t, v3.LastUpdated.Equal(v2.LastUpdated), "an unchanged write keeps lastUpdated")
	}
	require.Equal(t, 2, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))
	read, err = s.Read(ctx, tenantA, "Patient", v1.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), read.VersionID)

	// A conditional create after the update finds the updated resource.
	cc, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "7", nil), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionUnchanged, cc.Action)
	require.Equal(t, int64(2), cc.VersionID)
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "shared"}

	a, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "shared", nil), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, a.Action)

	_, err = s.Read(ctx, tenantB, "Patient", a.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "tenant B must not read tenant A's resource")

	for _, q := range []store.Query{
		{},
		{ID: a.ID},
		{Identifier: &ident},
		{Identifier: &fhir.Identifier{Value: "shared"}, AnySystem: true},
		{ID: a.ID, Identifier: &ident},
	} {
		res, err := s.Search(ctx, tenantB, "Patient", q)
		require.NoError(t, err)
		require.Empty(t, res.Resources, "%+v", q)
		require.Zero(t, res.Total, "%+v", q)
	}

	// B's conditional create with the same identifier creates B's own resource.
	b, err := s.ConditionalCreate(ctx, tenantB, patient(mrn, "shared", nil), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, b.Action)
	require.NotEqual(t, a.ID, b.ID)
	// And B's conditional update does not touch A's.
	bu, err := s.ConditionalUpdate(ctx, tenantB, patient(mrn, "shared", map[string]any{"active": false}), ident)
	require.NoError(t, err)
	require.Equal(t, b.ID, bu.ID)
	require.Equal(t, store.ActionUpdated, bu.Action)

	ra, err := s.Read(ctx, tenantA, "Patient", a.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), ra.VersionID)
	require.NotContains(t, decode(t, ra.Body), "active")
	_, err = s.Read(ctx, tenantA, "Patient", b.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	for tenant, want := range map[string]string{tenantA: a.ID, tenantB: b.ID} {
		res, err := s.Search(ctx, tenant, "Patient", store.Query{Identifier: &ident})
		require.NoError(t, err)
		require.Equal(t, []string{want}, ids(res.Resources), tenant)
		require.Equal(t, 1, res.Total)
		require.Equal(t, 1, countRows(t, pool, "fhir_resources", tenant, "Patient"))
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	tick := 0
	s.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return t0.Add(time.Duration(tick) * time.Minute)
	}

	create := func(body []byte) store.WriteResult {
		t.Helper()
		r, err := s.Create(ctx, tenantA, body)
		require.NoError(t, err)
		return r
	}
	p1 := create(patient(mrn, "100", nil))
	p2 := create(patient("urn:other", "100", nil)) // same value, other system
	p3 := create(patient("", "100", nil))          // same value, no system
	p4 := create(patient(mrn, "200", nil))
	p5 := create([]byte(`{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"a"},{"system":"` + mrn + `","value":"300"}]}`))
	obs := create([]byte(`{"resourceType":"Observation","identifier":[{"system":"` + mrn + `","value":"100"}]}`))

	search := func(q store.Query) store.SearchResult {
		t.Helper()
		res, err := s.Search(ctx, tenantA, "Patient", q)
		require.NoError(t, err)
		require.NotNil(t, res.Resources, "an empty page is an empty slice")
		return res
	}

	t.Run("all, oldest update first", func(t *testing.T) {
		res := search(store.Query{})
		require.Equal(t, []string{p1.ID, p2.ID, p3.ID, p4.ID, p5.ID}, ids(res.Resources))
		require.Equal(t, 5, res.Total)
		for _, r := range res.Resources {
			require.Equal(t, "Patient", r.Type)
			require.Equal(t, int64(1), r.VersionID)
			require.Equal(t, r.ID, decode(t, r.Body)["id"])
		}
	})
	t.Run("identifier with system", func(t *testing.T) {
		res := search(store.Query{Identifier: &fhir.Identifier{System: mrn, Value: "100"}})
		require.Equal(t, []string{p1.ID}, ids(res.Resources))
		require.Equal(t, 1, res.Total)
		res = search(store.Query{Identifier: &fhir.Identifier{System: mrn, Value: "300"}})
		require.Equal(t, []string{p5.ID}, ids(res.Resources), "any of several identifiers matches")
		res = search(store.Query{Identifier: &fhir.Identifier{System: "urn:x", Value: "300"}})
		require.Empty(t, res.Resources, "system and value must match within one identifier")
		res = search(store.Query{Identifier: &fhir.Identifier{System: mrn, Value: "999"}})
		require.Empty(t, res.Resources)
		require.Zero(t, res.Total)
	})
	t.Run("identifier under any system", func(t *testing.T) {
		res := search(store.Query{Identifier: &fhir.Identifier{Value: "100"}, AnySystem: true})
		require.Equal(t, []string{p1.ID, p2.ID, p3.ID}, ids(res.Resources))
		require.Equal(t, 3, res.Total)
		// AnySystem ignores a system given alongside.
		res = search(store.Query{Identifier: &fhir.Identifier{System: "urn:nope", Value: "100"}, AnySystem: true})
		require.Equal(t, 3, res.Total)
		res = search(store.Query{Identifier: &fhir.Identifier{Value: "10"}, AnySystem: true})
		require.Empty(t, res.Resources, "values match exactly, not by prefix")
	})
	t.Run("_id", func(t *testing.T) {
		res := search(store.Query{ID: p4.ID})
		require.Equal(t, []string{p4.ID}, ids(res.Resources))
		require.Equal(t, 1, res.Total)
		res = search(store.Query{ID: "missing"})
		require.Empty(t, res.Resources)
		require.Zero(t, res.Total)
		res = search(store.Query{ID: obs.ID})
		require.Empty(t, res.Resources, "_id is matched within the type")
		// _id and identifier together must both match.
		res = search(store.Query{ID: p4.ID, Identifier: &fhir.Identifier{System: mrn, Value: "200"}})
		require.Equal(t, []string{p4.ID}, ids(res.Resources))
		res = search(store.Query{ID: p4.ID, Identifier: &fhir.Identifier{System: mrn, Value: "100"}})
		require.Empty(t, res.Resources)
		require.Zero(t, res.Total)
		res = search(store.Query{ID: p2.ID, Identifier: &fhir.Identifier{Value: "100"}, AnySystem: true})
		require.Equal(t, []string{p2.ID}, ids(res.Resources))
	})
	t.Run("count pages and total", func(t *testing.T) {
		res := search(store.Query{Count: 2})
		require.Equal(t, []string{p1.ID, p2.ID}, ids(res.Resources))
		require.Equal(t, 5, res.Total, "total counts every match, not the page")
		res = search(store.Query{Count: 5})
		require.Len(t, res.Resources, 5)
		require.Equal(t, 5, res.Total)
		res = search(store.Query{Count: 6})
		require.Len(t, res.Resources, 5)
		require.Equal(t, 5, res.Total)
		res = search(store.Query{Count: 1, Identifier: &fhir.Identifier{Value: "100"}, AnySystem: true})
		require.Equal(t, []string{p1.ID}, ids(res.Resources))
		require.Equal(t, 3, res.Total)
	})
}

func TestSearchCountIsCapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	const n = store.MaxCount + 5
	_, err := pool.Exec(ctx, `
		INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource)
		SELECT $1, 'Patient', 'p' || g, 1, now() + g * interval '1 ms',
		       jsonb_build_object('resourceType', 'Patient', 'id', 'p' || g)
		FROM generate_series(1, $2::int) g`, tenantA, n)
	require.NoError(t, err)

	res, err := s.Search(ctx, tenantA, "Patient", store.Query{Count: 10 * store.MaxCount})
	require.NoError(t, err)
	require.Len(t, res.Resources, store.MaxCount)
	require.Equal(t, n, res.Total)
	require.Equal(t, "p1", res.Resources[0].ID)

	res, err = s.Search(ctx, tenantA, "Patient", store.Query{})
	require.NoError(t, err)
	require.Len(t, res.Resources, store.DefaultCount, "no Count means DefaultCount")
	require.Equal(t, n, res.Total)
}

func TestConditionalWriteWithTwoMatchesFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "dup"}
	for range 2 {
		_, err := s.Create(ctx, tenantA, patient(mrn, "dup", nil))
		require.NoError(t, err)
	}

	_, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "dup", nil), ident)
	require.ErrorIs(t, err, store.ErrMultipleMatches)
	_, err = s.ConditionalUpdate(ctx, tenantA, patient(mrn, "dup", map[string]any{"active": true}), ident)
	require.ErrorIs(t, err, store.ErrMultipleMatches)
	require.Equal(t, 2, countRows(t, pool, "fhir_resources", tenantA, "Patient"), "a refused write writes nothing")
	require.Equal(t, 2, countRows(t, pool, "fhir_resource_history", tenantA, "Patient"))

	// Another tenant's identifier space is its own.
	res, err := s.ConditionalCreate(ctx, tenantB, patient(mrn, "dup", nil), ident)
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, res.Action)
}

func TestDeletedResourceIsGoneAndNotSearched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	ident := fhir.Identifier{System: mrn, Value: "del"}
	res, err := s.ConditionalCreate(ctx, tenantA, patient(mrn, "del", nil), ident)
	require.NoError(t, err)
	// There is no Delete yet; mark the row the way a delete will.
	_, err = pool.Exec(ctx, `UPDATE fhir_resources SET deleted = true WHERE tenant_id = $1 AND id = $2`, tenantA, res.ID)
	require.NoError(t, err)

	_, err = s.Read(ctx, tenantA, "Patient", res.ID)
	require.ErrorIs(t, err, store.ErrGone)
	for _, q := range []store.Query{{ID: res.ID}, {Identifier: &ident}, {}} {
		sr, err := s.Search(ctx, tenantA, "Patient", q)
		require.NoError(t, err)
		require.Empty(t, sr.Resources, fmt.Sprintf("%+v", q))
		require.Zero(t, sr.Total)
	}
}

func TestUpdateByIDCreatesReplacesAndReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	s.Now = func() time.Time { return clock }
	header := func(event string, at time.Time) []byte {
		return mustMarshal(map[string]any{
			"resourceType": "MessageHeader", "id": "mh-1",
			"meta":        map[string]any{"extension": []any{fhir.SourceEventTimeExtension(at)}},
			"eventCoding": map[string]any{"code": event},
		})
	}

	v1, err := s.Update(ctx, tenantA, "MessageHeader", "mh-1", header("A01", t0))
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, v1.Action)
	require.Equal(t, "mh-1", v1.ID, "the client's id is kept")
	require.Equal(t, int64(1), v1.VersionID)

	// A replay of the same content is no new version, even a second later.
	clock = t0.Add(time.Second)
	again, err := s.Update(ctx, tenantA, "MessageHeader", "mh-1", header("A01", t0))
	require.NoError(t, err)
	require.Equal(t, store.ActionUnchanged, again.Action)
	require.Equal(t, int64(1), again.VersionID)

	// New content replaces it; content from an older event does not.
	v2, err := s.Update(ctx, tenantA, "MessageHeader", "mh-1", header("A08", t0.Add(time.Hour)))
	require.NoError(t, err)
	require.Equal(t, store.ActionUpdated, v2.Action)
	require.Equal(t, int64(2), v2.VersionID)
	stale, err := s.Update(ctx, tenantA, "MessageHeader", "mh-1", header("A03", t0))
	require.NoError(t, err)
	require.True(t, stale.Stale)
	require.Equal(t, store.ActionUnchanged, stale.Action)
	read, err := s.Read(ctx, tenantA, "MessageHeader", "mh-1")
	require.NoError(t, err)
	require.Equal(t, "A08", decode(t, read.Body)["eventCoding"].(map[string]any)["code"])

	// The id is the tenant's: another tenant's mh-1 is another resource.
	other, err := s.Update(ctx, tenantB, "MessageHeader", "mh-1", header("A04", t0))
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, other.Action)
	read, err = s.Read(ctx, tenantA, "MessageHeader", "mh-1")
	require.NoError(t, err)
	require.Equal(t, int64(2), read.VersionID)

	require.Equal(t, 1, countRows(t, pool, "fhir_resources", tenantA, "MessageHeader"))
	require.Equal(t, 2, countRows(t, pool, "fhir_resource_history", tenantA, "MessageHeader"))
	var methods []string
	rows, err := pool.Query(ctx, `SELECT method FROM fhir_resource_history WHERE tenant_id = $1 AND id = 'mh-1' ORDER BY version_id`, tenantA)
	require.NoError(t, err)
	for rows.Next() {
		var m string
		require.NoError(t, rows.Scan(&m))
		methods = append(methods, m)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"PUT", "PUT"}, methods, "both versions were made by a PUT")
}

func TestUpdateByIDRefusesMismatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	for name, tc := range map[string]struct {
		typ, id string
		body    string
	}{
		"other type":     {"Provenance", "p1", `{"resourceType":"MessageHeader"}`},
		"other id":       {"MessageHeader", "p1", `{"resourceType":"MessageHeader","id":"p2"}`},
		"invalid id":     {"MessageHeader", "a/b", `{"resourceType":"MessageHeader"}`},
		"not a resource": {"MessageHeader", "p1", `[]`},
	} {
		_, err := s.Update(ctx, tenantA, tc.typ, tc.id, []byte(tc.body))
		require.ErrorIs(t, err, fhir.ErrInvalidResource, name)
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
