package fhir

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckDepth(t *testing.T) {
	t.Parallel()
	nested := func(n int) string { return strings.Repeat(`{"a":[`, n) + "1" + strings.Repeat("]}", n) }
	require.NoError(t, CheckDepth([]byte(nested(MaxDepth/2))))
	require.ErrorContains(t, CheckDepth([]byte(nested(MaxDepth/2+1))), "nested more than 64 levels")
	require.ErrorContains(t, CheckDepth([]byte(strings.Repeat("[", 100000))), "nested")
	// Brackets inside strings, escaped quotes included, are text.
	require.NoError(t, CheckDepth([]byte(`{"text":"`+strings.Repeat(`[{\"`, 200)+`"}`)))
}
