package mapping

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
)

const clinicalMSH = "MSH|^~\\&|EHR|FAC|IIS|RFAC|20240101120000||VXU^V04^VXU_V04|CTRL1|P|2.5.1\r" +
	"PID|1||P1^^^HOSP^MR||DOE^JANE||20100101|F\r"

// mapClinical maps raw segments after clinicalMSH (with msh9 replacing the message type) and
// returns the resources of type typ, decoded.
func mapClinical(t *testing.T, msh9, segments, typ string) ([]map[string]any, Result) {
	t.Helper()
	raw := strings.Replace(clinicalMSH, "VXU^V04^VXU_V04", msh9, 1) + strings.ReplaceAll(segments, "\n", "\r") + "\r"
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	r, err := New(Options{}).Map(m)
	require.NoError(t, err)
	var out []map[string]any
	for _, e := range r.Bundle.Entry {
		var res map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &res))
		if res["resourceType"] == typ {
			out = append(out, res)
		}
	}
	return out, r
}

func TestImmunizationStatus(t *testing.T) {
	for _, tc := range []struct {
		name, rxa, status, reason string
	}{
		{"complete", "RXA|0|1|20240101||08^HepB^CVX|0.5|mL^mL^UCUM||00^New^NIP001||||||L1||||||CP|A", "completed", ""},
		{"partial is completed", "RXA|0|1|20240101||08^HepB^CVX|0.5|mL^mL^UCUM||00^New^NIP001|||||||||||PA|A", "completed", ""},
		{"empty RXA-20 is completed", "RXA|0|1|20240101||08^HepB^CVX", "completed", ""},
		{"refused keeps RXA-18", "RXA|0|1|20240101||08^HepB^CVX|999||||||||||||00^Parental decision^NIP002||RE", "not-done", "00"},
		{"not administered", "RXA|0|1|20240101||08^HepB^CVX|999||||||||||||||NA", "not-done", ""},
		{"RXA-18 ignored when completed", "RXA|0|1|20240101||08^HepB^CVX|0.5|||||||||||00^x^NIP002||CP", "completed", ""},
		{"delete wins", "RXA|0|1|20240101||08^HepB^CVX|0.5||||||||||||||CP|D", "entered-in-error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ims, _ := mapClinical(t, "VXU^V04^VXU_V04", "ORC|RE||F1^EHR\n"+tc.rxa, "Immunization")
			require.Len(t, ims, 1)
			require.Equal(t, tc.status, ims[0]["status"])
			if tc.reason == "" {
				require.NotContains(t, ims[0], "statusReason")
			} else {
				require.Equal(t, tc.reason, ims[0]["statusReason"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"])
			}
		})
	}
	// A bad non-identity field never refuses the message: the administration whose status
	// cannot be read is left out with a note, the patient and the other one still map.
	t.Run("unknown RXA-20 is a note, not a refusal", func(t *testing.T) {
		ims, r := mapClinical(t, "VXU^V04^VXU_V04", "ORC|RE||F1^EHR\nRXA|0|1|20240101||08^HepB^CVX|||||||||||||||XX\nORC|RE||F2^EHR\nRXA|0|1|20240102||03^MMR^CVX||||||||||||||CP", "Immunization")
		require.Len(t, ims, 1)
		require.Equal(t, "completed", ims[0]["status"])
		require.Contains(t, strings.Join(r.Notes, "\n"), "RXA(1)-20")
		patients, _ := mapClinical(t, "VXU^V04^VXU_V04", "ORC|RE||F1^EHR\nRXA|0|1|20240101||08^HepB^CVX|||||||||||||||XX", "Patient")
		require.Len(t, patients, 1)
	})
	t.Run("unreadable RXA-3 is data-absent with a note", func(t *testing.T) {
		ims, r := mapClinical(t, "VXU^V04^VXU_V04", "ORC|RE||F1^EHR\nRXA|0|1|2024-01-01||08^HepB^CVX", "Immunization")
		require.Len(t, ims, 1)
		require.NotContains(t, ims[0], "occurrenceDateTime")
		require.Contains(t, ims[0], "_occurrenceDateTime")
		require.Contains(t, strings.Join(r.Notes, "\n"), "RXA-3: ")
	})
}

func TestImmunizationPrimarySource(t *testing.T) {
	for _, tc := range []struct {
		name, rxa9 string
		want       any // true, false or nil (data-absent-reason)
		origin     []string
	}{
		{"new record", "00^New immunization record^NIP001", true, nil},
		{"historical", "01^Historical^NIP001", false, []string{"01"}},
		{"parent's written record", "03^Written record^NIP001", false, []string{"record", "03"}},
		{"absent", "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ims, _ := mapClinical(t, "VXU^V04^VXU_V04", "ORC|RE||F1^EHR\nRXA|0|1|20240101||08^HepB^CVX|999|||"+tc.rxa9, "Immunization")
			require.Len(t, ims, 1)
			im := ims[0]
			if tc.want == nil {
				require.NotContains(t, im, "primarySource")
				require.Contains(t, im, "_primarySource", "US Core requires primarySource: data-absent-reason")
				return
			}
			require.Equal(t, tc.want, im["primarySource"])
			var codes []string
			if ro, ok := im["reportOrigin"].(map[string]any); ok {
				for _, c := range ro["coding"].([]any) {
					codes = append(codes, c.(map[string]any)["code"].(string))
				}
			}
			require.Equal(t, tc.origin, codes)
		})
	}
}

