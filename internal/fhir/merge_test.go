package fhir

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// report is a DiagnosticReport of event time at (RFC 3339), status, whose result lists refs.
func report(at, status string, refs ...string) []byte {
	var res []string
	for _, r := range refs {
		res = append(res, `{"reference":"Observation/`+r+`"}`)
	}
	body := `{"resourceType":"DiagnosticReport","meta":{"extension":[{"url":"` + ExtSourceEventTime + `","valueDateTime":"` + at +
		`"},{"url":"` + ExtMergeList + `","valueCode":"result"}]},"status":"` + status + `"`
	if len(res) > 0 {
		body += `,"result":[` + strings.Join(res, ",") + `]`
	}
	return []byte(body + "}")
}

func resultsOf(t *testing.T, body []byte) (status string, refs []string) {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Result []struct {
			Reference string `json:"reference"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	for _, x := range r.Result {
		refs = append(refs, strings.TrimPrefix(x.Reference, "Observation/"))
	}
	return r.Status, refs
}

// written marks refs as updated by the message: applied (true) or stale (false).
func written(applied bool, refs ...string) map[string]bool {
	m := map[string]bool{}
	for _, r := range refs {
		m["Observation/"+r] = applied
	}
	return m
}

func join(a, b map[string]bool) map[string]bool {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func TestMergeLists(t *testing.T) {
	const t1, t2 = "2024-01-01T10:00:00Z", "2024-01-01T12:00:00Z"
	original := report(t1, "final", "o1", "o2", "o3", "o4", "o5")
	for _, tc := range []struct {
		name             string
		stored, incoming []byte
		written          map[string]bool
		wantStatus       string
		wantResults      []string
		wantOlder        bool
	}{
		{name: "first message", incoming: original, written: written(true, "o1", "o2", "o3", "o4", "o5"),
			wantStatus: "final", wantResults: []string{"o1", "o2", "o3", "o4", "o5"}},
		{name: "correction after the original", stored: original, incoming: report(t2, "corrected", "o3"), written: written(true, "o3"),
			wantStatus: "corrected", wantResults: []string{"o1", "o2", "o3", "o4", "o5"}},
		{name: "original after the correction", stored: report(t2, "corrected", "o3"), incoming: original,
			written:    join(written(true, "o1", "o2", "o4", "o5"), written(false, "o3")),
			wantStatus: "corrected", wantResults: []string{"o1", "o2", "o3", "o4", "o5"}, wantOlder: true},
		{name: "deletion after the original", stored: original, incoming: report(t2, "corrected"), written: written(true, "o4"),
			wantStatus: "corrected", wantResults: []string{"o1", "o2", "o3", "o5"}},
		{name: "original after the deletion", stored: report(t2, "corrected"), incoming: original,
			written:    join(written(true, "o1", "o2", "o3", "o5"), written(false, "o4")),
			wantStatus: "corrected", wantResults: []string{"o1", "o2", "o3", "o5"}, wantOlder: true},
		{name: "re-reported after its deletion", stored: report(t1, "corrected", "o1", "o2", "o3", "o5"), incoming: report(t2, "final", "o4"),
			written: written(true, "o4"), wantStatus: "final", wantResults: []string{"o1", "o2", "o3", "o5", "o4"}},
		{name: "new results go after their predecessor", stored: report(t1, "preliminary", "o2", "o4"), incoming: report(t2, "final", "o1", "o2", "o3", "o4", "o5"),
			written: written(true, "o1", "o2", "o3", "o4", "o5"), wantStatus: "final", wantResults: []string{"o1", "o2", "o3", "o4", "o5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, older, err := MergeLists(tc.stored, tc.incoming, tc.written)
			require.NoError(t, err)
			require.Equal(t, tc.wantOlder, older)
			status, refs := resultsOf(t, got)
			require.Equal(t, tc.wantStatus, status)
			require.Equal(t, tc.wantResults, refs)
		})
	}
}

// Without ExtMergeList the incoming resource replaces the stored one as it is; entries
// without a reference are kept by content.
func TestMergeListsScope(t *testing.T) {
	plain := []byte(`{"resourceType":"DiagnosticReport","result":[{"reference":"Observation/o3"}]}`)
	got, older, err := MergeLists(report("2024-01-01T10:00:00Z", "final", "o1"), plain, nil)
	require.NoError(t, err)
	require.False(t, older)
	require.Equal(t, string(plain), string(got))

	stored := []byte(`{"resourceType":"DiagnosticReport","meta":{"extension":[{"url":"` + ExtMergeList + `","valueCode":"performer"}]},"performer":[{"display":"Lab A"}]}`)
	in := []byte(`{"resourceType":"DiagnosticReport","meta":{"extension":[{"url":"` + ExtMergeList + `","valueCode":"performer"}]},"performer":[{"display":"Lab B"},{"display": "Lab A"}]}`)
	got, _, err = MergeLists(stored, in, nil)
	require.NoError(t, err)
	var r struct{ Performer []map[string]string }
	require.NoError(t, json.Unmarshal(got, &r))
	require.Equal(t, []map[string]string{{"display": "Lab B"}, {"display": "Lab A"}}, r.Performer)
}

func TestSameContent(t *testing.T) {
	t.Parallel()
	a := []byte(`{"resourceType":"Patient","id":"1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},"active":true}`)
	require.True(t, SameContent(a, []byte(`{"active":true,"resourceType":"Patient"}`)), "id, versionId and lastUpdated are the owner's")
	require.True(t, SameContent(a, []byte(`{"resourceType":"Patient","id":"2","active":true,"meta":{}}`)))
	require.False(t, SameContent(a, []byte(`{"resourceType":"Patient","active":false}`)))
	require.False(t, SameContent(a, []byte(`{"resourceType":"Patient","active":true,"meta":{"profile":["x"]}}`)), "other meta is content")
	require.False(t, SameContent(a, []byte(`not json`)))
}
