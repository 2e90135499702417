package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// RewriteReferences replaces every Reference.reference found in refs (e.g. a transaction's
// "urn:uuid:…" placeholders) with its target ("Patient/123"). Numbers are kept exactly.
func RewriteReferences(body []byte, refs map[string]string) ([]byte, error) {
	if len(refs) == 0 {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	changed := rewrite(v, refs)
	if !changed {
		return body, nil
	}
	return json.Marshal(v)
}

func rewrite(v any, refs map[string]string) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok && k == "reference" {
				if target, ok := refs[s]; ok {
					t[k] = target
					changed = true
				}
				continue
			}
			changed = rewrite(child, refs) || changed
		}
	case []any:
		for _, child := range t {
			changed = rewrite(child, refs) || changed
		}
	}
	return changed
}
