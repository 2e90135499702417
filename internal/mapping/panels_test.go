package mapping_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// mapped is one entry of a mapped Bundle: its conditional URL and resource.
type mapped struct {
	fullURL, url string
	res          map[string]any
}

func entriesOf(t *testing.T, b *fhir.Bundle, typ string) []mapped {
	t.Helper()
	var out []mapped
	for _, e := range b.Entry {
		var r map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &r))
		if r["resourceType"] != typ {
			continue
		}
		u := e.Request.URL
		if e.Request.Method == "POST" {
			u = typ + "?" + e.Request.IfNoneExist
		}
		out = append(out, mapped{fullURL: e.FullURL, url: u, res: r})
	}
	return out
}

func urls(ms []mapped) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.url)
	}
	return out
}

// keepGroups returns the message in path with only the order groups (ORC/OBR and what follows
// them) whose OBR-1 set id is in keep: a later message about some panels of the accession.
func keepGroups(t *testing.T, path string, keep ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	var pendingORC string
	in := true
	for _, seg := range strings.Split(strings.TrimRight(string(raw), "\r"), "\r") {
		switch {
		case strings.HasPrefix(seg, "ORC|"):
			pendingORC = seg
			continue
		case strings.HasPrefix(seg, "OBR|"):
			set := strings.Split(seg, "|")[1]
			in = false
			for _, k := range keep {
				in = in || set == k
			}
			if in && pendingORC != "" {
				out = append(out, pendingORC)
			}
			if in {
				pendingORC = ""
			}
		case strings.HasPrefix(seg, "MSH|") || strings.HasPrefix(seg, "PID|") || strings.HasPrefix(seg, "SFT|"):
			out = append(out, seg)
			continue
		}
		if in {
			out = append(out, seg)
		}
	}
	return []byte(strings.Join(out, "\r") + "\r")
}

// TestPanelsOfOneAccession: OBRs that share their filler (accession) number, and their placer
// number, but order different services are separate orders: one ServiceRequest and one
// DiagnosticReport per OBR, each report holding its own results, and Specimens of one id but
// different types stay apart. Identity is stable across messages: a later message about one
// of the panels keys its ServiceRequest, DiagnosticReport and Observations exactly as the
// first message did.
func TestPanelsOfOneAccession(t *testing.T) {
	for _, tc := range []struct {
		file      string
		results   []int // OBX per OBR group, in order
		specimens int
		later     []string // OBR-1 set ids of a later message about some panels
	}{
		{"oru_r01_nbs_panels.hl7", []int{2, 2, 1}, 2, []string{"2"}},
		{"oru_r01_elr_shared_filler.hl7", []int{2, 1, 2, 1}, 0, []string{"2", "5"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			b := mapFile(t, raw)
			srs, drs, obs := entriesOf(t, b, "ServiceRequest"), entriesOf(t, b, "DiagnosticReport"), entriesOf(t, b, "Observation")
			require.Len(t, srs, len(tc.results), "one ServiceRequest per OBR")
			require.Len(t, drs, len(tc.results), "one DiagnosticReport per OBR")
			listed := map[string]int{}
			codes := map[string]bool{}
			for i, dr := range drs {
				res, _ := dr.res["result"].([]any)
				require.Len(t, res, tc.results[i], "report %d holds its own results", i)
				for _, r := range res {
					listed[r.(map[string]any)["reference"].(string)]++
				}
				code, _ := json.Marshal(dr.res["code"])
				codes[string(code)] = true
			}
			require.Len(t, codes, len(drs), "each report keeps its own OBR-4")
			require.Len(t, obs, len(listed))
			for _, o := range obs {
				require.Equal(t, 1, listed[o.fullURL], "%s is a result of exactly one report", o.url)
			}
			require.Len(t, entriesOf(t, b, "Specimen"), tc.specimens)

			later := mapFile(t, keepGroups(t, path, tc.later...))
			for _, typ := range []string{"ServiceRequest", "DiagnosticReport", "Observation", "Specimen"} {
				all := strings.Join(urls(entriesOf(t, b, typ)), "\n")
				for _, u := range urls(entriesOf(t, later, typ)) {
					require.Contains(t, all, u, "a later message about panel(s) %v keys its %s as the first did", tc.later, typ)
				}
			}
			require.Len(t, entriesOf(t, later, "DiagnosticReport"), len(tc.later))
		})
	}
}

