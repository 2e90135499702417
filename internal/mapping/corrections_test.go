package mapping_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
)

func readSequence(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "sequences", name))
	require.NoError(t, err)
	return raw
}

// obsCode is the OBX-3 code of a mapped Observation.
func obsCode(o map[string]any) string {
	return dig(o, "code", "coding", 0, "code").(string)
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

const (
	leucine       = "35572-7"
	phenylalanine = "29573-3"
)

// A later message about one panel of an accession (OBR-25 C) carries only the results it
// changes. Its DiagnosticReport is the panel's (same key), lists exactly the results the
// message reports — not a D result — and marks its result list as merged across messages, so
// that the owner keeps the panel's other results; each Observation has its original's key.
func TestCorrectionBundles(t *testing.T) {
	original := mapFile(t, readTestdata(t, "oru_r01_nbs_panels.hl7"))
	obsKeys := map[string]string{}
	for _, o := range entriesOf(t, original, "Observation") {
		obsKeys[obsCode(o.res)] = o.url
	}
	panel := entriesOf(t, original, "DiagnosticReport")[1]
	require.Equal(t, "AAPNL", dig(panel.res, "code", "coding", 0, "code"))

	for _, tc := range []struct {
		file, code, status string
		listed             bool
	}{
		{"nbs_correction_c.hl7", phenylalanine, "corrected", true},
		{"nbs_correction_d.hl7", leucine, "entered-in-error", false},
		{"nbs_correction_w.hl7", phenylalanine, "entered-in-error", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := mapFile(t, readSequence(t, tc.file))
			drs, obs := entriesOf(t, b, "DiagnosticReport"), entriesOf(t, b, "Observation")
			require.Len(t, drs, 1)
			require.Len(t, obs, 1)
			dr, o := drs[0], obs[0]
			require.Equal(t, panel.url, dr.url, "the correction updates the panel's report")
			require.Equal(t, "corrected", dr.res["status"])
			require.Contains(t, fhir.MergedLists(mustJSON(t, dr.res)), "result")
			require.Equal(t, tc.code, obsCode(o.res))
			require.Equal(t, obsKeys[tc.code], o.url, "the corrected result has its original's key")
			require.Equal(t, tc.status, o.res["status"])
			var listed []string
			for _, r := range asList(dr.res["result"]) {
				listed = append(listed, dig(r, "reference").(string))
			}
			if tc.listed {
				require.Equal(t, []string{o.fullURL}, listed)
			} else {
				require.Empty(t, listed, "a deleted result leaves the report")
			}
		})
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return raw
}

// The original panel and its corrections, applied in every order, leave one report per panel
// holding every result but the deleted one, each Observation with the status of the newest
// message about it.
func TestCorrectionsConverge(t *testing.T) {
	msgs := map[string][]byte{
		"O": readTestdata(t, "oru_r01_nbs_panels.hl7"),
		"C": readSequence(t, "nbs_correction_c.hl7"),
		"D": readSequence(t, "nbs_correction_d.hl7"),
		"W": readSequence(t, "nbs_correction_w.hl7"),
	}
	for _, tc := range []struct {
		set    string
		want   []string          // the amino acid panel's results, by code
		status map[string]string // Observation status by code
		value  float64           // phenylalanine
	}{
		{"OC", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "corrected"}, 60},
		{"OD", []string{phenylalanine}, map[string]string{leucine: "entered-in-error", phenylalanine: "final"}, 55},
		{"OW", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "entered-in-error"}, 60},
		{"OCDW", []string{phenylalanine}, map[string]string{leucine: "entered-in-error", phenylalanine: "entered-in-error"}, 60},
	} {
		for _, order := range permutations(tc.set) {
			t.Run(order, func(t *testing.T) {
				s := &memStore{byType: map[string][]map[string]any{}}
				for _, m := range order {
					s.apply(t, mapFile(t, msgs[string(m)]))
				}
				require.Len(t, s.byType["DiagnosticReport"], 3, "one report per panel")
				require.Len(t, s.byType["Observation"], 5)
				byID := map[string]map[string]any{}
				for _, o := range s.byType["Observation"] {
					byID["Observation/Observation-"+fhir.Identifier{System: dig(o, "identifier", 0, "system").(string), Value: dig(o, "identifier", 0, "value").(string)}.Token()] = o
				}
				var panel map[string]any
				for _, dr := range s.byType["DiagnosticReport"] {
					if dig(dr, "code", "coding", 0, "code") == "AAPNL" {
						panel = dr
					}
				}
				require.NotNil(t, panel)
				var got []string
				for _, r := range asList(panel["result"]) {
					o := byID[dig(r, "reference").(string)]
					require.NotNil(t, o, "result %v is a stored Observation", r)
					got = append(got, obsCode(o))
				}
				require.Equal(t, tc.want, got, "results of the amino acid panel")
				for _, o := range byID {
					if want, ok := tc.status[obsCode(o)]; ok {
						require.Equal(t, want, o["status"], "status of %s", obsCode(o))
					}
					if obsCode(o) == phenylalanine {
						require.Equal(t, tc.value, dig(o, "valueQuantity", "value"))
					}
				}
				for _, dr := range s.byType["DiagnosticReport"] {
					if dig(dr, "code", "coding", 0, "code") != "AAPNL" {
						require.NotEmpty(t, asList(dr["result"]), "the other panels keep their results")
					}
				}
			})
		}
	}
}

// permutations of the letters of s.
func permutations(s string) []string {
	if len(s) <= 1 {
		return []string{s}
	}
	var out []string
	for i := range s {
		for _, p := range permutations(s[:i] + s[i+1:]) {
			out = append(out, s[i:i+1]+p)
		}
	}
	return out
}

// LAB-ORU-1 (preliminary) and LAB-ORU-2 (final) are the same two orders: in either order and
// replayed they leave two ServiceRequests, two reports of five results each and one
// Observation per result.
func TestLabResultsConverge(t *testing.T) {
	first, final := mapFile(t, readTestdata(t, "oru_r01_lab1.hl7")), mapFile(t, readTestdata(t, "oru_r01_lab2.hl7"))
	for name, seq := range map[string][]*fhir.Bundle{
		"in order": {first, final}, "reversed": {final, first}, "replayed": {first, final, first, final},
	} {
		t.Run(name, func(t *testing.T) {
			s := &memStore{byType: map[string][]map[string]any{}}
			for _, b := range seq {
				s.apply(t, b)
			}
			require.Len(t, s.byType["ServiceRequest"], 2)
			require.Len(t, s.byType["DiagnosticReport"], 2)
			require.Len(t, s.byType["Observation"], 10)
			for _, dr := range s.byType["DiagnosticReport"] {
				require.Len(t, asList(dr["result"]), 5)
			}
		})
	}
}
