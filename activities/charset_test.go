package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
)

// The Parse and Map steps read a stored message with the character set of the connector it
// arrived on (settings.charset), as the gateway read its header: a legacy sender's non-UTF-8
// bytes under an empty MSH-18 become the right characters.
func TestParseUsesConnectorCharset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	base := fixture(t)
	require.Contains(t, string(base), "|USA||en-US|", "the fixture's MSH-18 is empty")

	cases := []struct {
		name, charset string
		family        []byte // PID-5.1 as sent
		want          string
		wantCharset   string
	}{
		// ü is 0xFC in ISO 8859-1 (and in windows-1252, the fallback without a setting).
		{"latin-1", "8859/1", []byte("M\xfcller"), "Müller", "8859/1"},
		// ł and ę are 0xB3 and 0xEA in ISO 8859-2; windows-1252 would read "³" and "ê".
		{"latin-2", "8859/2", []byte("Wa\xb3\xeasa"), "Wałęsa", "8859/2"},
		// No setting: the windows-1252 fallback.
		{"no setting", "", []byte("Wa\xb3\xeasa"), "Wa³êsa", "WINDOWS-1252"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := h.at(t)
			settings := `{}`
			if tc.charset != "" {
				settings = `{"charset":"` + tc.charset + `"}`
			}
			conn, err := h.q.ConnectorInsert(ctx, db.ConnectorInsertParams{
				TenantID: tenant, FacilityID: "f1", Name: "legacy-" + tc.name, Protocol: db.ConnectorProtocolMLLP,
				Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft, Settings: []byte(settings),
			})
			require.NoError(t, err)
			h.conn = conn
			raw := bytes.Replace(base, []byte("|EVERYMAN&"), append(append([]byte("|"), tc.family...), '&'), 1)
			require.NotEqual(t, base, raw)
			id := h.insertMessage("CS"+string(rune('0'+i)), raw)

			msg, err := h.acts.loadParsed(ctx, id)
			require.NoError(t, err)
			require.Equal(t, tc.want, msg.Get("PID-5.1.1"))
			require.Equal(t, tc.wantCharset, msg.Charset())
			require.Equal(t, raw, h.message(id).Raw, "the stored bytes are never rewritten")

			// Map sees the decoded name too: it is in the Bundle stored on the attempt.
			ref := h.start(id)
			h.must(nil, h.acts.ParseMessage, ref)
			h.must(nil, h.acts.MapMessage, ref)
			// Only the Patient's name is a list of HumanNames: Organization.name and Location.name
			// are strings, so each entry's resource is decoded by its type.
			var bundle struct {
				Entry []struct {
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			}
			require.NoError(t, json.Unmarshal(h.attempt(ref.AttemptID).MappedBundle, &bundle))
			var families []string
			patients := 0
			for _, e := range bundle.Entry {
				var head struct {
					ResourceType string `json:"resourceType"`
				}
				require.NoError(t, json.Unmarshal(e.Resource, &head))
				if head.ResourceType != "Patient" {
					continue
				}
				patients++
				var patient struct {
					Name []struct {
						Family string `json:"family"`
					} `json:"name"`
				}
				require.NoError(t, json.Unmarshal(e.Resource, &patient))
				for _, n := range patient.Name {
					families = append(families, n.Family)
				}
			}
			require.Equal(t, 1, patients, "the Bundle holds the message's one Patient")
			require.Contains(t, families, tc.want)
		})
	}
}
