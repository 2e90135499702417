package activities

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// A message whose type has no mapping (here a DFT^P03 whose PID names the fixture's patient)
// maps to an empty Bundle and ends `unmapped`: no resource written or linked, the attempt
// succeeded, and its notes say why.
func TestUnmappedMessageEndsUnmapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	raw := []byte("MSH|^~\\&|FIN|FAC|EHR|FAC|20240101120000||DFT^P03^DFT_P03|DFT1|P|2.5.1\r" +
		"EVN|P03|20240101120000\r" +
		"PID|1||PATID1234^^^test1^MR||EVERYMAN^ADAM||19610615|M\r" +
		"FT1|1|||20240101|20240101|CG|71045^Xray chest^C4\r")
	ref := h.start(h.insertMessage("DFT1", raw))
	h.must(nil, h.acts.ParseMessage, ref)
	var mapped MapResult
	h.must(&mapped, h.acts.MapMessage, ref)
	require.Equal(t, MapResult{Notes: 1, Unmapped: true}, mapped)
	att := h.attempt(ref.AttemptID)
	require.JSONEq(t, `{"resourceType":"Bundle","type":"transaction"}`, string(att.MappedBundle))
	require.Len(t, att.MappingNotes, 1)
	require.Contains(t, att.MappingNotes[0], "MSH-9: no mapping for DFT^P03")

	h.must(nil, h.acts.CompleteUnmapped, ref)

	m := h.message(ref.MessageID)
	require.Equal(t, db.Hl7MessageStatusUnmapped, m.Status)
	require.NotNil(t, m.ProcessedAt)
	require.Empty(t, m.LastError)
	att = h.attempt(ref.AttemptID)
	require.Equal(t, db.Hl7AttemptStatusSucceeded, att.Status)
	require.NotNil(t, att.FinishedAt)
	require.Empty(t, h.links(ref.MessageID))
	require.Zero(t, h.patients(), "the DFT's PID must not write the Patient")
	require.Zero(t, h.resources())
	require.Empty(t, h.events())

	// Listed by the admin filter's query.
	unmapped := db.Hl7MessageStatusUnmapped
	rows, err := h.q.Hl7MessageList(t.Context(), db.Hl7MessageListParams{TenantID: tenant, Status: &unmapped, MaxRows: 10})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, ref.MessageID, rows[0].ID)
}

// A run recorded before versionUnmapped routes the empty Bundle: that must write nothing too.
func TestRouteEmptyBundleWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	raw := []byte("MSH|^~\\&|EHR|FAC|MPI|FAC|20240101120000||QRY^A19|Q1|P|2.3\rQRD|20240101120000|R|I|Q1|||1^RD|PATID1234|DEM\r")
	ref := h.start(h.insertMessage("Q1", raw))
	h.must(nil, h.acts.MapMessage, ref)
	var routed RouteResult
	h.must(&routed, h.acts.RouteBundle, ref)
	require.Equal(t, RouteResult{}, routed)
	require.Empty(t, h.links(ref.MessageID))
	require.Zero(t, h.resources())
}
