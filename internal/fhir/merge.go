package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ExtMergeList is the meta extension by which a resource says that one of its list elements
// (valueCode: the element's name, e.g. "result") is merged across messages rather than
// replaced: each message about a DiagnosticReport lists the results it carries — a correction
// only the corrected one — and the report keeps every result some message listed. The
// resource's other elements are those of the newest source event, as for any conditional
// update. See MergeLists.
const ExtMergeList = "https://interop.nhp.health/fhir/StructureDefinition/merge-list"

// MergeListExtension returns the meta extension marking element as merged across messages.
func MergeListExtension(element string) Extension {
	return Extension{URL: ExtMergeList, ValueCode: element}
}

// MergedLists returns the elements a resource marks with ExtMergeList; none for a resource
// whose lists are plainly replaced.
func MergedLists(resource []byte) []string {
	if !bytes.Contains(resource, []byte(ExtMergeList)) {
		return nil // the route step asks this of every entry: most have none
	}
	var r struct {
		Meta struct {
			Extension []Extension `json:"extension"`
		} `json:"meta"`
	}
	if json.Unmarshal(resource, &r) != nil {
		return nil
	}
	var out []string
	for _, e := range r.Meta.Extension {
		if e.URL == ExtMergeList && e.ValueCode != "" {
			out = append(out, e.ValueCode)
		}
	}
	return out
}

// MergeLists merges incoming, a conditional update whose references are resolved, into
// stored, the owner's current version of the resource it matches (nil when none), and
// returns the body to write. older reports that incoming comes from an older source event
// than stored: its scalar elements are then not applied.
//
// The resource is stored's when incoming is older and incoming's otherwise; each element
// incoming marks with ExtMergeList is a list of References merged entry by entry, each entry
// as the newest message about the resource it references says. written holds the references
// ("Type/id") the same transaction updated before this entry: true when that update applied
// (this message is the newest about it), false when it was refused as stale. So a referenced
// resource this message updated is listed exactly when incoming lists it (an entry it leaves
// out, e.g. a deleted result, is dropped); one whose update was stale keeps the stored
// listing; every other entry is kept when stored lists it and added when incoming does.
// Entries keep the stored order; a new one is placed after the entry that precedes it in
// incoming (else before the one that follows it, else last), so that a report whose
// messages arrive in any order lists its results alike.
//
// The staleness of an entry is its update's, taken earlier in the transaction: should two
// messages that disagree about one entry be processed at the same moment and interleave
// between their updates of it and their merges of the list, the list follows the one merged
// last until the next message about it.
func MergeLists(stored, incoming []byte, written map[string]bool) (merged []byte, older bool, err error) {
	elements := MergedLists(incoming)
	if len(elements) == 0 || len(stored) == 0 {
		return incoming, false, nil
	}
	var in, st map[string]json.RawMessage
	if err := json.Unmarshal(incoming, &in); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	if err := json.Unmarshal(stored, &st); err != nil {
		return nil, false, fmt.Errorf("stored resource: %w", err)
	}
	inTime, okIn := SourceEventTime(incoming)
	stTime, okSt := SourceEventTime(stored)
	older = okIn && okSt && inTime.Before(stTime)
	base := in
	if older {
		base = st
	}
	for _, el := range elements {
		list, err := mergeList(st[el], in[el], written, older)
		if err != nil {
			return nil, false, fmt.Errorf("merge %s: %w", el, err)
		}
		if len(list) == 0 {
			delete(base, el)
			continue
		}
		if base[el], err = json.Marshal(list); err != nil {
			return nil, false, err
		}
	}
	merged, err = json.Marshal(base)
	return merged, older, err
}

// mergeList merges the stored and incoming arrays of one element (see MergeLists). An entry
// is identified by its reference, else by its JSON (a Reference with only a display).
func mergeList(stored, incoming json.RawMessage, written map[string]bool, older bool) ([]json.RawMessage, error) {
	st, err := listEntries(stored)
	if err != nil {
		return nil, fmt.Errorf("stored: %w", err)
	}
	in, err := listEntries(incoming)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResource, err)
	}
	inByKey := make(map[string]json.RawMessage, len(in))
	for _, e := range in {
		inByKey[e.key] = e.raw
	}
	out := make([]listEntry, 0, len(st)+len(in))
	for _, e := range st {
		newer, listed := inByKey[e.key]
		if applied, ok := written[e.key]; ok && applied && !listed {
			continue // this message is the newest about it and leaves it out
		}
		if listed && !older {
			e.raw = newer
		}
		out = append(out, e)
	}
	// A new entry goes after the entry that precedes it in incoming, else before the one
	// that follows it, else last.
	pos := -1 // index in out of incoming's previous entry
	for j, e := range in {
		if i := indexOf(out, e.key); i >= 0 {
			pos = i
			continue
		}
		if applied, ok := written[e.key]; ok && !applied {
			continue // its update was stale: the stored listing (none) stands
		}
		at := pos + 1
		if pos < 0 {
			at = len(out)
			for _, next := range in[j+1:] {
				if i := indexOf(out, next.key); i >= 0 {
					at = i
					break
				}
			}
		}
		out = append(out, listEntry{})
		copy(out[at+1:], out[at:])
		out[at] = e
		pos = at
	}
	raws := make([]json.RawMessage, len(out))
	for i, e := range out {
		raws[i] = e.raw
	}
	return raws, nil
}

type listEntry struct {
	key string
	raw json.RawMessage
}

// listEntries reads a JSON array (absent: none), keying each entry by its reference, else
// its compact JSON.
func listEntries(raw json.RawMessage) ([]listEntry, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	out := make([]listEntry, len(list))
	for i, e := range list {
		var r struct {
			Reference string `json:"reference"`
		}
		key := ""
		if json.Unmarshal(e, &r) == nil {
			key = r.Reference
		}
		if key == "" {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e); err != nil {
				return nil, err
			}
			key = buf.String()
		}
		out[i] = listEntry{key: key, raw: e}
	}
	return out, nil
}

func indexOf(list []listEntry, key string) int {
	for i, e := range list {
		if e.key == key {
			return i
		}
	}
	return -1
}