func TestImmunizationIdentity(t *testing.T) {
	for _, tc := range []struct {
		name, orc, url string
	}{
		{"filler wins", "ORC|RE|P1^PL|F1^FL", "Immunization?identifier=urn%3Aid%3AFL%7CF1"},
		{"placer without filler", "ORC|RE|P1^PL", "Immunization?identifier=urn%3Aid%3APL%7CP1"},
		{"filler without authority: sending application", "ORC|RE||F1", "Immunization?identifier=urn%3Aid%3AEHR%7CF1"},
		{"no order numbers: patient + vaccine + date", "ORC|RE",
			"Immunization?identifier=https%3A%2F%2Finterop.nhp.health%2Ffhir%2Fsid%2Fv2-immunization%7Curn%3Aid%3AHOSP%7CP1%7Chttp%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fcvx%7C08%7C20240101"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := mapClinical(t, "VXU^V04^VXU_V04", tc.orc+"\nRXA|0|1|20240101||08^HepB^CVX|999", "Immunization")
			var urls []string
			for _, e := range r.Bundle.Entry {
				if strings.HasPrefix(e.Request.URL, "Immunization") {
					urls = append(urls, e.Request.URL)
				}
			}
			require.Equal(t, []string{tc.url}, urls)
		})
	}
}

func TestImmunizationOrderObservations(t *testing.T) {
	ims, r := mapClinical(t, "VXU^V04^VXU_V04", `ORC|RE||F1^EHR
RXA|0|1|20240101||08^HepB^CVX|0.5|mL^mL^UCUM||00^New^NIP001
RXR|C28161^Intramuscular^NCIT|LD^Left Deltoid^HL70163
OBX|1|CE|64994-7^Eligibility^LN|1|V02^VFC Medicaid^HL70064||||||F
OBX|2|CE|30963-3^Funding source^LN|2|VXC1^Federal^CDCPHINVS||||||F
OBX|3|CE|30956-7^Vaccine type^LN|3|45^Hep B^CVX||||||F
OBX|4|TS|29768-9^VIS published^LN|3|20120202||||||F
OBX|5|TS|29769-7^VIS presented^LN|3|20240101||||||F
OBX|6|CE|31044-1^Reaction^LN|4|VXC12^Fever^CDCPHINVS||||||F|||20240102
OBX|7|CE|31044-1^Reaction^LN|4|VXC14^Rash^CDCPHINVS||||||F|||20240103
OBX|8|CE|59784-9^Disease with presumed immunity^LN|5|66071002^Hep B^SCT||||||F`, "Immunization")
	require.Len(t, ims, 1)
	im := ims[0]
	require.Equal(t, "V02", dig(im, "programEligibility", 0, "coding", 0, "code"))
	require.Equal(t, "VXC1", dig(im, "fundingSource", "coding", 0, "code"))
	require.Equal(t, []any{map[string]any{"documentType": "Hep B", "publicationDate": "2012-02-02", "presentationDate": "2024-01-01"}}, im["education"])
	require.Equal(t, "http://ncithesaurus-stage.nci.nih.gov", dig(im, "route", "coding", 0, "system"))
	require.Equal(t, "http://terminology.hl7.org/CodeSystem/v2-0163", dig(im, "site", "coding", 0, "system"))
	require.Len(t, im["reaction"], 2, "two reactions under one OBX-4 sub-id stay two")

	obs := map[string]map[string]any{}
	for _, e := range r.Bundle.Entry {
		var res map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &res))
		if res["resourceType"] == "Observation" {
			obs[dig(res, "valueCodeableConcept", "coding", 0, "code").(string)] = res
		}
	}
	require.Len(t, obs, 3)
	require.NotContains(t, obs["VXC12"], "partOf", "a reaction is referenced by the Immunization")
	require.Contains(t, obs["66071002"], "partOf", "another OBX is partOf the Immunization (IG VXU_V04)")
	checkBackReferences(t, r)
}

