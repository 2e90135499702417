// Package ownertest is the conformance suite of owner.Owner: every implementation runs it, so
// that a resource routed to the built-in store and one routed to a FHIR server over HTTP are
// written, guarded, paged and refused alike. Each case starts from an empty owner.
package ownertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/owner"
)

// Options says what the suite may expect of an implementation beyond the common contract.
type Options struct {
	// UpdateTellsUnchanged: a repeated update by id with the same content reports Unchanged
	// (the built-in store), not Updated (an owner over HTTP, whose update answer does not say).
	UpdateTellsUnchanged bool
}

// Run runs every case against a fresh owner from newOwner.
func Run(t *testing.T, opts Options, newOwner func(t *testing.T) owner.Owner) {
	cases := []struct {
		name string
		fn   func(t *testing.T, o owner.Owner, opts Options)
	}{
		{"UpdateByID", updateByID},
		{"ConditionalCreate", conditionalCreate},
		{"ConditionalUpdateNewestWins", conditionalUpdateNewestWins},
		{"ConditionalUpdateMergesLists", conditionalUpdateMerge},
		{"ConditionalWritesRefuseSeveralMatches", severalMatches},
		{"ConditionalPatch", conditionalPatch},
		{"PagedSearch", pagedSearch},
		{"SearchRefusals", searchRefusals},
		{"Do", do},
		{"RefusedAndTransient", refusedAndTransient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newOwner(t), opts)
		})
	}
}

var (
	mrn = fhir.Identifier{System: "urn:oid:1.2.3", Value: "MRN-1"}
	acc = fhir.Identifier{System: "urn:id:LAB", Value: "ACC-1"}
	t0  = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
)

func eventMeta(at time.Time, ext ...string) string {
	exts := append([]string{`{"url":"` + fhir.ExtSourceEventTime + `","valueDateTime":"` + at.UTC().Format(time.RFC3339Nano) + `"}`}, ext...)
	return `"meta":{"extension":[` + strings.Join(exts, ",") + `]}`
}

func patientAt(family string, at time.Time) []byte {
	return []byte(`{"resourceType":"Patient",` + eventMeta(at) + `,"identifier":[{"system":"urn:oid:1.2.3","value":"MRN-1"}],"name":[{"family":"` + family + `"}]}`)
}

func reportAt(at time.Time, status string, results ...string) []byte {
	var refs []string
	for _, r := range results {
		refs = append(refs, `{"reference":"Observation/`+r+`"}`)
	}
	return []byte(`{"resourceType":"DiagnosticReport",` + eventMeta(at, `{"url":"`+fhir.ExtMergeList+`","valueCode":"result"}`) +
		`,"identifier":[{"system":"urn:id:LAB","value":"ACC-1"}],"status":"` + status + `","code":{"text":"panel"},"result":[` + strings.Join(refs, ",") + `]}`)
}

// search reads every match of typ?query through the owner's paging.
func search(t *testing.T, o owner.Owner, typ string, query url.Values) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for link := o.SearchURL(typ, query); link != ""; {
		p, err := o.OpenPage(context.Background(), link, 1<<20)
		require.NoError(t, err)
		next, err := p.Matches(func(r json.RawMessage) error {
			out = append(out, slices.Clone(r))
			return nil
		})
		require.NoError(t, p.Close())
		require.NoError(t, err)
		link = next
	}
	return out
}

// stored is the one typ carrying ident, decoded into v; false when none does.
func stored(t *testing.T, o owner.Owner, typ string, ident fhir.Identifier, v any) bool {
	t.Helper()
	found := search(t, o, typ, url.Values{"identifier": {ident.Token()}})
	if len(found) == 0 {
		return false
	}
	require.Len(t, found, 1, "one %s carries %s", typ, ident.Token())
	require.NoError(t, json.Unmarshal(found[0], v))
	return true
}

type patient struct {
	ID     string `json:"id"`
	Active *bool  `json:"active"`
	Name   []struct {
		Family string `json:"family"`
	} `json:"name"`
	Link []json.RawMessage `json:"link"`
}

func family(t *testing.T, o owner.Owner) string {
	t.Helper()
	var p patient
	require.True(t, stored(t, o, "Patient", mrn, &p), "a Patient carries %s", mrn.Token())
	return p.Name[0].Family
}

