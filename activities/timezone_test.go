package activities

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/mapping"
)

// The Map step reads times without a UTC offset in the zone of the connector the message
// arrived on (settings.timeZone: one facility), else in its tenant's, else keeps their dates
// and notes it. The stored Bundle carries the offset.
func TestMapUsesConnectorTimeZone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	tenants, err := mapping.LoadTenants(strings.NewReader(`{"` + tenant + `": {"timeZone": "America/New_York"}}`))
	require.NoError(t, err)
	// PV1-44, the admit time, has no offset.
	raw := []byte("MSH|^~\\&|ADTApp|KBL|INTEROP|NHP|20260101120000||ADT^A01^ADT_A01|TZ|P|2.5.1\r" +
		"PID|1||55^^^KBLH^MR||Karimi^Ahmad||19800101|M\r" +
		"PV1|1|I|W1^R1^B1||||||||||||||||V100^^^KBLH^VN|||||||||||||||||||||||||20260101113000\r")

	cases := []struct {
		name, settings string
		tenants        *mapping.Tenants
		wantStart      string
		wantNote       string // a note that must be there ("" for none about time)
	}{
		{"connector zone wins over the tenant's", `{"timeZone":"Asia/Kabul"}`, tenants, "2026-01-01T11:30:00+04:30", ""},
		{"connector zone without a tenant zone", `{"timeZone":"Asia/Kabul"}`, nil, "2026-01-01T11:30:00+04:30", ""},
		{"tenant zone when the connector has none", `{}`, tenants, "2026-01-01T11:30:00-05:00", ""},
		{"no zone: the date, and a note", `{}`, nil, "2026-01-01", "time of day dropped"},
		// Written around the admin API's validation: mapped, with the tenant's zone and a note.
		{"unknown connector zone", `{"timeZone":"Mars/Olympus"}`, tenants, "2026-01-01T11:30:00-05:00", `settings.timeZone: "Mars/Olympus" is not an IANA time zone name`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := h.at(t)
			conn, err := h.q.ConnectorInsert(ctx, db.ConnectorInsertParams{
				TenantID: tenant, FacilityID: "f1", Name: "tz-" + string(rune('a'+i)), Protocol: db.ConnectorProtocolMLLP,
				Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(tc.settings),
			})
			require.NoError(t, err)
			h.conn = conn
			acts := *h.acts
			acts.Mapping = tc.tenants
			h.acts = &acts
			h.env = newActivityEnv(h.acts)
			ref := h.start(h.insertMessage("TZ"+string(rune('a'+i)), raw))
			h.must(nil, h.acts.MapMessage, ref)

			var start string
			for _, e := range h.mappedBundle(ref.AttemptID).Entry {
				var r struct {
					ResourceType string `json:"resourceType"`
					Period       struct {
						Start string `json:"start"`
					} `json:"period"`
				}
				require.NoError(t, json.Unmarshal(e.Resource, &r))
				if r.ResourceType == "Encounter" {
					start = r.Period.Start
				}
			}
			require.Equal(t, tc.wantStart, start)
			notes := strings.Join(h.attempt(ref.AttemptID).MappingNotes, "\n")
			if tc.wantNote != "" {
				require.Contains(t, notes, tc.wantNote)
			} else {
				require.NotContains(t, notes, "time of day dropped")
			}
		})
	}
}
