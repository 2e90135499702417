package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// corpus loads the Microsoft samples, or skips loudly where shared/reference is absent.
func corpus(t *testing.T) (ref string, samples []sample) {
	t.Helper()
	root, err := moduleRoot()
	require.NoError(t, err)
	ref, err = findReference(root)
	if err != nil {
		t.Skipf("SKIPPED: %v; the comparison with Microsoft FHIR-Converter was NOT checked", err)
	}
	samples, err = loadCorpus(ref)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(samples), 34, "expected/sample pairs missing")
	return ref, samples
}

// Where both converters produce a Patient, the facts the mapping has handled from the start
// agree: birth date, gender, and identifiers — every identifier we emit is one Microsoft emits
// too, and every PID-3 identifier is among ours. (Microsoft also copies DB1, GT1 and IN2
// identifiers into Patient.identifier, so the full sets are not expected to be equal; the
// report lists those differences.)
func TestPatientFactsAgree(t *testing.T) {
	_, samples := corpus(t)
	compared := 0
	for _, s := range samples {
		ours, theirs := first(s.ours, "Patient"), first(s.theirs, "Patient")
		if ours == nil || theirs == nil {
			continue
		}
		compared++
		t.Run(s.name, func(t *testing.T) {
			for _, f := range compareBundles(s.ours, s.theirs) {
				if f.Fact == "patient.birthDate" || f.Fact == "patient.gender" {
					require.Equal(t, Agree, f.Outcome, "%s: ours %q, theirs %q", f.Fact, f.Ours, f.Theirs)
				}
			}
			oursIDs, theirIDs := set(ours, identifiers), set(theirs, identifiers)
			require.NotEmpty(t, oursIDs)
			for _, id := range oursIDs {
				require.Contains(t, theirIDs, id, "we emit identifier %q, Microsoft does not (theirs: %v)", id, theirIDs)
			}
			for rep := 1; ; rep++ {
				id, ok := s.msg.Lookup(fmt.Sprintf("PID-3(%d).1", rep))
				if !ok {
					break
				}
				if id = strings.TrimSpace(id); id != "" {
					require.True(t, slices.Contains(oursIDs, id), "PID-3 identifier %q missing from ours %v", id, oursIDs)
				}
			}
		})
	}
	require.GreaterOrEqual(t, compared, 30, "too few messages with a Patient on both sides")
}

// The report in docs/ is what a fresh run writes: a mapping change regenerates it
// (`go run ./tools/mscompare`), so its differences are reviewed with the change.
func TestReportIsCurrent(t *testing.T) {
	ref, _ := corpus(t)
	root, err := moduleRoot()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "docs", "mapping-comparison.md"))
	require.NoError(t, err, "run `go run ./tools/mscompare` to create the report")
	require.NoError(t, run(true, ref, ""))
}

func TestCompareFact(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mode         matchMode
		ours, theirs value
		want         Outcome
		counted      bool
	}{
		{"equal sets", matchAll, value{"a", "b"}, value{"a", "b"}, Agree, true},
		{"subset is a difference", matchAll, value{"a"}, value{"a", "b"}, Differ, true},
		{"one shared coding agrees", matchAny, value{"http://loinc.org|1", "l|x"}, value{"http://loinc.org|1"}, Agree, true},
		{"no shared coding", matchAny, value{"l|x"}, value{"l|y"}, Differ, true},
		{"ours absent", matchAll, nil, value{"a"}, MissingOurs, true},
		{"theirs absent", matchAll, value{"a"}, nil, MissingTheirs, true},
		{"both absent is not counted", matchAll, nil, nil, Agree, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, counted := compareFact("f", "", tc.mode, tc.ours, tc.theirs)
			require.Equal(t, tc.counted, counted)
			if counted {
				require.Equal(t, tc.want, r.Outcome)
			}
		})
	}
}

func TestNormalise(t *testing.T) {
	require.Equal(t, normDateTime("2014-10-05T23:27:00Z"), normDateTime("2014-10-06T06:27:00+07:00"), "one instant, two offsets")
	require.NotEqual(t, normDateTime("2014-10-06T06:27:00"), normDateTime("2014-10-06T06:27:00+07:00"), "a lost offset is a difference")
	require.Equal(t, "1962-03", normDateTime("1962-03"), "partial dates stay as written")
	require.Equal(t, "4.06", number("4.060"))
	r := resource{"referenceRange": []any{map[string]any{"low": map[string]any{"value": "70"}, "high": map[string]any{"value": "80.0"}}}}
	require.True(t, intersects(referenceRange(r), referenceRange(resource{"referenceRange": []any{map[string]any{"text": "70 - 80"}}})),
		"a structured range agrees with the same range as text")
}