// An update by id creates with the client's id, replaces, and changes nothing when repeated.
func updateByID(t *testing.T, o owner.Owner, opts Options) {
	ctx := context.Background()
	body := `{"resourceType":"MessageHeader","id":"mh-1","eventCoding":{"code":"A01"},"source":{"endpoint":"x"}}`
	res, err := o.Update(ctx, "MessageHeader", "mh-1", []byte(body))
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: "mh-1", Action: owner.Created}, res)

	res, err = o.Update(ctx, "MessageHeader", "mh-1", []byte(body))
	require.NoError(t, err)
	want := owner.Updated
	if opts.UpdateTellsUnchanged {
		want = owner.Unchanged
	}
	require.Equal(t, owner.WriteResult{ID: "mh-1", Action: want}, res, "a replay creates nothing")

	res, err = o.Update(ctx, "MessageHeader", "mh-1", []byte(strings.Replace(body, "A01", "A08", 1)))
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: "mh-1", Action: owner.Updated}, res)
	found := search(t, o, "MessageHeader", url.Values{"_id": {"mh-1"}})
	require.Len(t, found, 1)
	require.Contains(t, string(found[0]), `"A08"`)
}

// A conditional create creates once: a second finds the first (Unchanged, its id) and
// writes nothing.
func conditionalCreate(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	first, err := o.ConditionalCreate(ctx, "Patient", patientAt("First", t0), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.Created, first.Action)
	require.NotEmpty(t, first.ID)

	again, err := o.ConditionalCreate(ctx, "Patient", patientAt("Second", t0.Add(time.Hour)), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: first.ID, Action: owner.Unchanged}, again)
	require.Equal(t, "First", family(t, o), "a conditional create never updates")
}

