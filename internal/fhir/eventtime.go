package fhir

import (
	"encoding/json"
	"time"
)

// ExtSourceEventTime is the meta extension carrying when the source event happened (HL7 v2
// EVN-2, else MSH-7). Conditional updates compare it so that a message processed late never
// overwrites state from a newer event.
const ExtSourceEventTime = "https://interop.nhp.health/fhir/StructureDefinition/source-event-time"

// Extension is a FHIR extension with the value types the service writes.
type Extension struct {
	URL           string `json:"url"`
	ValueDateTime string `json:"valueDateTime,omitempty"`
	ValueCode     string `json:"valueCode,omitempty"`
}

// SourceEventTimeExtension returns the meta extension for t.
func SourceEventTimeExtension(t time.Time) Extension {
	return Extension{URL: ExtSourceEventTime, ValueDateTime: t.UTC().Format(time.RFC3339Nano)}
}

// SourceEventTime reads ExtSourceEventTime from a resource's meta; ok is false when the
// resource carries none (or an unreadable one).
func SourceEventTime(resource []byte) (t time.Time, ok bool) {
	var r struct {
		Meta struct {
			Extension []Extension `json:"extension"`
		} `json:"meta"`
	}
	if json.Unmarshal(resource, &r) != nil {
		return time.Time{}, false
	}
	for _, e := range r.Meta.Extension {
		if e.URL == ExtSourceEventTime {
			t, err := time.Parse(time.RFC3339Nano, e.ValueDateTime)
			return t, err == nil
		}
	}
	return time.Time{}, false
}
