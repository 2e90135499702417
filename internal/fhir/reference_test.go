package fhir

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRewriteReferences(t *testing.T) {
	t.Parallel()
	in := []byte(`{"resourceType":"Encounter","subject":{"reference":"urn:uuid:p"},"length":{"value":12345678901234567890},"participant":[{"individual":{"reference":"urn:uuid:x"}}]}`)
	out, err := RewriteReferences(in, map[string]string{"urn:uuid:p": "Patient/1"})
	require.NoError(t, err)
	require.JSONEq(t, `{"resourceType":"Encounter","subject":{"reference":"Patient/1"},"length":{"value":12345678901234567890},"participant":[{"individual":{"reference":"urn:uuid:x"}}]}`, string(out))

	same, err := RewriteReferences(in, map[string]string{"urn:uuid:none": "Patient/1"})
	require.NoError(t, err)
	require.Equal(t, in, same, "untouched bodies are returned as they were")
}
