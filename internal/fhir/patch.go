package fhir

import (
	"bytes"
	"encoding/json"

	"fmt"
	"time"
)

// ErrUnsupportedPatch means a FHIRPath Patch uses what ApplyPatch does not implement.
var ErrUnsupportedPatch = fmt.Errorf("%w: unsupported FHIRPath Patch", ErrInvalidResource)

// ApplyPatch applies a FHIRPath Patch (a Parameters resource of "operation" parameters, the
// body of a PATCH entry in a transaction) to resource and returns the patched resource. It
// implements the subset the mapping writes, on elements at the resource's root, and refuses
// the rest with ErrUnsupportedPatch rather than guess:
//   - add (path "<Type>", name, value): a complex value (given as parts) is a list item,
//     appended unless an equal item is already there, so applying a patch twice changes
//     nothing; a primitive value (value[x]) sets the element;
//   - delete (path "<Type>.<element>"): removes the element, nothing when it is absent;
//   - replace (path "<Type>.<element>", value): sets an element that exists.
//
// The patch's meta may carry ExtSourceEventTime: the patched resource then carries the later
// of its own and the patch's, so that a full update from an event older than the patch is
// refused as stale instead of undoing it.
func ApplyPatch(resource, patch []byte) ([]byte, error) {
	var p struct {
		ResourceType string           `json:"resourceType"`
		Parameter    []patchParameter `json:"parameter"`
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	if p.ResourceType != "Parameters" {
		return nil, fmt.Errorf("%w: the body is a %q, not Parameters", ErrUnsupportedPatch, p.ResourceType)
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(resource, &root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	var typ string
	if err := json.Unmarshal(root["resourceType"], &typ); err != nil || typ == "" {
		return nil, fmt.Errorf("%w: no resourceType", ErrInvalidResource)
	}
	for i, param := range p.Parameter {
		if err := applyOperation(root, typ, param); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i+1, err)
		}
	}
	if t, ok := SourceEventTime(patch); ok {
		if err := laterEventTime(root, t); err != nil {
			return nil, err
		}
	}
	return json.Marshal(root)
}

// patchParameter is a Parameters.parameter (or one of its parts): a name, a value[x] or parts.
type patchParameter struct {
	Name  string
	Value json.RawMessage // the value[x], whatever its type; nil when absent
	Part  []patchParameter
}

func (p *patchParameter) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, v := range m {
		switch {
		case k == "name":
			if err := json.Unmarshal(v, &p.Name); err != nil {
				return err
			}
		case k == "part":
			if err := json.Unmarshal(v, &p.Part); err != nil {
				return err
			}
		case len(k) > len("value") && k[:len("value")] == "value":
			p.Value = v
		}
	}
	return nil
}

// value is the parameter's value as JSON: its value[x], or an object of its parts (a part
// name given twice becomes a list). parts reports the latter.
func (p *patchParameter) value() (raw json.RawMessage, parts bool, err error) {
	if p.Value != nil {
		return p.Value, false, nil
	}
	if len(p.Part) == 0 {
		return nil, false, nil
	}
	obj := map[string]any{}
	for _, part := range p.Part {
		v, _, err := part.value()
		if err != nil {
			return nil, false, err
		}
		if v == nil {
			continue
		}
		switch prev := obj[part.Name].(type) {
		case nil:
			obj[part.Name] = v
		case []json.RawMessage:
			obj[part.Name] = append(prev, v)
		case json.RawMessage:
			obj[part.Name] = []json.RawMessage{prev, v}
		}
	}
	raw, err = json.Marshal(obj)
	return raw, true, err
}

