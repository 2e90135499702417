package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// splitTable owns Patient whole, splits Observation between two owners, and sends the rest to
// the tenant's '*' rule.
func splitTable(t *testing.T) Table {
	t.Helper()
	table, err := NewTable([]Rule{
		{ResourceType: "Patient", OwnerURL: "http://mpi"},
		{ResourceType: "Observation", Category: "vital-signs", OwnerURL: "http://vitals"},
		{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
		{ResourceType: "Observation", Category: "social-history", OwnerURL: "http://lab"},
	}, Builtin)
	require.NoError(t, err)
	return table
}

func TestOwner(t *testing.T) {
	t.Parallel()
	table := splitTable(t)
	tests := []struct {
		typ, category, want string
		err                 error
	}{
		{"Patient", "", "http://mpi", nil},
		{"Patient", "anything", "http://mpi", nil},
		{"Observation", "laboratory", "http://lab", nil},
		{"Observation", "vital-signs", "http://vitals", nil},
		{"Observation", "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs", "http://vitals", nil},
		{"Observation", "", "", ErrAmbiguous},
		{"Observation", "imaging", "", ErrNoRoute},
		{"Encounter", "", Builtin, nil},
	}
	for _, tt := range tests {
		got, err := table.Owner(tt.typ, tt.category)
		require.ErrorIs(t, err, tt.err, "%s/%s", tt.typ, tt.category)
		require.Equal(t, tt.want, got, "%s/%s", tt.typ, tt.category)
		if tt.err != nil {
			var re *RouteError
			require.True(t, errors.As(err, &re), "an explicit error type")
			require.Equal(t, tt.typ, re.ResourceType)
		}
	}
}

func TestOwnerByCategories(t *testing.T) {
	t.Parallel()
	table := splitTable(t)
	tests := []struct {
		name       string
		typ        string
		categories []string
		want       string
		err        error
		msg        string
	}{
		{"whole type ignores categories", "Patient", []string{"x", "y"}, "http://mpi", nil, ""},
		{"one owned category", "Observation", []string{"laboratory"}, "http://lab", nil, ""},
		{"owned and unowned", "Observation", []string{"imaging", "laboratory"}, "http://lab", nil, ""},
		{"two categories, one owner", "Observation", []string{"laboratory", "social-history"}, "http://lab", nil, ""},
		{"categories of two owners", "Observation", []string{"laboratory", "vital-signs"}, "", ErrAmbiguous, "spans several owners"},
		{"no category on a split type", "Observation", nil, "", ErrAmbiguous, "must name one"},
		{"only unowned categories", "Observation", []string{"imaging"}, "", ErrNoRoute, "owned categories: laboratory, social-history, vital-signs"},
		{"unnamed type falls back", "Condition", []string{"problem-list-item"}, Builtin, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := table.OwnerByCategories(tt.typ, tt.categories)
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, tt.want, got)
			if tt.msg != "" {
				require.Contains(t, err.Error(), tt.msg)
			}
		})
	}
}

func TestSearchOwners(t *testing.T) {
	t.Parallel()
	table := splitTable(t)
	tests := []struct {
		name       string
		typ        string
		categories []string
		want       []string
		err        error
	}{
		{"fan-out over every owner, deduplicated and sorted", "Observation", nil, []string{"http://lab", "http://vitals"}, nil},
		{"one category", "Observation", []string{"vital-signs"}, []string{"http://vitals"}, nil},
		{"two categories of one owner", "Observation", []string{"laboratory", "social-history"}, []string{"http://lab"}, nil},
		{"an unowned category matches nothing", "Observation", []string{"imaging", "laboratory"}, []string{"http://lab"}, nil},
		{"only unowned categories", "Observation", []string{"imaging"}, nil, ErrNoRoute},
		{"whole type", "Patient", []string{"whatever"}, []string{"http://mpi"}, nil},
		{"default", "Encounter", nil, []string{Builtin}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := table.SearchOwners(tt.typ, tt.categories)
			require.ErrorIs(t, err, tt.err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("owners (-want +got):\n%s", diff)
			}
		})
	}
	require.True(t, table.IsSplit("Observation"))
	require.False(t, table.IsSplit("Patient"))
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
	_, err = Table{}.Owner("Patient", "")
	require.ErrorIs(t, err, ErrNoRoute)
}

func TestNewTableRefusesWhatTheDatabaseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rules []Rule
		want  string // "" means accepted
	}{
		{"split with distinct categories", []Rule{
			{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
			{ResourceType: "Observation", Category: "vital-signs", OwnerURL: "http://vitals"},
		}, ""},
		{"two owners of one category", []Rule{
			{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
			{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab2"},
		}, "already owned by http://lab"},
		{"two whole owners", []Rule{
			{ResourceType: "Patient", OwnerURL: "http://a"},
			{ResourceType: "Patient", OwnerURL: "http://b/"},
		}, "Patient is already owned"},
		{"whole and split", []Rule{
			{ResourceType: "Observation", OwnerURL: "http://all"},
			{ResourceType: "Observation", Category: "laboratory", OwnerURL: "http://lab"},
		}, "owned whole and split"},
		{"unknown type", []Rule{{ResourceType: "Patients", OwnerURL: Builtin}}, "not a FHIR R4 resource type"},
		{"star with category", []Rule{{ResourceType: AnyType, Category: "laboratory", OwnerURL: Builtin}}, "cannot have a category"},
		{"bad owner", []Rule{{ResourceType: "Patient", OwnerURL: "ftp://x"}}, "http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := NewTable(tt.rules, "")
			if tt.want == "" {
				require.NoError(t, err)
				require.Len(t, table.Rules, len(tt.rules))
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
	table, err := NewTable([]Rule{{ResourceType: " Patient ", OwnerURL: "HTTPS://MPI.Example:443/fhir/"}}, "")
	require.NoError(t, err)
	require.Equal(t, []Rule{{ResourceType: "Patient", OwnerURL: "https://mpi.example/fhir"}}, table.Rules, "rules are normalised")
}

func TestNormalizeOwnerURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{"builtin", "builtin", ""},
		{"http://lab.example", "http://lab.example", ""},
		{"http://lab.example/", "http://lab.example", ""},
		{"https://lab.example/fhir/r4//", "https://lab.example/fhir/r4", ""},
		{"HTTP://Lab.Example:80/fhir", "http://lab.example/fhir", ""},
		{"https://lab.example:8443/fhir", "https://lab.example:8443/fhir", ""},
		{"http://[::1]:8080/", "http://[::1]:8080", ""},
		{"  http://lab.example  ", "http://lab.example", ""},
		{"", "", "empty"},
		{"Builtin", "", "absolute http or https"},
		{"lab.example/fhir", "", "absolute http or https"},
		{"/fhir", "", "absolute http or https"},
		{"ftp://lab.example", "", "absolute http or https"},
		{"http://", "", "no host"},
		{"http:lab.example", "", "no host"},
		{"http://user:pw@lab.example", "", "user info"},
		{"http://lab.example/fhir?x=1", "", "query"},
		{"http://lab.example/fhir?", "", "query"},
		{"http://lab.example/fhir#top", "", "fragment"},
		{"http://lab.example/fhir#", "", "fragment"},
		{"http://lab.example/a/../b", "", "path segments"},
		{"http://lab example", "", "not a URL"},
		{"http://lab.example/" + strings.Repeat("a", 2100), "", "longer than"},
	}
	for _, tt := range tests {
		got, err := NormalizeOwnerURL(tt.in)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

func TestResourceTypes(t *testing.T) {
	t.Parallel()
	require.Len(t, resourceTypes, 146, "FHIR R4 (4.0.1) defines 146 concrete resource types")
	require.True(t, slices.IsSorted(resourceTypes), "binary search needs a sorted list")
	for _, s := range []string{"Patient", "Observation", "MedicinalProductUndesirableEffect", "VisionPrescription", "Account"} {
		require.True(t, IsResourceType(s), s)
	}
	for _, s := range []string{"", "*", "patient", "Resource", "DomainResource", "Patients", "ObservationX", "Ingredient"} {
		require.False(t, IsResourceType(s), s)
	}
	for _, s := range resourceTypes {
		_, problems := Rule{ResourceType: s, OwnerURL: Builtin}.Normalize()
		require.Empty(t, problems, s)
	}
}

func TestValidCategory(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "vital-signs", "laboratory", "social-history", "LP7839-6", "a.b_c:d"} {
		require.True(t, ValidCategory(s), s)
	}
	for _, s := range []string{"-x", "a b", "a|b", "a,b", strings.Repeat("a", 65), "ü"} {
		require.False(t, ValidCategory(s), s)
	}
}

func TestFallbackOwner(t *testing.T) {
	t.Parallel()
	require.Equal(t, Builtin, Table{Default: Builtin}.FallbackOwner())
	require.Equal(t, "", Table{}.FallbackOwner())
	star := Table{Default: Builtin, Rules: []Rule{{ResourceType: "Patient", OwnerURL: "https://a"}, {ResourceType: AnyType, OwnerURL: "https://b"}}}
	require.Equal(t, "https://b", star.FallbackOwner())
}
