package fhirclient

import (
	"bytes"
	"encoding/json"
)

// sameContent reports whether two resources hold the same content, ignoring id and
// meta.versionId/lastUpdated, which the owner sets: the comparison the built-in store makes
// before it writes a version, so that a replay changes nothing at either kind of owner.
func sameContent(stored, incoming []byte) bool {
	a, errA := canonical(stored)
	b, errB := canonical(incoming)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func canonical(body []byte) ([]byte, error) {
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