func TestAllergyValueMaps(t *testing.T) {
	for _, tc := range []struct {
		al1                           string
		category, typ, crit, severity string
	}{
		{"AL1|1|DA^Drug^HL70127|70618^Penicillin^RXNORM|SV|Hives", "medication", "allergy", "high", "severe"},
		{"AL1|1|FA|256349002^Peanut^SCT|MO|Swelling", "food", "allergy", "", "moderate"},
		{"AL1|1|PA|^Grass|MI", "environment", "allergy", "low", ""},
		{"AL1|1|MC|^Contrast", "", "", "", ""},
	} {
		as, _ := mapClinical(t, "ADT^A08^ADT_A01", "EVN|A08|20240101\nPV1|1|I|||||||||||||||||V1^^^HOSP^VN\n"+tc.al1, "AllergyIntolerance")
		require.Len(t, as, 1, tc.al1)
		a := as[0]
		if tc.category == "" {
			require.NotContains(t, a, "category", tc.al1)
		} else {
			require.Equal(t, []any{tc.category}, a["category"], tc.al1)
		}
		require.Equal(t, tc.typ, strOf(a["type"]), tc.al1)
		require.Equal(t, tc.crit, strOf(a["criticality"]), tc.al1)
		require.Equal(t, "active", dig(a, "clinicalStatus", "coding", 0, "code"))
		if tc.severity != "" {
			require.Equal(t, tc.severity, dig(a, "reaction", 0, "severity"), tc.al1)
		}
	}
}

func TestConditionAndProcedureKeys(t *testing.T) {
	segs := "EVN|A08|20240101\nPV1|1|I|||||||||||||||||V1^^^HOSP^VN\n" +
		"DG1|1|I10|I10^Essential hypertension^I10||20240101|F\n" +
		"PR1|1||0DTJ4ZZ^Appendectomy^I10P||202401011200|||||||^Cutter^Sam"
	cs, r := mapClinical(t, "ADT^A08^ADT_A01", segs, "Condition")
	require.Len(t, cs, 1)
	c := cs[0]
	require.Equal(t, "http://hl7.org/fhir/sid/icd-10-cm", dig(c, "code", "coding", 0, "system"))
	require.Equal(t, "encounter-diagnosis", dig(c, "category", 0, "coding", 0, "code"))
	require.Equal(t, "confirmed", dig(c, "verificationStatus", "coding", 0, "code"), "DG1-6 F (final)")
	require.Contains(t, c, "encounter")
	var urls []string
	for _, e := range r.Bundle.Entry {
		if e.Request.Method == "PUT" && (strings.HasPrefix(e.Request.URL, "Condition") || strings.HasPrefix(e.Request.URL, "Procedure")) {
			urls = append(urls, e.Request.URL)
		}
	}
	require.Equal(t, []string{
		"Condition?identifier=https%3A%2F%2Finterop.nhp.health%2Ffhir%2Fsid%2Fv2-condition%7Curn%3Aid%3AHOSP%7CP1%7Chttp%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Ficd-10-cm%7CI10%7Curn%3Aid%3AHOSP%7CV1",
		"Procedure?identifier=https%3A%2F%2Finterop.nhp.health%2Ffhir%2Fsid%2Fv2-procedure%7Curn%3Aid%3AHOSP%7CP1%7Curn%3Aid%3AI10P%7C0DTJ4ZZ%7C202401011200",
	}, urls)
	ps, _ := mapClinical(t, "ADT^A08^ADT_A01", segs, "Procedure")
	require.Equal(t, "completed", ps[0]["status"])
	require.Equal(t, "2024-01-01", ps[0]["performedDateTime"], "no zone configured: a time without offset keeps its date")
}

