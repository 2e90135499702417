package export

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroupPatients(t *testing.T) {
	t.Parallel()
	ids, err := GroupPatients([]byte(`{"resourceType":"Group","actual":true,"member":[
		{"entity":{"reference":"Patient/a"}},
		{"entity":{"reference":"Patient/b/_history/3"}},
		{"entity":{"reference":"Patient/a"}},
		{"entity":{"reference":"Patient/c"},"inactive":true},
		{"entity":{"reference":"Practitioner/d"}},
		{"entity":{"reference":"https://elsewhere.example/fhir/Patient/e"}},
		{"entity":{"display":"no reference"}}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids)

	for name, body := range map[string]string{
		"not a Group":       `{"resourceType":"Patient"}`,
		"not JSON":          `{`,
		"by characteristic": `{"resourceType":"Group","actual":false}`,
	} {
		_, err := GroupPatients([]byte(body))
		require.Error(t, err, name)
	}
}

func TestDeletedEntryAndIgnoredOutcomes(t *testing.T) {
	t.Parallel()
	line, err := DeletedEntry("Patient", "p1")
	require.NoError(t, err)
	require.JSONEq(t, `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/p1"}}]}`, string(line))

	lines, err := IgnoredOutcomes([]string{"_elements", "includeAssociatedData"})
	require.NoError(t, err)
	require.Len(t, lines, 2, "one OperationOutcome per ignored parameter")
	var oo struct {
		ResourceType string
		Issue        []struct{ Severity, Code, Diagnostics string }
	}
	require.NoError(t, json.Unmarshal(lines[1], &oo))
	require.Equal(t, "OperationOutcome", oo.ResourceType)
	require.Equal(t, "not-supported", oo.Issue[0].Code)
	require.Contains(t, oo.Issue[0].Diagnostics, "includeAssociatedData")
}