// TestOrderAndResultMeet: an ORM and the ORU that answers it key their ServiceRequests alike,
// also when the OBRs of the requisition share one placer number.
func TestOrderAndResultMeet(t *testing.T) {
	keysOf := func(file string) []string {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		require.NoError(t, err)
		return urls(entriesOf(t, mapFile(t, raw), "ServiceRequest"))
	}
	orm, oru := keysOf("orm_o01_raster.hl7"), keysOf("oru_r01_raster.hl7")
	require.Len(t, orm, 3)
	require.Equal(t, orm, oru)
}

// One message ordering the same service twice under one number: two orders, the second keyed
// with its OBR-1, and a note saying so.
func TestSameServiceTwiceUnderOneNumber(t *testing.T) {
	raw := "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\r" +
		"OBR|1|PL1^EHR|FL1^LAB|2345-7^Glucose^LN|||20240101080000+0000|||||||||||||||20240101110000+0000||CH|F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|||||F\r" +
		"OBR|2|PL1^EHR|FL1^LAB|2345-7^Glucose^LN|||20240101100000+0000|||||||||||||||20240101110000+0000||CH|F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||140|mg/dL|||||F\r"
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	drs := entriesOf(t, res.Bundle, "DiagnosticReport")
	require.Len(t, drs, 2)
	require.Len(t, entriesOf(t, res.Bundle, "Observation"), 2)
	require.True(t, strings.HasSuffix(drs[1].url, "%7C%232"), drs[1].url)
	require.Contains(t, strings.Join(res.Notes, "\n"), "repeated in the message")
}

// A child order (OBR-29 parent number, OBR-26 parent result) is based on its parent's
// ServiceRequest when the message carries it; the susceptibility panels of two isolates,
// sharing the culture's accession number and their own service code, stay two orders; a
// child without numbers of its own is keyed on its parent's.
func TestChildOrders(t *testing.T) {
	raw := "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\r" +
		"OBR|1||ACC9^LAB|600-7^Bacteria identified in Blood by Culture^LN|||20240101080000+0000|||||||||||||||20240101110000+0000||MB|F\r" +
		"OBX|1|CWE|600-7^Bacteria identified^LN|1|112283007^Escherichia coli^SCT||||||F\r" +
		"OBX|2|CWE|600-7^Bacteria identified^LN|2|3092008^Staphylococcus aureus^SCT||||||F\r" +
		"OBR|2||ACC9^LAB|29576-6^Bacterial susceptibility panel^LN|||20240101080000+0000|||||||||||||||20240101110000+0000||MB|F|600-7&Bacteria identified&LN^1|||^ACC9&LAB\r" +
		"OBX|1|SN|18906-8^Ciprofloxacin^LN|1|<=^0.25|ug/mL|||||F\r" +
		"OBR|3||ACC9^LAB|29576-6^Bacterial susceptibility panel^LN|||20240101080000+0000|||||||||||||||20240101110000+0000||MB|F|600-7&Bacteria identified&LN^2|||^ACC9&LAB\r" +
		"OBX|1|SN|18906-8^Ciprofloxacin^LN|1|>^4|ug/mL|||||F\r" +
		"OBR|4|||18907-6^Clindamycin screen^LN|||20240101080000+0000|||||||||||||||20240101110000+0000||MB|F|600-7&Bacteria identified&LN^2|||^ACC9&LAB\r" +
		"OBX|1|CWE|18907-6^Clindamycin^LN|1|R^Resistant^HL70078||||||F\r"
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	srs, drs := entriesOf(t, res.Bundle, "ServiceRequest"), entriesOf(t, res.Bundle, "DiagnosticReport")
	require.Len(t, srs, 4)
	require.Len(t, drs, 4)
	require.Len(t, entriesOf(t, res.Bundle, "Observation"), 5)
	for _, child := range srs[1:] {
		require.Equal(t, srs[0].fullURL, dig(child.res, "basedOn", 0, "reference"), "%s is based on the culture", child.url)
	}
	require.Contains(t, drs[3].url, "ACC9", "a child without numbers is keyed on its parent's")
	require.NotContains(t, strings.Join(res.Notes, "\n"), "repeated")
}