func applyOperation(root map[string]json.RawMessage, typ string, op patchParameter) error {
	if op.Name != "operation" {
		return fmt.Errorf("%w: parameter %q is not an operation", ErrUnsupportedPatch, op.Name)
	}
	var kind, path, name string
	var value *patchParameter
	for i := range op.Part {
		part := &op.Part[i]
		var s string
		if part.Name != "value" && part.Value != nil {
			if err := json.Unmarshal(part.Value, &s); err != nil {
				return fmt.Errorf("%w: part %q: %v", ErrUnsupportedPatch, part.Name, err)
			}
		}
		switch part.Name {
		case "type":
			kind = s
		case "path":
			path = s
		case "name":
			name = s
		case "value":
			value = part
		default:
			return fmt.Errorf("%w: part %q", ErrUnsupportedPatch, part.Name)
		}
	}
	element := ""
	switch {
	case path == typ:
	case len(path) > len(typ)+1 && path[:len(typ)+1] == typ+"." && isElementName(path[len(typ)+1:]):
		element = path[len(typ)+1:]
	default:
		return fmt.Errorf("%w: path %q (only %s and %s.<element>)", ErrUnsupportedPatch, path, typ, typ)
	}
	switch {
	case kind == "add" && element == "" && isElementName(name) && value != nil:
		raw, parts, err := value.value()
		if err != nil || raw == nil {
			return fmt.Errorf("%w: add %s: no value", ErrUnsupportedPatch, name)
		}
		if !parts {
			root[name] = raw
			return nil
		}
		return appendItem(root, name, raw)
	case kind == "delete" && element != "":
		delete(root, element)
		delete(root, "_"+element)
		return nil
	case kind == "replace" && element != "" && value != nil:
		if _, ok := root[element]; !ok {
			return fmt.Errorf("%w: replace %s: no such element", ErrInvalidResource, path)
		}
		raw, _, err := value.value()
		if err != nil || raw == nil {
			return fmt.Errorf("%w: replace %s: no value", ErrUnsupportedPatch, path)
		}
		root[element] = raw
		return nil
	}
	return fmt.Errorf("%w: %s of %q", ErrUnsupportedPatch, kind, path)
}

// appendItem appends item to the list root[name] unless an equal item is in it.
func appendItem(root map[string]json.RawMessage, name string, item json.RawMessage) error {
	want, err := canonicalJSON(item)
	if err != nil {
		return err
	}
	var list []json.RawMessage
	if cur, ok := root[name]; ok {
		if err := json.Unmarshal(cur, &list); err != nil {
			return fmt.Errorf("%w: add %s: the element is not a list", ErrUnsupportedPatch, name)
		}
	}
	for _, have := range list {
		if c, err := canonicalJSON(have); err == nil && bytes.Equal(c, want) {
			return nil
		}
	}
	raw, err := json.Marshal(append(list, item))
	if err != nil {
		return err
	}
	root[name] = raw
	return nil
}

// canonicalJSON re-encodes v with sorted keys and no insignificant space.
func canonicalJSON(v json.RawMessage) ([]byte, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// laterEventTime sets root's ExtSourceEventTime to t unless it carries a later one.
func laterEventTime(root map[string]json.RawMessage, t time.Time) error {
	cur, err := json.Marshal(root)
	if err != nil {
		return err
	}
	if have, ok := SourceEventTime(cur); ok && !t.After(have) {
		return nil
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := root["meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return fmt.Errorf("%w: meta: %v", ErrInvalidResource, err)
		}
	}
	var exts []json.RawMessage
	if raw, ok := meta["extension"]; ok {
		if err := json.Unmarshal(raw, &exts); err != nil {
			return fmt.Errorf("%w: meta.extension: %v", ErrInvalidResource, err)
		}
	}
	ext, err := json.Marshal(SourceEventTimeExtension(t))
	if err != nil {
		return err
	}
	replaced := false
	for i, raw := range exts {
		var e Extension
		if json.Unmarshal(raw, &e) == nil && e.URL == ExtSourceEventTime {
			exts[i], replaced = ext, true
		}
	}
	if !replaced {
		exts = append(exts, ext)
	}
	if meta["extension"], err = json.Marshal(exts); err != nil {
		return err
	}
	root["meta"], err = json.Marshal(meta)
	return err
}

func isElementName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s[0] >= 'a' && s[0] <= 'z'
}
