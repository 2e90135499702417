package activities

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

func TestIdempotentWrite(t *testing.T) {
	t.Parallel()
	mh := fhir.Head{ResourceType: "MessageHeader", ID: "mh-1"}
	for name, tc := range map[string]struct {
		req  fhir.EntryRequest
		head fhir.Head
		want entryWrite
		err  string
	}{
		"conditional create": {req: fhir.EntryRequest{Method: "POST", URL: "Patient", IfNoneExist: "identifier=urn%3Aid%3AA%7C1"},
			head: fhir.Head{ResourceType: "Patient"}, want: entryWrite{ident: fhir.Identifier{System: "urn:id:A", Value: "1"}}},
		"conditional update": {req: fhir.EntryRequest{Method: "PUT", URL: "Patient?identifier=urn%3Aid%3AA%7C1"},
			head: fhir.Head{ResourceType: "Patient"}, want: entryWrite{update: true, ident: fhir.Identifier{System: "urn:id:A", Value: "1"}}},
		"update by id":             {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader/mh-1"}, head: mh, want: entryWrite{update: true, id: "mh-1"}},
		"update by id, no body id": {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader/mh-1"}, head: fhir.Head{ResourceType: "MessageHeader"}, want: entryWrite{update: true, id: "mh-1"}},
		"update of another id":     {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader/mh-2"}, head: mh, err: "neither"},
		"update of another type":   {req: fhir.EntryRequest{Method: "PUT", URL: "Provenance/mh-1"}, head: mh, err: "neither"},
		"update of an invalid id":  {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader/mh 1"}, head: fhir.Head{ResourceType: "MessageHeader"}, err: "neither"},
		"update without id":        {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader"}, head: mh, err: "neither"},
		"history path":             {req: fhir.EntryRequest{Method: "PUT", URL: "MessageHeader/mh-1/_history/1"}, head: mh, err: "neither"},
		"plain create":             {req: fhir.EntryRequest{Method: "POST", URL: "MessageHeader"}, head: mh, err: "neither"},
		"delete":                   {req: fhir.EntryRequest{Method: "DELETE", URL: "MessageHeader/mh-1"}, head: mh, err: "neither"},
		"conditional patch": {req: fhir.EntryRequest{Method: "PATCH", URL: "Patient?identifier=urn%3Aid%3AA%7C1"},
			head: fhir.Head{ResourceType: "Parameters"}, want: entryWrite{patch: "Patient", ident: fhir.Identifier{System: "urn:id:A", Value: "1"}}},
		"patch that is not Parameters": {req: fhir.EntryRequest{Method: "PATCH", URL: "Patient?identifier=urn%3Aid%3AA%7C1"}, head: fhir.Head{ResourceType: "Patient"}, err: "FHIRPath Patch"},
		"patch by id":                  {req: fhir.EntryRequest{Method: "PATCH", URL: "Patient/1"}, head: fhir.Head{ResourceType: "Parameters"}, err: "FHIRPath Patch"},
		"patch of everything":          {req: fhir.EntryRequest{Method: "PATCH", URL: "Patient?active=true"}, head: fhir.Head{ResourceType: "Parameters"}, err: "identifier=system|value"},
	} {
		got, err := idempotentWrite(&tc.req, tc.head)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, name)
			continue
		}
		require.NoError(t, err, name)
		require.Equal(t, tc.want, got, name)
	}
}

// MessageHeader and Provenance have no business identifier: the mapping writes them as
// PUT Type/<id derived from the message>, which the builtin store creates with that id, and a
// retry or a replay of the message leaves as they are.
func TestRouteBundleUpdatesMessageResourcesByID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	raw := adtAt("A01", "MH1", "M1", "20240101120000+0000", "DOE") // an instant: Provenance.recorded
	msg, err := hl7v2.Parse(raw)
	require.NoError(t, err)
	mapped, err := mapping.New(mapping.Options{MessageResources: true}).Map(msg)
	require.NoError(t, err)
	body, err := json.Marshal(mapped.Bundle)
	require.NoError(t, err)
	ids := map[string]string{}
	for _, e := range mapped.Bundle.Entry {
		if typ, id, ok := strings.Cut(e.Request.URL, "/"); ok && e.Request.Method == "PUT" {
			ids[typ] = id
		}
	}
	require.Len(t, ids, 2, "MessageHeader and Provenance are updates by id: %v", ids)

	ref := h.start(h.insertMessage("MH1", raw))
	routeBundle := func(ref MessageRef) RouteResult {
		require.NoError(t, h.q.Hl7ProcessingAttemptSetBundle(ctx, db.Hl7ProcessingAttemptSetBundleParams{ID: ref.AttemptID, MappedBundle: body, MappingNotes: append([]string{}, mapped.Notes...)}))
		var res RouteResult
		h.must(&res, h.acts.RouteBundle, ref)
		return res
	}
	first := routeBundle(ref)
	require.Equal(t, len(mapped.Bundle.Entry), first.Created)

	patient := ""
	for _, l := range h.links(ref.MessageID) {
		if l.ResourceType == "Patient" {
			patient = "Patient/" + l.ResourceID
		}
	}
	require.NotEmpty(t, patient)
	for typ, id := range ids {
		got, err := h.acts.Store.Read(ctx, tenant, typ, id)
		require.NoError(t, err, "%s/%s", typ, id)
		require.Equal(t, int64(1), got.VersionID)
		require.Contains(t, string(got.Body), `"`+patient+`"`, "%s references the stored Patient", typ)
		require.NotContains(t, string(got.Body), "urn:uuid:")
	}

	// An activity retry, and a replay in a new attempt, change nothing.
	require.Equal(t, RouteResult{Unchanged: len(mapped.Bundle.Entry)}, routeBundle(ref))
	second, err := h.q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{
		MessageID: ref.MessageID, WorkflowID: "replay", RunID: "replay-run",
	})
	require.NoError(t, err)
	require.Equal(t, RouteResult{Unchanged: len(mapped.Bundle.Entry)}, routeBundle(MessageRef{MessageID: ref.MessageID, AttemptID: second.ID}))
	for typ, id := range ids {
		require.Equal(t, 1, h.count(`SELECT count(*) FROM fhir_resources WHERE tenant_id = $1 AND resource_type = $2`, tenant, typ))
		require.Equal(t, 1, h.count(`SELECT count(*) FROM fhir_resource_history WHERE tenant_id = $1 AND resource_type = $2 AND id = $3`, tenant, typ, id))
	}
}

// A write the database refuses for its data (text that is not UTF-8, a lone surrogate, NUL:
// db.ErrInvalidData at the db boundary) fails the same way every time: RouteBundle's write
// must stop the retries at once (issue #14: a NUL byte was retried 8 times over 15 minutes).
func TestRouteWriteOfDataTheStoreCannotHoldIsNonRetryable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ident := fhir.Identifier{System: "urn:x", Value: "1"}
	for _, value := range []string{"\"x\xffy\"", `"x\ud800y"`, `"x\u0000y"`} {
		body := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}],"name":[{"family":` + value + `}]}`)
		for _, w := range []entryWrite{{update: true, id: "p1"}, {update: true, ident: ident}, {ident: ident}} {
			_, err := h.acts.write(context.Background(), tenant, "builtin", "Patient", body, w)
			requireNonRetryable(t, err, ErrTypeOwnerRefused)
		}
	}
}
