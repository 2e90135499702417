package fhirapi

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
)

func TestBundleEnvelope(t *testing.T) {
	t.Parallel()
	rt, typ, links, ok := bundleEnvelope([]byte(` { "resourceType" : "Bundle", "id":"x", "meta":{"lastUpdated":"2024"}, "type":"searchset", "total":2,
		"link":[{"relation":"self","url":"http://o/Patient?a=1"},{"relation":"next","url":"http://o/Patient?_cursor=c"}],
		"entry":[{"resource":{"resourceType":"Patient","link":[{"relation":"x"}]}}]}`))
	require.True(t, ok)
	require.Equal(t, "Bundle", rt)
	require.Equal(t, "searchset", typ)
	require.Equal(t, []fhir.BundleLink{{Relation: "self", URL: "http://o/Patient?a=1"}, {Relation: "next", URL: "http://o/Patient?_cursor=c"}}, links)

	_, _, links, ok = bundleEnvelope([]byte(`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":"u"}]}`))
	require.True(t, ok, "no entries: an empty searchset")
	require.Len(t, links, 1)

	for name, body := range map[string]string{
		"links after entries": `{"resourceType":"Bundle","type":"searchset","entry":[],"link":[{"relation":"next","url":"u"}]}`,
		"not an object":       `["Bundle"]`,
		"truncated":           `{"resourceType":"Bundle","type":`,
		"bad separator":       `{"resourceType":"Bundle" "type":"searchset"}`,
		"empty":               ``,
	} {
		_, _, _, ok := bundleEnvelope([]byte(body))
		require.False(t, ok, name)
	}
}
