package mapping_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

const mdmHead = "MSH|^~\\&|DOC|HOSP|||20240101120000+0000||MDM^%s|D1|P|2.5.1\rEVN|%s|20240101120000+0000\r" +
	"PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F\rPV1|1|O|CLINIC^1^1\r"

func mapMDM(t *testing.T, trigger, txa string, obx ...string) (mapping.Result, map[string]any) {
	t.Helper()
	msg := sprintf(mdmHead, trigger, trigger) + txa + "\r"
	for _, o := range obx {
		msg += o + "\r"
	}
	m, err := hl7v2.Parse([]byte(msg))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	return r, documentOf(t, r.Bundle)
}

func documentOf(t *testing.T, b *fhir.Bundle) map[string]any {
	t.Helper()
	for _, e := range b.Entry {
		var res map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &res))
		if res["resourceType"] == "DocumentReference" {
			res["_method"] = e.Request.Method
			return res
		}
	}
	t.Fatal("no DocumentReference")
	return nil
}

func attachments(doc map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range doc["content"].([]any) {
		out = append(out, c.(map[string]any)["attachment"].(map[string]any))
	}
	return out
}

func decoded(t *testing.T, a map[string]any) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(a["data"].(string))
	require.NoError(t, err)
	return string(raw)
}

// TX and FT lines join into one text attachment (FT escapes decoded), an ED keeps its media
// type, other value types are noted, and the whole document is a conditional update on
// TXA-12 that claims US Core.
func TestMDMContent(t *testing.T) {
	pdf := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4\n%%EOF\n"))
	r, doc := mapMDM(t, "T02", "TXA|1|PR^Progress note^HL70270|TX|||20240101110000+0000||||||DOC-1^HOSP|||||AU||AV",
		"OBX|1|TX|NOTE^Note^L||first line~second line||||||F",
		"OBX|2|FT|NOTE^Note^L||third\\.br\\fourth||||||F",
		"OBX|3|ED|PDF^Report^L||^application^pdf^Base64^"+pdf+"||||||F",
		"OBX|4|NM|X^Y^L||42||||||F")
	require.Equal(t, "PUT", doc["_method"])
	require.Equal(t, "current", doc["status"])
	require.Equal(t, "final", doc["docStatus"])
	require.Contains(t, doc["meta"].(map[string]any)["profile"], mapping.ProfileUSCoreDocumentReference)
	require.Equal(t, "DOC-1", doc["masterIdentifier"].(map[string]any)["value"])
	atts := attachments(doc)
	require.Len(t, atts, 2)
	require.Equal(t, "text/plain", atts[0]["contentType"])
	require.Equal(t, "first line\nsecond line\nthird\nfourth", decoded(t, atts[0]))
	require.Equal(t, "application/pdf", atts[1]["contentType"])
	require.Equal(t, "%PDF-1.4\n%%EOF\n", decoded(t, atts[1]))
	require.Contains(t, r.Notes, `OBX(4): value type "NM" is not document content; not mapped`)
	// The table 0270 code gets its LOINC document code (US Core's required binding).
	codings := doc["type"].(map[string]any)["coding"].([]any)
	require.Equal(t, "11506-3", codings[len(codings)-1].(map[string]any)["code"])
}

// A cancel (T11) marks the document entered-in-error whatever TXA-19 says, and must reach an
// existing document: a conditional update, without a US Core claim it cannot meet.
func TestMDMCancel(t *testing.T) {
	_, doc := mapMDM(t, "T11", "TXA|1|PR|TX|||20240101110000+0000||||||DOC-1^HOSP|||||AU")
	require.Equal(t, "PUT", doc["_method"])
	require.Equal(t, "entered-in-error", doc["status"])
	require.Nil(t, doc["meta"].(map[string]any)["profile"])
	atts := attachments(doc)
	require.Len(t, atts, 1)
	require.Nil(t, atts[0]["data"])
	require.NotNil(t, atts[0]["extension"], "content is required: data-absent-reason")
}

// A notification without content creates the document only if it is absent: an update would
// wipe the content a T02 stored.
func TestMDMNotificationCreatesOnly(t *testing.T) {
	r, doc := mapMDM(t, "T03", "TXA|1|PR|TX|||20240101110000+0000||||||DOC-1^HOSP|||||LA")
	require.Equal(t, "POST", doc["_method"])
	require.NotEmpty(t, r.Notes)
}

// A document with no unique number, no file name and no origination time is keyed on its
// message (a resend converges), with a note; a message without TXA still maps its patient.
func TestMDMWithoutIdentity(t *testing.T) {
	r, doc := mapMDM(t, "T02", "TXA|1|PR|TX", "OBX|1|TX|N^N^L||text||||||F")
	require.Equal(t, "PUT", doc["_method"])
	ids := doc["identifier"].([]any)
	require.Equal(t, "urn:id:HOSP|P1|PR|MSH-10:D1", ids[0].(map[string]any)["value"])
	require.Contains(t, strings.Join(r.Notes, "\n"), "keyed on this message")

	m, err := hl7v2.Parse([]byte(sprintf(mdmHead, "T02", "T02") + "OBX|1|TX|N^N^L||text||||||F\r"))
	require.NoError(t, err)
	r, err = mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	require.NotEmpty(t, r.Bundle.Entry, "the patient maps")
	require.Contains(t, r.Notes, "TXA: MDM^T02 has no TXA segment; no DocumentReference (1 OBX not mapped)")
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// An ED without a usable type still has a contentType (R4 att-1), with a note.
func TestMDMEDWithoutType(t *testing.T) {
	r, doc := mapMDM(t, "T02", "TXA|1|PR|TX|||20240101110000+0000||||||DOC-2^HOSP",
		"OBX|1|ED|PDF^Report^L||^^^Base64^QUJD||||||F")
	atts := attachments(doc)
	require.Len(t, atts, 1)
	// No ED-2/ED-3: the media type is sniffed from the data (media.go), here plain text.
	require.Equal(t, "text/plain", atts[0]["contentType"])
	require.Equal(t, "ABC", decoded(t, atts[0]))
	_ = r
}
