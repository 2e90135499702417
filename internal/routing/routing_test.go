package routing

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestOwner(t *testing.T) {
	t.Parallel()
	table := Table{
		Rules: []Rule{
			{ResourceType: "Patient", OwnerURL: "http://mpi"},
			{ResourceType: "Observation", Category: "vital-signs", OwnerURL: "http://vitals"},
			{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
		},
		Default: Builtin,
	}
	tests := []struct {
		typ, category, want string
		err                 error
	}{
		{"Patient", "", "http://mpi", nil},
		{"Patient", "anything", "http://mpi", nil},
		{"Observation", "laboratory", "http://lab", nil},
		{"Observation", "vital-signs", "http://vitals", nil},
		{"Observation", "", "", ErrAmbiguous},
		{"Observation", "imaging", "", ErrNoRoute},
		{"Encounter", "", Builtin, nil},
	}
	for _, tt := range tests {
		got, err := table.Owner(tt.typ, tt.category)
		require.ErrorIs(t, err, tt.err, "%s/%s", tt.typ, tt.category)
		require.Equal(t, tt.want, got, "%s/%s", tt.typ, tt.category)
	}
}

func TestOwnersFanOut(t *testing.T) {
	t.Parallel()
	table := Table{Rules: []Rule{
		{ResourceType: "Observation", Category: "vital-signs", OwnerURL: "http://vitals"},
		{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
		{ResourceType: "Observation", Category: "social-history", OwnerURL: "http://lab"},
		{ResourceType: AnyType, OwnerURL: "http://default"},
	}}
	got, err := table.Owners("Observation")
	require.NoError(t, err)
	if diff := cmp.Diff([]string{"http://lab", "http://vitals"}, got); diff != "" {
		t.Fatalf("owners (-want +got):\n%s", diff)
	}
	got, err = table.Owners("Patient")
	require.NoError(t, err)
	require.Equal(t, []string{"http://default"}, got, "the tenant's '*' rule beats the process default")

	_, err = Table{}.Owners("Patient")
	require.ErrorIs(t, err, ErrNoRoute)
}
