package mapping_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

func mapSIU(t *testing.T, trigger, sch string, rest ...string) (mapping.Result, map[string]any, error) {
	t.Helper()
	msg := "MSH|^~\\&|SCHED|HOSP|||20240101120000+0000||SIU^" + trigger + "^SIU_S12|S1|P|2.5.1\r" + sch + "\r"
	for _, s := range rest {
		msg += s + "\r"
	}
	m, err := hl7v2.Parse([]byte(msg))
	require.NoError(t, err)
	r, err := mapping.New(mapping.Options{}).Map(m)
	if err != nil {
		return r, nil, err
	}
	for _, e := range r.Bundle.Entry {
		var res map[string]any
		require.NoError(t, json.Unmarshal(e.Resource, &res))
		if res["resourceType"] == "Appointment" {
			require.Equal(t, "PUT", e.Request.Method)
			return r, res, nil
		}
	}
	t.Fatal("no Appointment")
	return r, nil, nil
}

const siuPID = "PID|1||P1^^^HOSP^MR||DOE^JANE||19800101|F"

// The event states the outcome (S15 cancel, S17 delete, S26 no-show) whatever SCH-25 says;
// other events take SCH-25 (by code or text), else booked.
func TestSIUStatus(t *testing.T) {
	for _, tc := range []struct{ trigger, sch25, want, patient string }{
		{"S12", "", "booked", "accepted"},
		{"S12", "Pending", "pending", "needs-action"},
		{"S14", "Cancelled", "cancelled", "declined"},
		{"S15", "Booked", "cancelled", "declined"},
		{"S17", "", "entered-in-error", "declined"},
		{"S26", "Booked", "noshow", "accepted"},
		{"S13", "Complete", "fulfilled", "accepted"},
	} {
		sch := "SCH|P1|F1" + strings.Repeat("|", 23) + tc.sch25
		_, a, err := mapSIU(t, tc.trigger, sch, siuPID)
		require.NoError(t, err)
		require.Equal(t, tc.want, a["status"], "%s SCH-25 %q", tc.trigger, tc.sch25)
		require.Equal(t, tc.patient, a["participant"].([]any)[0].(map[string]any)["status"])
	}
}

// Keyed on the filler id (SCH-2), else the placer's; times are instants, the end computed from
// the duration when only the start is given.
func TestSIUKeyAndTimes(t *testing.T) {
	r, a, err := mapSIU(t, "S12", "SCH|P1|F1|||||||45|min", "TQ1|1||||||20240301090000+0100", siuPID,
		"RGS|1", "AIP|1||123^SMITH^JOHN|ATND^Attending^HL70443||20240301090000+0100|||45|min||Booked")
	require.NoError(t, err)
	require.Equal(t, "2024-03-01T09:00:00+01:00", a["start"])
	require.Equal(t, "2024-03-01T09:45:00+01:00", a["end"])
	require.EqualValues(t, 45, a["minutesDuration"])
	ids := a["identifier"].([]any)
	require.Equal(t, "F1", ids[1].(map[string]any)["value"])
	var url string
	for _, e := range r.Bundle.Entry {
		if e.Request.URL[:12] == "Appointment?" {
			url = e.Request.URL
		}
	}
	require.Equal(t, "Appointment?identifier=%7CF1", url)
	parts := a["participant"].([]any)
	require.Len(t, parts, 2)
	require.Equal(t, map[string]any{"start": "2024-03-01T09:00:00+01:00", "end": "2024-03-01T09:45:00+01:00"}, parts[1].(map[string]any)["period"])

	_, a, err = mapSIU(t, "S12", "SCH|P1", siuPID)
	require.NoError(t, err)
	require.Len(t, a["identifier"].([]any), 1)

	_, _, err = mapSIU(t, "S12", "SCH|||||||||", siuPID)
	require.True(t, errors.Is(err, mapping.ErrUnmappable))
	require.ErrorContains(t, err, "SCH-2")
}

// A scheduling message without PID books resources only: no Patient is written.
func TestSIUWithoutPatient(t *testing.T) {
	r, a, err := mapSIU(t, "S12", "SCH|P1|F1", "RGS|1", "AIL|1||ROOM1^^^CLINIC")
	require.NoError(t, err)
	require.Len(t, a["participant"].([]any), 1)
	for _, e := range r.Bundle.Entry {
		require.NotContains(t, e.Request.URL, "Patient")
	}
}

// Blocked and opened time (S23, S24) are about slots: nothing is written, the message is
// unmapped.
func TestSIUSlotEventsAreUnmapped(t *testing.T) {
	for _, trigger := range []string{"S23", "S24"} {
		m, err := hl7v2.Parse([]byte("MSH|^~\\&|SCHED|HOSP|||20240101120000+0000||SIU^" + trigger + "^SIU_S12|S1|P|2.5.1\rSCH|P1|F1\rRGS|1\rAIL|1||ROOM1^^^CLINIC\r"))
		require.NoError(t, err)
		r, err := mapping.New(mapping.Options{MessageResources: true}).Map(m)
		require.NoError(t, err)
		require.True(t, r.Unmapped, trigger)
		require.Empty(t, r.Bundle.Entry, trigger)
		require.Len(t, r.Notes, 1)
		require.Contains(t, r.Notes[0], "schedule slots")
	}
}

// SCH-7/SCH-8 codes without a coding system get table 0276/0277's only when they are its
// values; a local code stays local.
func TestSIUReasonAndType(t *testing.T) {
	_, a, err := mapSIU(t, "S12", "SCH|P1|F1|||||ROUTINE|Normal", siuPID)
	require.NoError(t, err)
	require.Equal(t, "http://terminology.hl7.org/CodeSystem/v2-0276", a["reasonCode"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["system"])
	require.Equal(t, "http://terminology.hl7.org/CodeSystem/v2-0277", a["appointmentType"].(map[string]any)["coding"].([]any)[0].(map[string]any)["system"])
	_, a, err = mapSIU(t, "S12", "SCH|P1|F1|||||KNEE-REVIEW|Long", siuPID)
	require.NoError(t, err)
	require.Nil(t, a["reasonCode"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["system"])
	require.Nil(t, a["appointmentType"].(map[string]any)["coding"].([]any)[0].(map[string]any)["system"])
}
