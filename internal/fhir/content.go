package fhir

import (
	"bytes"
	"encoding/json"
)

// SameContent reports whether two resources hold the same content, ignoring id and
// meta.versionId/lastUpdated, which the owner sets: the comparison the built-in store makes
// before it writes a version and the FHIR client makes before it sends one, so that a replay
// changes nothing at either kind of owner. A body that is not a JSON object is never the same.
func SameContent(stored, incoming []byte) bool {
	a, errA := canonicalContent(stored)
	b, errB := canonicalContent(incoming)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func canonicalContent(body []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	delete(m, "id")
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
		if len(meta) == 0 {
			delete(m, "meta")
		}
	}
	return json.Marshal(m) // map keys marshal sorted, so equal content gives equal bytes
}
