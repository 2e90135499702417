package export

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBuildManifest(t *testing.T) {
	t.Parallel()
	tt := time.Date(2024, 6, 1, 14, 0, 0, 123000000, time.FixedZone("CEST", 2*3600))
	const req = "https://ex.org/fhir/Patient/$export?_type=Patient,Observation"
	for _, tc := range []struct {
		name  string
		files []File
		want  string
	}{
		{
			name:  "no files: empty output and error, no deleted",
			files: nil,
			want:  `{"transactionTime":"2024-06-01T12:00:00.123Z","request":"` + req + `","requiresAccessToken":false,"output":[],"error":[]}`,
		},
		{
			name: "grouped by kind, sorted by type, parts of a type in the order given",
			files: []File{
				{Kind: KindError, URL: "https://ex.org/e1", Count: 1},
				{Kind: KindOutput, Type: "Patient", URL: "https://ex.org/p10", Count: 5},
				{Kind: KindOutput, Type: "Observation", URL: "https://ex.org/o2", Count: 7},
				{Kind: KindDeleted, URL: "https://ex.org/d1", Count: 2},
				{Kind: KindOutput, Type: "Patient", URL: "https://ex.org/p2", Count: 1000},
				{Kind: KindOutput, Type: "Observation", URL: "https://ex.org/o1"},
				{Kind: "bogus", Type: "Patient", URL: "https://ex.org/x"},
			},
			want: `{"transactionTime":"2024-06-01T12:00:00.123Z","request":"` + req + `","requiresAccessToken":false,` +
				`"output":[` +
				`{"type":"Observation","url":"https://ex.org/o2","count":7},` +
				`{"type":"Observation","url":"https://ex.org/o1"},` +
				`{"type":"Patient","url":"https://ex.org/p10","count":5},` +
				`{"type":"Patient","url":"https://ex.org/p2","count":1000}],` +
				`"deleted":[{"type":"Bundle","url":"https://ex.org/d1","count":2}],` +
				`"error":[{"type":"OperationOutcome","url":"https://ex.org/e1","count":1}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(BuildManifest(tt, req, false, tc.files))
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
			require.Equal(t, tc.want, string(got), "field order as in the IG")
		})
	}
}

func TestBuildManifestDeterministic(t *testing.T) {
	t.Parallel()
	files := []File{
		{Kind: KindOutput, Type: "B", URL: "u1"}, {Kind: KindOutput, Type: "A", URL: "u2"},
		{Kind: KindOutput, Type: "B", URL: "u3"}, {Kind: KindOutput, Type: "A", URL: "u4"},
	}
	m := BuildManifest(testNow, "r", true, files)
	require.True(t, m.RequiresAccessToken)
	require.Equal(t, []ManifestFile{{Type: "A", URL: "u2"}, {Type: "A", URL: "u4"}, {Type: "B", URL: "u1"}, {Type: "B", URL: "u3"}}, m.Output)
	require.Equal(t, []File{
		{Kind: KindOutput, Type: "B", URL: "u1"}, {Kind: KindOutput, Type: "A", URL: "u2"},
		{Kind: KindOutput, Type: "B", URL: "u3"}, {Kind: KindOutput, Type: "A", URL: "u4"},
	}, files, "the input is not reordered")
}

// TestManifestTransactionTimeRoundTrip checks that transactionTime, used by clients as their
// next _since, loses nothing: the next kick-off gets back the same instant.
func TestManifestTransactionTimeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []time.Time{
		time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 1, time.FixedZone("", -5*3600)),
	} {
		m := BuildManifest(tt, "r", false, nil)
		got, perr := parseInstant(m.TransactionTime)
		require.Nil(t, perr, m.TransactionTime)
		require.True(t, tt.Equal(got), "%s vs %s", tt, got)
		require.True(t, strings.HasSuffix(m.TransactionTime, "Z"))
	}
}

func TestProgressText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		done, total int
		resources   int64
		want        string
	}{
		{0, 7, 0, "0% complete, 0/7 types, 0 resources"},
		{3, 7, 12345, "42% complete, 3/7 types, 12345 resources"},
		{7, 7, 99, "100% complete, 7/7 types, 99 resources"},
		{999, 1000, 1, "99% complete, 999/1000 types, 1 resources"},
		{9, 7, 5, "100% complete, 7/7 types, 5 resources"},
		{-1, 7, -5, "0% complete, 0/7 types, 0 resources"},
		{0, 0, 10, "in progress, 10 resources"},
		{3, -1, 10, "in progress, 10 resources"},
		{math.MaxInt - 1, math.MaxInt, 1, "99% complete, 9223372036854775806/9223372036854775807 types, 1 resources"},
	} {
		require.Equal(t, tc.want, ProgressText(tc.done, tc.total, tc.resources), "%d/%d %d", tc.done, tc.total, tc.resources)
	}
}

func TestProgressTextUnder100(t *testing.T) {
	t.Parallel()
	for _, done := range []int{math.MinInt, -1, 0, 1, math.MaxInt - 1, math.MaxInt} {
		for _, total := range []int{math.MinInt, 0, 1, math.MaxInt} {
			for _, res := range []int64{math.MinInt64, 0, math.MaxInt64} {
				s := ProgressText(done, total, res)
				require.Less(t, len(s), 100, s)
				for _, r := range s {
					require.Less(t, r, rune(128), "ASCII only: %q", s)
				}
			}
		}
	}
}
