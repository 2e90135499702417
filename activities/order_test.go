package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

// adtAt is an ADT message of one patient (PID-3 = mrn) whose event (EVN-2) happened at
// eventTime and which gives the patient the family name family.
// The visit is V-<mrn> (PV1-19); an A03 discharges it at eventTime (PV1-45).
func adtAt(trigger, controlID, mrn, eventTime, family string) []byte {
	pv1 := make([]string, 46)
	pv1[0], pv1[1], pv1[2], pv1[19] = "PV1", "1", "I", "V-"+mrn+"^^^GHH^VN"
	if trigger == "A03" {
		pv1[45] = eventTime
	}
	return []byte(strings.Join([]string{
		"MSH|^~\\&|ADTApp|GHH|IOP|HUB|" + eventTime + "||ADT^" + trigger + "^ADT_A01|" + controlID + "|P|2.5.1",
		"EVN|" + trigger + "|" + eventTime,
		"PID|1||" + mrn + "^^^GHH^MR||" + family + "^ANNA||19800101|F",
		strings.Join(pv1, "|"),
	}, "\r") + "\r")
}

// encounter returns the status and period end of the one Encounter of the visit V-<mrn>.
func (h *harness) encounter(mrn string) (status, end string) {
	h.t.Helper()
	res, err := h.acts.Store.Search(context.Background(), tenant, "Encounter", store.Query{Identifier: &fhir.Identifier{System: "urn:id:GHH", Value: "V-" + mrn}})
	require.NoError(h.t, err)
	require.Equal(h.t, 1, res.Total, "exactly one Encounter for the visit of %s", mrn)
	var e struct {
		Status string `json:"status"`
		Period struct {
			End string `json:"end"`
		} `json:"period"`
	}
	require.NoError(h.t, json.Unmarshal(res.Resources[0].Body, &e))
	return e.Status, e.Period.End
}

// route runs one message through Start → Parse → Map → Route, as InboundHL7 does.
func (h *harness) route(controlID string, raw []byte) RouteResult {
	h.t.Helper()
	ref := h.start(h.insertMessage(controlID, raw))
	h.must(nil, h.acts.ParseMessage, ref)
	h.must(nil, h.acts.MapMessage, ref)
	var routed RouteResult
	h.must(&routed, h.acts.RouteBundle, ref)
	return routed
}

func (h *harness) family(mrn string) string {
	h.t.Helper()
	res, err := h.acts.Store.Search(context.Background(), tenant, "Patient", store.Query{Identifier: &fhir.Identifier{System: "urn:id:GHH", Value: mrn}})
	require.NoError(h.t, err)
	require.Equal(h.t, 1, res.Total, "exactly one Patient for %s", mrn)
	var p struct {
		Name []struct {
			Family string `json:"family"`
		} `json:"name"`
	}
	require.NoError(h.t, json.Unmarshal(res.Resources[0].Body, &p))
	return p.Name[0].Family
}

// The stored Patient reflects the newest event (EVN-2), whatever order an A01, A08 and A03 of
// one patient are processed in.
func TestNewestEventWinsInAnyOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	events := []struct{ trigger, at, family string }{
		{"A01", "20260101080000", "ADMITTED"},
		{"A08", "20260101120000", "UPDATED"},
		{"A03", "20260102090000", "DISCHARGED"},
	}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for n, order := range orders {
		mrn := fmt.Sprintf("MRN-%d", n)
		stale := 0
		for _, i := range order {
			e := events[i]
			routed := h.route(fmt.Sprintf("%s-%s", mrn, e.trigger), adtAt(e.trigger, mrn+"-"+e.trigger, mrn, e.at, e.family))
			if routed.Stale > 0 { // its Patient and Encounter updates were both refused
				require.Equal(t, 2, routed.Stale, "order %v: %s", order, e.trigger)
				stale++
			}
		}
		require.Equal(t, "DISCHARGED", h.family(mrn), "order %v", order)
		status, end := h.encounter(mrn)
		require.Equal(t, "finished", status, "order %v: the A03 is the newest event", order)
		require.NotEmpty(t, end, "order %v: the discharge time stays", order)
		// Every message processed after a newer one was refused as stale, and said so.
		wantStale := 0
		for k, i := range order {
			for _, j := range order[:k] {
				if j > i {
					wantStale++
					break
				}
			}
		}
		require.Equal(t, wantStale, stale, "order %v", order)
	}
}

// A01 → A08 → A03 → A08, and a replay of each: one Patient, one Encounter, the newest state.
// The last A08 corrects the name after the discharge and still carries PV1-45, as senders do.
func TestAdmitUpdateDischargeUpdateConverges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const mrn = "MRN-S"
	seq := []struct{ trigger, at, family string }{
		{"A01", "20260101080000", "ADMITTED"},
		{"A08", "20260101120000", "UPDATED"},
		{"A03", "20260102090000", "DISCHARGED"},
		{"A08", "20260102100000", "CORRECTED"},
	}
	for round := range 2 { // the second round replays every message under a new control id
		for i, e := range seq {
			raw := adtAt(e.trigger, fmt.Sprintf("S-%d-%d", round, i), mrn, e.at, e.family)
			if i == 3 {
				raw = withDischarge(raw, "20260102090000")
			}
			h.route(fmt.Sprintf("S-%d-%d", round, i), raw)
		}
		require.Equal(t, "CORRECTED", h.family(mrn), "round %d", round)
		status, end := h.encounter(mrn)
		require.Equal(t, "finished", status, "round %d", round)
		require.True(t, strings.HasPrefix(end, "2026-01-02"), "round %d: end %q", round, end)
	}
}

// withDischarge sets PV1-45 of an adtAt message.
func withDischarge(raw []byte, at string) []byte {
	segs := strings.Split(strings.TrimSuffix(string(raw), "\r"), "\r")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "PV1|") {
			f := strings.Split(seg, "|")
			f[45] = at
			segs[i] = strings.Join(f, "|")
		}
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// Concurrent processing converges too: writers of one identifier are serialised and compare
// event times under the lock.
func TestNewestEventWinsConcurrently(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const mrn = "MRN-C"
	type msg struct {
		id  string
		raw []byte
	}
	var msgs []msg
	for i := range 12 {
		at := fmt.Sprintf("202601010%d0000", i%10) // 00:00 … 09:00, repeated
		if i >= 10 {
			at = fmt.Sprintf("2026010110%d000", i-10)
		}
		msgs = append(msgs, msg{fmt.Sprintf("C-%02d", i), adtAt("A08", fmt.Sprintf("C-%02d", i), mrn, at, fmt.Sprintf("NAME%02d", i))})
	}
	refs := make([]MessageRef, len(msgs))
	for i, m := range msgs {
		refs[i] = h.start(h.insertMessage(m.id, m.raw))
		h.must(nil, h.acts.ParseMessage, refs[i])
		h.must(nil, h.acts.MapMessage, refs[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(refs))
	for _, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine gets its own test environment: they are not safe for concurrent use.
			env := newActivityEnv(h.acts)
			_, err := env.ExecuteActivity(h.acts.RouteBundle, ref)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, "NAME11", h.family(mrn), "the latest event (10:10) wins")
}
