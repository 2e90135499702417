package export

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckOwnerFilters(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckOwnerFilters("Observation", nil))
	require.NoError(t, CheckOwnerFilters("Observation", []string{"status=final"}))
	err := CheckOwnerFilters("Observation", []string{"status=final", "category=laboratory"})
	var pe *ParamError
	require.True(t, errors.As(err, &pe))
	require.Equal(t, "not-supported", pe.IssueCode())
	require.Contains(t, pe.Error(), "_typeFilter")
	require.Contains(t, pe.Error(), "exported twice")
}
