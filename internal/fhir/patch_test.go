package fhir

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mergePatch is the patch the mapping writes for a merged-away Patient (see mapping.mapMerge).
const mergePatch = `{"resourceType":"Parameters",
 "meta":{"extension":[{"url":"` + ExtSourceEventTime + `","valueDateTime":"2026-01-02T08:00:00Z"}]},
 "parameter":[
  {"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.active"}]},
  {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"active"},{"name":"value","valueBoolean":false}]},
  {"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"link"},{"name":"value","part":[
    {"name":"other","valueReference":{"type":"Patient","identifier":{"system":"urn:id:H","value":"NEW"}}},
    {"name":"type","valueCode":"replaced-by"}]}]}]}`

func TestApplyPatch(t *testing.T) {
	const old = `{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","extension":[{"url":"` + ExtSourceEventTime + `","valueDateTime":"2026-01-01T08:00:00Z"}]},
	 "identifier":[{"system":"urn:id:H","value":"OLD"}],"active":true,"name":[{"family":"KEPT"}],"gender":"female","birthDate":"1980-01-01",
	 "link":[{"other":{"reference":"Patient/x"},"type":"seealso"}]}`
	got, err := ApplyPatch([]byte(old), []byte(mergePatch))
	require.NoError(t, err)
	var p map[string]any
	require.NoError(t, json.Unmarshal(got, &p))
	require.Equal(t, false, p["active"])
	require.Equal(t, "KEPT", p["name"].([]any)[0].(map[string]any)["family"], "what the patch does not name is kept")
	require.Equal(t, "female", p["gender"])
	require.Equal(t, "1980-01-01", p["birthDate"])
	require.Equal(t, "p1", p["id"])
	require.Len(t, p["link"], 2, "the link is added to those there")
	require.Equal(t, map[string]any{"other": map[string]any{"type": "Patient", "identifier": map[string]any{"system": "urn:id:H", "value": "NEW"}}, "type": "replaced-by"}, p["link"].([]any)[1])
	at, ok := SourceEventTime(got)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC), at, "the patch's later event time")

	// Applied again: nothing changes.
	again, err := ApplyPatch(got, []byte(mergePatch))
	require.NoError(t, err)
	require.JSONEq(t, string(got), string(again))

	// A resource from a newer event keeps its event time; one without links gets a list.
	newer := `{"resourceType":"Patient","meta":{"extension":[{"url":"` + ExtSourceEventTime + `","valueDateTime":"2026-02-01T00:00:00Z"}]}}`
	got, err = ApplyPatch([]byte(newer), []byte(mergePatch))
	require.NoError(t, err)
	at, _ = SourceEventTime(got)
	require.Equal(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), at)
	require.NoError(t, json.Unmarshal(got, &p))
	require.Len(t, p["link"], 1)
}

func TestApplyPatchRefusesWhatItDoesNotImplement(t *testing.T) {
	const pat = `{"resourceType":"Patient","name":[{"family":"A"}]}`
	for name, patch := range map[string]string{
		"not Parameters":      `{"resourceType":"Patient"}`,
		"not an operation":    `{"resourceType":"Parameters","parameter":[{"name":"x"}]}`,
		"insert":              `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"insert"},{"name":"path","valueString":"Patient.name"},{"name":"index","valueInteger":0}]}]}`,
		"a FHIRPath function": `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.name.where(use='old')"}]}]}`,
		"another type":        `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Encounter.status"}]}]}`,
		"add to a non-list":   `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"gender"},{"name":"value","part":[{"name":"x","valueString":"y"}]}]}]}`,
		"replace of nothing":  `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.gender"},{"name":"value","valueCode":"male"}]}]}`,
	} {
		res := pat
		if name == "add to a non-list" {
			res = `{"resourceType":"Patient","gender":"male"}`
		}
		_, err := ApplyPatch([]byte(res), []byte(patch))
		require.ErrorIs(t, err, ErrInvalidResource, name)
	}
}
