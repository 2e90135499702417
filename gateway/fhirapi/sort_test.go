package fhirapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLastUpdatedOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"id": "a", "meta": {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05.123Z"}}`: "2024-01-02T03:04:05.123Z",
		`{"meta":{"lastUpdated":"2024-01-02T03:04:05Z"},"id":"a"}`:                           "2024-01-02T03:04:05Z",
		`{"meta":{"lastUpdated":"x"},"contained":[{"meta":{"lastUpdated":"y"}}]}`:            "",
		`{"meta":{"lastUpdated":null}}`:                                                      "",
		`{"id":"a"}`:                                                                         "",
	} {
		got, ok := lastUpdatedOf([]byte(in))
		require.Equal(t, want, got, in)
		require.Equal(t, want != "", ok, in)
	}
	keys, spec, err := parseSort(nil)
	require.NoError(t, err)
	require.Equal(t, "_lastUpdated", spec)
	a := sortValues([]byte(`{"meta":{"lastUpdated":"2024-01-02T00:00:00+01:00"}}`), keys)
	b := sortValues([]byte(`{"meta":{"lastUpdated":"2024-01-01T23:30:00Z"}}`), keys)
	require.True(t, lessKeys(a, b, keys), "instants compare as times, not text")
	_, _, err = parseSort([]string{"name"})
	require.Error(t, err)
}