func TestCoverage(t *testing.T) {
	for _, tc := range []struct {
		name, in1, url, rel string
		payorAbsent         bool
	}{
		{"member id with authority is the key",
			segment("IN1", map[int]string{1: "1", 2: "P1^Gold Plan", 3: "BCBS^^^&2.16.840.1.113883.3.1&ISO^NIIP", 4: "Blue Cross",
				8: "G1", 9: "Group One", 12: "20230101", 13: "20231231", 17: "SEL^Self^HL70063", 36: "POL1", 49: "M1^^^&2.16.840.1.113883.3.2&ISO"}),
			"Coverage?identifier=urn%3Aoid%3A2.16.840.1.113883.3.2%7CM1", "self", false},
		{"no member id: derived key",
			"IN1|1|P1|BCBS^^^&2.16.840.1.113883.3.1&ISO|Blue Cross|||||||||||||SPO",
			"Coverage?identifier=" + "https%3A%2F%2Finterop.nhp.health%2Ffhir%2Fsid%2Fv2-coverage%7Curn%3Aid%3AHOSP%7CP1%7CBCBS%7CBlue+Cross%7CP1%7C", "spouse", false},
		{"no company: payor data-absent-reason",
			"IN1|1|P1", "Coverage?identifier=https%3A%2F%2Finterop.nhp.health%2Ffhir%2Fsid%2Fv2-coverage%7Curn%3Aid%3AHOSP%7CP1%7C%7C%7CP1%7C", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, r := mapClinical(t, "ADT^A08^ADT_A01", "EVN|A08|20240101\n"+tc.in1, "Coverage")
			require.Len(t, cs, 1)
			c := cs[0]
			require.Equal(t, "active", c["status"])
			var url string
			for _, e := range r.Bundle.Entry {
				if strings.HasPrefix(e.Request.URL, "Coverage") {
					url = e.Request.URL
				}
			}
			require.Equal(t, tc.url, url)
			if tc.rel != "" {
				require.Equal(t, tc.rel, dig(c, "relationship", "coding", 0, "code"))
			}
			if tc.payorAbsent {
				require.Equal(t, ExtDataAbsentReason, dig(c, "payor", 0, "extension", 0, "url"))
			} else {
				require.NotEmpty(t, dig(c, "payor", 0, "reference"))
			}
			checkBackReferences(t, r)
		})
	}
}

// TestGoldenBackReferences: in every golden Bundle each urn:uuid reference points to an
// earlier entry, which the pipeline's router needs to resolve references in order.
func TestGoldenBackReferences(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	require.NoError(t, err)
	ref := regexp.MustCompile(`"reference":\s*"(urn:uuid:[^"]+)"`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var b struct {
			Entry []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		require.NoError(t, json.Unmarshal(raw, &b))
		seen := map[string]bool{}
		for i, e := range b.Entry {
			for _, m := range ref.FindAllSubmatch(e.Resource, -1) {
				require.True(t, seen[string(m[1])], "%s entry %d references %s, not an earlier entry", f, i, m[1])
			}
			seen[e.FullURL] = true
		}
	}
}

// segment builds a segment from its fields by number.
func segment(name string, fields map[int]string) string {
	n := 0
	for k := range fields {
		n = max(n, k)
	}
	parts := make([]string, n+1)
	parts[0] = name
	for k, v := range fields {
		parts[k] = v
	}
	return strings.Join(parts, "|")
}

func checkBackReferences(t *testing.T, r Result) {
	t.Helper()
	ref := regexp.MustCompile(`"reference":\s*"(urn:uuid:[^"]+)"`)
	seen := map[string]bool{}
	for i, e := range r.Bundle.Entry {
		for _, m := range ref.FindAllSubmatch(e.Resource, -1) {
			require.True(t, seen[string(m[1])], "entry %d references %s, not an earlier entry", i, m[1])
		}
		seen[e.FullURL] = true
	}
}

// dig walks decoded JSON by keys and indexes; nil when a step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

// VXUs before v2.5 may omit ORC: each RXA then opens its own order group, and the derived key
// tells the doses apart.
func TestVXUOrdersWithoutORC(t *testing.T) {
	ims, r := mapClinical(t, "VXU^V04^VXU_V04", `RXA|0|1|20240101||08^HepB^CVX|999
RXR|C28161^IM^NCIT
OBX|1|CE|64994-7^Eligibility^LN|1|V01^Not VFC^HL70064
RXA|0|1|20240301||08^HepB^CVX|999
ORC|RE||F9^EHR`, "Immunization")
	require.Len(t, ims, 2)
	require.NotNil(t, ims[0]["route"])
	require.NotNil(t, ims[0]["programEligibility"])
	require.Nil(t, ims[1]["programEligibility"])
	require.Contains(t, strings.Join(r.Notes, "\n"), "order group without RXA")
}
