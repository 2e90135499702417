package fhir

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBundleAppendJSONIsMarshal(t *testing.T) {
	t.Parallel()
	total := 2
	cases := map[string]Bundle{
		"empty":   {ResourceType: "Bundle", Type: BundleTransaction},
		"no type": {ResourceType: "Bundle"},
		"envelope": {
			ResourceType: "Bundle", ID: "b1", Type: BundleSearchset, Timestamp: "2024-01-02T03:04:05Z", Total: &total,
			Meta: &Meta{LastUpdated: "2024-01-02T03:04:05Z", Profile: []string{"http://x/p"}},
			Link: []BundleLink{{Relation: "self", URL: "http://x/Patient?name=a&b=<c>"}},
			Entry: []BundleEntry{
				{FullURL: "http://x/Patient/1", Resource: json.RawMessage(`{"resourceType":"Patient","id":"1"}`), Search: &EntrySearch{Mode: "match"}},
				{Resource: json.RawMessage(`{"resourceType":"Patient","id":"2"}`)},
			},
		},
		"transaction": {ResourceType: "Bundle", Type: BundleTransaction, Entry: []BundleEntry{
			{FullURL: "urn:uuid:1", Resource: json.RawMessage(`{"resourceType":"Patient","name":[{"text":"\u003cé\u0026\"\\"}]}`),
				Request: &EntryRequest{Method: "PUT", URL: "Patient?identifier=urn%3Aid%3AA%7C1"}},
			{FullURL: "urn:uuid:2", Resource: json.RawMessage(`{"resourceType":"Encounter"}`),
				Request: &EntryRequest{Method: "POST", URL: "Encounter", IfNoneExist: "identifier=a|<b>&c", IfMatch: `W/"1"`}},
			{Request: &EntryRequest{Method: "DELETE", URL: "Patient/é\u2028\x01"}},
			{},
		}},
		"response": {ResourceType: "Bundle", Type: BundleTransactionResponse, Entry: []BundleEntry{
			{Response: &EntryResponse{Status: "201 Created", Location: "Patient/1/_history/1", Outcome: json.RawMessage(`{"resourceType":"OperationOutcome"}`)}},
		}},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := json.Marshal(&b)
			require.NoError(t, err)
			got, err := b.AppendJSON([]byte("prefix"))
			require.NoError(t, err)
			require.Equal(t, "prefix"+string(want), string(got))
		})
	}
}

func TestAppendStringIsMarshal(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `q"b\`, "<>&", "é", "\u2028\u2029", "\x00\x1f\x7f", "bad\xffutf8", "tab\t"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)), "%q", s)
	}
}