// Newest wins: an update from an older source event is reported Stale and not applied,
// the same content is Unchanged, and a body without an event time is never stale.
func conditionalUpdateNewestWins(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	res, err := o.ConditionalUpdate(ctx, "Patient", patientAt("First", t0), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.Created, res.Action)
	id := res.ID

	res, err = o.ConditionalUpdate(ctx, "Patient", patientAt("Newer", t0.Add(time.Hour)), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Updated}, res)
	require.Equal(t, "Newer", family(t, o))

	res, err = o.ConditionalUpdate(ctx, "Patient", patientAt("Older", t0.Add(30*time.Minute)), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Unchanged, Stale: true}, res)
	require.Equal(t, "Newer", family(t, o), "an older event is not applied")

	res, err = o.ConditionalUpdate(ctx, "Patient", patientAt("Newer", t0.Add(time.Hour)), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Unchanged}, res, "a replay changes nothing")

	noEvent := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"MRN-1"}],"name":[{"family":"Timeless"}]}`)
	res, err = o.ConditionalUpdate(ctx, "Patient", noEvent, mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Updated}, res, "without an event time: never stale")
	require.Equal(t, "Timeless", family(t, o))
}

// A merging update lists what each message says about each entry, whatever their order; one
// that adds nothing is Unchanged, and one whose event is older than the stored one's keeps
// the stored elements.
func conditionalUpdateMerge(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	merge := func(body []byte, written map[string]bool) owner.MergeFunc {
		return func(stored []byte) ([]byte, error) {
			m, _, err := fhir.MergeLists(stored, body, written)
			return m, err
		}
	}
	report := func() (string, []string) {
		var r struct {
			Status string
			Result []struct{ Reference string }
		}
		require.True(t, stored(t, o, "DiagnosticReport", acc, &r))
		var refs []string
		for _, x := range r.Result {
			refs = append(refs, strings.TrimPrefix(x.Reference, "Observation/"))
		}
		return r.Status, refs
	}

	body := reportAt(t0, "final", "o1", "o2", "o3")
	res, err := o.ConditionalUpdateMerge(ctx, "DiagnosticReport", body, acc, merge(body, nil))
	require.NoError(t, err)
	require.Equal(t, owner.Created, res.Action)
	id := res.ID

	body = reportAt(t0.Add(time.Hour), "corrected", "o2")
	res, err = o.ConditionalUpdateMerge(ctx, "DiagnosticReport", body, acc, merge(body, map[string]bool{"Observation/o2": true}))
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Updated}, res)
	status, results := report()
	require.Equal(t, "corrected", status)
	require.Equal(t, []string{"o1", "o2", "o3"}, results)

	res, err = o.ConditionalUpdateMerge(ctx, "DiagnosticReport", body, acc, merge(body, map[string]bool{"Observation/o2": true}))
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Unchanged}, res, "a replayed merge changes nothing")

	older := reportAt(t0.Add(30*time.Minute), "final", "o4")
	res, err = o.ConditionalUpdateMerge(ctx, "DiagnosticReport", older, acc, merge(older, map[string]bool{"Observation/o4": true}))
	require.NoError(t, err)
	require.Equal(t, id, res.ID)
	require.False(t, res.Stale, "an older message's list entry is still merged")
	require.Equal(t, owner.Updated, res.Action)
	status, results = report()
	require.Equal(t, "corrected", status, "the newest event's status stays")
	require.Equal(t, []string{"o1", "o2", "o3", "o4"}, results)

	// A merge that keeps an older event time than the stored one's is not applied.
	res, err = o.ConditionalUpdateMerge(ctx, "DiagnosticReport", older, acc, func([]byte) ([]byte, error) {
		return reportAt(t0, "cancelled", "o9"), nil
	})
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: id, Action: owner.Unchanged, Stale: true}, res)
	status, _ = report()
	require.Equal(t, "corrected", status)

	// None stored: merge(nil) is created.
	other := fhir.Identifier{System: "urn:id:LAB", Value: "ACC-2"}
	fresh := []byte(strings.Replace(string(reportAt(t0, "final", "o1")), "ACC-1", "ACC-2", 1))
	var sawNil bool
	res, err = o.ConditionalUpdateMerge(ctx, "DiagnosticReport", fresh, other, func(s []byte) ([]byte, error) {
		sawNil = s == nil
		return fresh, nil
	})
	require.NoError(t, err)
	require.True(t, sawNil, "merge is given nil when nothing is stored")
	require.Equal(t, owner.Created, res.Action)
}

// A conditional write whose identifier two resources carry is refused for good (412-like),
// and writes nothing.
func severalMatches(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	for _, id := range []string{"twin-a", "twin-b"} {
		body := strings.Replace(string(patientAt("Twin", t0)), `"resourceType":"Patient",`, `"resourceType":"Patient","id":"`+id+`",`, 1)
		_, err := o.Update(ctx, "Patient", id, []byte(body))
		require.NoError(t, err)
	}
	_, err := o.ConditionalUpdate(ctx, "Patient", patientAt("Newer", t0.Add(time.Hour)), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "conditional update: %v", err)
	_, err = o.ConditionalCreate(ctx, "Patient", patientAt("Newer", t0.Add(time.Hour)), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "conditional create: %v", err)
	_, err = o.ConditionalPatch(ctx, "Patient", []byte(activeFalse), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "conditional patch: %v", err)
	for _, r := range search(t, o, "Patient", url.Values{"identifier": {mrn.Token()}}) {
		require.Contains(t, string(r), `"Twin"`, "nothing was written")
		require.NotContains(t, string(r), `"active"`)
	}
}

const activeFalse = `{"resourceType":"Parameters","parameter":[
 {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"active"},{"name":"value","valueBoolean":false}]},
 {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"link"},{"name":"value","part":[
   {"name":"other","valueReference":{"identifier":{"system":"urn:oid:1.2.3","value":"MRN-2"}}},{"name":"type","valueCode":"replaced-by"}]}]}]}`

// A patch of a resource nobody holds is ErrTargetMissing and creates nothing; a patch keeps
// every element it does not name, is never stale, and applied again changes nothing.
func conditionalPatch(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	_, err := o.ConditionalPatch(ctx, "Patient", []byte(activeFalse), mrn)
	require.ErrorIs(t, err, owner.ErrTargetMissing)
	require.NotErrorIs(t, err, owner.ErrRefused, "a missing target is no refusal")
	require.Empty(t, search(t, o, "Patient", url.Values{}), "a patch creates nothing")

	created, err := o.ConditionalUpdate(ctx, "Patient", patientAt("Kept", t0.Add(time.Hour)), mrn)
	require.NoError(t, err)
	res, err := o.ConditionalPatch(ctx, "Patient", []byte(activeFalse), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: created.ID, Action: owner.Updated}, res)
	var p patient
	require.True(t, stored(t, o, "Patient", mrn, &p))
	require.Equal(t, "Kept", p.Name[0].Family)
	require.NotNil(t, p.Active)
	require.False(t, *p.Active)
	require.Len(t, p.Link, 1)

	res, err = o.ConditionalPatch(ctx, "Patient", []byte(activeFalse), mrn)
	require.NoError(t, err)
	require.Equal(t, owner.WriteResult{ID: created.ID, Action: owner.Unchanged}, res)

	_, err = o.ConditionalPatch(ctx, "Patient", []byte(`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"move"}]}]}`), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "an invalid patch is refused for good")
}

// A search is read page by page through next links under the owner's base, every match
// once, ordered by _sort, bounded by _lastUpdated; a page beyond the size limit is refused.
func pagedSearch(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("obs-%d", i)
		_, err := o.Update(ctx, "Observation", id, []byte(`{"resourceType":"Observation","id":"`+id+`","status":"final","code":{"text":"x"}}`))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	after := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	q := url.Values{"_sort": {"_lastUpdated"}, "_count": {"3"}, "_lastUpdated": {"le" + after}}

	var got []string
	pages := 0
	for link := o.SearchURL("Observation", q); link != ""; pages++ {
		require.True(t, strings.HasPrefix(link, strings.TrimRight(o.BaseURL(), "/")+"/"), "%s is under the owner's base", link)
		p, err := o.OpenPage(ctx, link, 1<<20)
		require.NoError(t, err)
		n := 0
		next, err := p.Matches(func(r json.RawMessage) error {
			var h struct{ ID string }
			require.NoError(t, json.Unmarshal(r, &h))
			got = append(got, h.ID)
			n++
			return nil
		})
		require.NoError(t, p.Close())
		require.NoError(t, err)
		require.LessOrEqual(t, n, 3, "_count bounds a page")
		link = next
	}
	require.Equal(t, 3, pages)
	require.Equal(t, ids, got, "every match once, in _lastUpdated order")

	before := t0.Format(time.RFC3339Nano)
	require.Empty(t, search(t, o, "Observation", url.Values{"_lastUpdated": {"le" + before}}))
	require.Len(t, search(t, o, "Observation", url.Values{"_lastUpdated": {"ge" + before, "le" + after}}), 7)

	// The size limit: a page of more bytes than the reader takes is refused, when it opens
	// or while it is read.
	p, err := o.OpenPage(ctx, o.SearchURL("Observation", url.Values{"_count": {"7"}}), 200)
	if err == nil {
		_, err = p.Matches(func(json.RawMessage) error { return nil })
		require.NoError(t, p.Close())
	}
	require.ErrorIs(t, err, owner.ErrPageTooLarge)

	// A link outside the owner's base is not followed.
	_, err = o.OpenPage(ctx, "http://elsewhere.invalid/Observation", 1<<20)
	require.ErrorIs(t, err, owner.ErrNotUnderBase)
}

// A search the owner cannot serve as asked is refused for good with its status.
func searchRefusals(t *testing.T, o owner.Owner, _ Options) {
	_, err := o.OpenPage(context.Background(), o.SearchURL("Observation", url.Values{"no-such-param": {"x"}}), 1<<20)
	require.ErrorIs(t, err, owner.ErrRefused, "handling=strict: an unknown parameter is refused, not ignored")
	var se *owner.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.NotEmpty(t, se.Diagnostics)
}

// Do forwards an interaction and returns the owner's answer whatever its status, with URLs
// under the owner's base.
func do(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	resp, err := o.Do(ctx, owner.Request{Method: http.MethodPost, Path: "/Patient", Header: http.Header{}, Body: patientAt("Posted", t0)})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.Status)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, strings.TrimRight(o.BaseURL(), "/")+"/Patient/"), "Location %q", loc)
	id := strings.Split(strings.TrimPrefix(loc, strings.TrimRight(o.BaseURL(), "/")+"/Patient/"), "/")[0]

	resp, err = o.Do(ctx, owner.Request{Method: http.MethodGet, Path: "/Patient/" + id, Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Contains(t, string(resp.Body), `"Posted"`)

	resp, err = o.Do(ctx, owner.Request{Method: http.MethodGet, Path: "/Patient", Query: url.Values{"identifier": {mrn.Token()}}.Encode(), Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Contains(t, string(resp.Body), strings.TrimRight(o.BaseURL(), "/")+"/Patient/"+id, "fullUrls under the owner's base")

	resp, err = o.Do(ctx, owner.Request{Method: http.MethodGet, Path: "/Patient/no-such-id", Header: http.Header{}})
	require.NoError(t, err, "a refusal is an answer, not a failure")
	require.Equal(t, http.StatusNotFound, resp.Status)
	require.Contains(t, string(resp.Body), `"OperationOutcome"`)
}

// An invalid resource is refused for good; a failure for want of time is transient.
func refusedAndTransient(t *testing.T, o owner.Owner, _ Options) {
	ctx := context.Background()
	_, err := o.ConditionalUpdate(ctx, "Patient", []byte(`{"resourceType":"Patient","identifier":[`), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "unreadable JSON: %v", err)
	_, err = o.ConditionalCreate(ctx, "Patient", []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), mrn)
	require.ErrorIs(t, err, owner.ErrRefused, "a body of another type: %v", err)

	done, cancel := context.WithCancel(ctx)
	cancel()
	for name, write := range map[string]func() error{
		"update":             func() error { _, err := o.Update(done, "Patient", "p1", patientAt("X", t0)); return err },
		"conditional create": func() error { _, err := o.ConditionalCreate(done, "Patient", patientAt("X", t0), mrn); return err },
		"conditional update": func() error { _, err := o.ConditionalUpdate(done, "Patient", patientAt("X", t0), mrn); return err },
		"conditional patch":  func() error { _, err := o.ConditionalPatch(done, "Patient", []byte(activeFalse), mrn); return err },
	} {
		err := write()
		require.Error(t, err, name)
		require.False(t, errors.Is(err, owner.ErrRefused), "%s: a cancelled request is worth retrying: %v", name, err)
		require.False(t, errors.Is(err, owner.ErrTargetMissing), "%s: %v", name, err)
	}
}
