package fhir

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePrefer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values []string
		want   Prefer
	}{
		{nil, Prefer{}},
		{[]string{"return=minimal"}, Prefer{Return: "minimal"}},
		{[]string{`return="representation"`}, Prefer{Return: "representation"}},
		{[]string{"respond-async, handling=lenient"}, Prefer{RespondAsync: true, Lenient: true}},
		{[]string{"respond-async", "Handling=Lenient"}, Prefer{RespondAsync: true, Lenient: true}},
		{[]string{"return=OperationOutcome; foo=bar, handling=strict"}, Prefer{Return: "OperationOutcome"}},
		{[]string{"respond-asyncx"}, Prefer{}},
	} {
		require.Equal(t, tc.want, ParsePrefer(tc.values), "%q", tc.values)
	}
}
