package activities

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

// mergeAt is an A40 at eventTime merging the patient mrg into the patient mrn.
func mergeAt(controlID, mrn, mrg, eventTime string) []byte {
	return []byte(strings.Join([]string{
		"MSH|^~\\&|ADTApp|GHH|IOP|HUB|" + eventTime + "||ADT^A40^ADT_A39|" + controlID + "|P|2.5.1",
		"EVN|A40|" + eventTime,
		"PID|1||" + mrn + "^^^GHH^MR||SURVIVOR^ANNA||19800101|F",
		"MRG|" + mrg + "^^^GHH^MR",
	}, "\r") + "\r")
}

type storedPatient struct {
	ID        string `json:"id"`
	Active    *bool  `json:"active"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birthDate"`
	Name      []struct {
		Family string `json:"family"`
	} `json:"name"`
	Link []struct {
		Other struct {
			Identifier fhir.Identifier `json:"identifier"`
		} `json:"other"`
		Type string `json:"type"`
	} `json:"link"`
}

// patient returns the one stored Patient carrying mrn (nil when there is none) and its version.
func (h *harness) patient(mrn string) (*storedPatient, int64) {
	h.t.Helper()
	res, err := h.acts.Store.Search(context.Background(), tenant, "Patient", store.Query{Identifier: &fhir.Identifier{System: "urn:id:GHH", Value: mrn}})
	require.NoError(h.t, err)
	if res.Total == 0 {
		return nil, 0
	}
	require.Equal(h.t, 1, res.Total, "exactly one Patient for %s", mrn)
	var p storedPatient
	require.NoError(h.t, json.Unmarshal(res.Resources[0].Body, &p))
	return &p, res.Resources[0].VersionID
}

// A merge marks the merged-away patient and restates nothing of it: its name, gender and
// birth date stay as its own messages left them, it gains active=false and a replaced-by
// link; the survivor gains the replaces link. A replay changes nothing, a late update of the
// old patient from before the merge does not undo it, and a merge of a patient the store
// never received creates none.
func TestMergeKeepsTheMergedAwayPatient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.route("OLD-A01", adtAt("A01", "OLD-A01", "OLD", "20260101080000", "ORIGINAL"))
	before, v1 := h.patient("OLD")
	require.Equal(t, "ORIGINAL", before.Name[0].Family)

	ref := h.start(h.insertMessage("M-1", mergeAt("M-1", "NEW", "OLD", "20260102080000")))
	h.must(nil, h.acts.ParseMessage, ref)
	h.must(nil, h.acts.MapMessage, ref)
	var routed RouteResult
	h.must(&routed, h.acts.RouteBundle, ref)
	require.Zero(t, routed.Missing)
	old, v2 := h.patient("OLD")
	require.Equal(t, v1+1, v2)
	require.Equal(t, "ORIGINAL", old.Name[0].Family, "the name is not overwritten")
	require.Equal(t, "female", old.Gender)
	require.Equal(t, "1980-01-01", old.BirthDate)
	require.NotNil(t, old.Active)
	require.False(t, *old.Active)
	require.Len(t, old.Link, 1)
	require.Equal(t, "replaced-by", old.Link[0].Type)
	require.Equal(t, fhir.Identifier{System: "urn:id:GHH", Value: "NEW"}, old.Link[0].Other.Identifier)
	survivor, _ := h.patient("NEW")
	require.Len(t, survivor.Link, 1)
	require.Equal(t, "replaces", survivor.Link[0].Type)
	require.Equal(t, fhir.Identifier{System: "urn:id:GHH", Value: "OLD"}, survivor.Link[0].Other.Identifier)
	links := h.links(ref.MessageID)
	patched := false
	for _, l := range links {
		patched = patched || (l.ResourceType == "Patient" && l.ResourceID == old.ID)
	}
	require.True(t, patched, "the merged-away Patient is linked to the merge message")

	// A replay (a new attempt of the same message, or the sender resending it).
	replay := h.route("M-2", mergeAt("M-2", "NEW", "OLD", "20260102080000"))
	require.Zero(t, replay.Updated, "a replayed merge changes nothing (only its own MessageHeader is new): %+v", replay)
	again, v3 := h.patient("OLD")
	require.Equal(t, v2, v3)
	require.Len(t, again.Link, 1, "the link is not added twice")

	// An update of the old patient from before the merge, processed after it, is stale.
	late := h.route("OLD-A08", adtAt("A08", "OLD-A08", "OLD", "20260101120000", "LATE"))
	require.Equal(t, 1, late.Stale, "its Patient update is refused (its Encounter is newer than the A01's): %+v", late)
	after, _ := h.patient("OLD")
	require.Equal(t, "ORIGINAL", after.Name[0].Family)
	require.Len(t, after.Link, 1)

	// A merge of a patient the store never held creates no Patient for it.
	unknown := h.route("M-3", mergeAt("M-3", "NEW2", "NEVER", "20260103080000"))
	require.Equal(t, 1, unknown.Missing)
	never, _ := h.patient("NEVER")
	require.Nil(t, never)
}

// An A24 links two patients the store holds: each gains a seealso link to the other and keeps
// everything else.
func TestLinkPatients(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.route("A-A01", adtAt("A01", "A-A01", "PA", "20260101080000", "ALPHA"))
	h.route("B-A01", adtAt("A01", "B-A01", "PB", "20260101090000", "BETA"))
	link := []byte(strings.Join([]string{
		"MSH|^~\\&|ADTApp|GHH|IOP|HUB|20260102080000||ADT^A24^ADT_A24|L-1|P|2.5.1",
		"EVN|A24|20260102080000",
		"PID|1||PA^^^GHH^MR||ALPHA^ANNA",
		"PID|2||PB^^^GHH^MR||BETA^ANNA",
	}, "\r") + "\r")
	routed := h.route("L-1", link)
	require.Equal(t, 2, routed.Updated, "%+v", routed)
	for mrn, other := range map[string]string{"PA": "PB", "PB": "PA"} {
		p, _ := h.patient(mrn)
		require.Len(t, p.Link, 1, mrn)
		require.Equal(t, "seealso", p.Link[0].Type)
		require.Equal(t, fhir.Identifier{System: "urn:id:GHH", Value: other}, p.Link[0].Other.Identifier)
		require.Equal(t, "female", p.Gender, "%s is not restated", mrn)
		require.Nil(t, p.Active)
	}
}
