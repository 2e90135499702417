package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/mapping"
	"github.com/nhp/interop/internal/store"
)

const (
	leucine       = "35572-7"
	phenylalanine = "29573-3"
)

// nbsMessage reads a newborn-screening message of internal/mapping/testdata (the panels of
// one accession, or a later correction of its amino acid panel) and gives it the patient,
// kit and accession of sequence n, so that each sequence has reports of its own.
func nbsMessage(t *testing.T, path string, n int) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "internal", "mapping", "testdata", path))
	require.NoError(t, err)
	s := string(raw)
	for _, id := range []string{"NB123456", "KIT778899", "ACC2024-0042", "DBS-778899"} {
		s = strings.ReplaceAll(s, id, fmt.Sprintf("%s-%d", id, n))
	}
	return []byte(s)
}

// panelResults returns the codes of the results the stored amino acid panel report of
// sequence n lists, in order, and the status of each Observation of that report's order.
func (h *harness) panelResults(n int) (listed []string, status map[string]string, phe float64) {
	h.t.Helper()
	ctx := context.Background()
	key := fhir.Identifier{System: mapping.SystemV2Order, Value: fmt.Sprintf("urn:id:NBSLAB|ACC2024-0042-%d|urn:id:L|AAPNL", n)}
	res, err := h.acts.Store.Search(ctx, tenant, "DiagnosticReport", store.Query{Identifier: &key})
	require.NoError(h.t, err)
	require.Equal(h.t, 1, res.Total, "one amino acid panel report")
	var dr struct {
		Result []struct {
			Reference string `json:"reference"`
		} `json:"result"`
	}
	require.NoError(h.t, json.Unmarshal(res.Resources[0].Body, &dr))
	type obs struct {
		Status string `json:"status"`
		Code   struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"code"`
		ValueQuantity struct {
			Value float64 `json:"value"`
		} `json:"valueQuantity"`
	}
	for _, r := range dr.Result {
		typ, id, _ := strings.Cut(r.Reference, "/")
		require.Equal(h.t, "Observation", typ)
		stored, err := h.acts.Store.Read(ctx, tenant, typ, id)
		require.NoError(h.t, err)
		var o obs
		require.NoError(h.t, json.Unmarshal(stored.Body, &o))
		listed = append(listed, o.Code.Coding[0].Code)
	}
	status = map[string]string{}
	for _, code := range []string{leucine, phenylalanine} {
		ident := fhir.Identifier{System: mapping.SystemV2Observation, Value: key.Value + "|http://loinc.org|" + code + "|1"}
		res, err := h.acts.Store.Search(ctx, tenant, "Observation", store.Query{Identifier: &ident})
		require.NoError(h.t, err)
		require.Equal(h.t, 1, res.Total, "one Observation %s", code)
		var o obs
		require.NoError(h.t, json.Unmarshal(res.Resources[0].Body, &o))
		status[code] = o.Status
		if code == phenylalanine {
			phe = o.ValueQuantity.Value
		}
	}
	return listed, status, phe
}

// A correction of one result (OBR-25 C, one OBX) replaces that Observation and leaves the
// panel's report with all its results; OBX-11 D takes one result out of the report, W marks
// it entered-in-error; whichever of the original and the correction is processed first.
// Through the Route step and the built-in store.
func TestCorrectionsKeepTheReportWhole(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	files := map[byte]string{
		'O': "oru_r01_nbs_panels.hl7",
		'C': "sequences/nbs_correction_c.hl7",
		'D': "sequences/nbs_correction_d.hl7",
		'W': "sequences/nbs_correction_w.hl7",
	}
	for n, tc := range []struct {
		order  string
		listed []string
		status map[string]string
		phe    float64
	}{
		{"OC", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "corrected"}, 60},
		{"CO", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "corrected"}, 60},
		{"OD", []string{phenylalanine}, map[string]string{leucine: "entered-in-error", phenylalanine: "final"}, 55},
		{"DO", []string{phenylalanine}, map[string]string{leucine: "entered-in-error", phenylalanine: "final"}, 55},
		{"OW", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "entered-in-error"}, 60},
		{"WO", []string{leucine, phenylalanine}, map[string]string{leucine: "final", phenylalanine: "entered-in-error"}, 60},
	} {
		for i := range tc.order {
			m := tc.order[i]
			routed := h.route(fmt.Sprintf("CORR-%d-%c", n, m), nbsMessage(t, files[m], n))
			if i > 0 && m == 'O' {
				// The late original is older than the correction: the result it shares is
				// refused as stale; the report takes the other results.
				require.Positive(t, routed.Stale, "order %s", tc.order)
			}
		}
		listed, status, phe := h.panelResults(n)
		require.Equal(t, tc.listed, listed, "order %s: the panel's results", tc.order)
		require.Equal(t, tc.status, status, "order %s", tc.order)
		require.Equal(t, tc.phe, phe, "order %s: phenylalanine", tc.order)
	}
}

// The panels of one accession (OBRs sharing their numbers, different OBR-4) are stored as one
// report each with its own results, also when a later message about one panel arrives.
func TestPanelsOfOneAccessionStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	for _, file := range []string{"oru_r01_nbs_panels.hl7", "oru_r01_elr_shared_filler.hl7"} {
		h.route("P-"+file, nbsMessage(t, file, 100))
	}
	h.route("P-correction", nbsMessage(t, "sequences/nbs_correction_c.hl7", 100))
	res, err := h.acts.Store.Search(ctx, tenant, "DiagnosticReport", store.Query{Count: 50})
	require.NoError(t, err)
	got := map[string]int{}
	for _, r := range res.Resources {
		var dr struct {
			Code struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Result []json.RawMessage `json:"result"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &dr))
		got[dr.Code.Coding[0].Code] = len(dr.Result)
	}
	require.Equal(t, map[string]int{"54089-8": 2, "AAPNL": 2, "THYPNL": 1, "68991-9": 2, "42803-7": 1, "50545-3": 2, "62237-3": 1}, got)
	sr, err := h.acts.Store.Search(ctx, tenant, "ServiceRequest", store.Query{Count: 50})
	require.NoError(t, err)
	require.Len(t, sr.Resources, 7, "one ServiceRequest per OBR")
}
