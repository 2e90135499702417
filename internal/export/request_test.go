package export

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroupKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "$system", Request{Level: LevelSystem}.GroupKey())
	require.Equal(t, "$patient", Request{Level: LevelPatient}.GroupKey())
	require.Equal(t, "g1", Request{Level: LevelGroup, GroupID: "g1"}.GroupKey())
}
