package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// GroupPatients returns the ids of a Group resource's current Patient members, in member
// order without duplicates. Inactive members are left out, and so are members that are not
// relative references to a Patient ("Patient/id", a version suffix allowed): an absolute URL
// may name another server's patient. A Group with actual=false is defined by
// characteristics, and its members cannot be enumerated: an error.
func GroupPatients(group []byte) ([]string, error) {
	var g struct {
		ResourceType string `json:"resourceType"`
		Actual       *bool  `json:"actual"`
		Member       []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
			Inactive bool `json:"inactive"`
		} `json:"member"`
	}
	if err := json.Unmarshal(group, &g); err != nil {
		return nil, fmt.Errorf("unreadable Group: %w", err)
	}
	if g.ResourceType != "Group" {
		return nil, errors.New("not a Group resource")
	}
	if g.Actual != nil && !*g.Actual {
		return nil, errors.New("the Group is defined by characteristics (actual=false): its members cannot be exported")
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range g.Member {
		id, ok := strings.CutPrefix(m.Entity.Reference, "Patient/")
		if m.Inactive || !ok {
			continue
		}
		id, _, _ = strings.Cut(id, "/_history/")
		if id == "" || strings.Contains(id, "/") || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// DeletedEntry is one line of a `deleted` file (IG: a transaction Bundle whose entry has
// request.method DELETE and request.url Type/id).
func DeletedEntry(typ, id string) ([]byte, error) {
	b := map[string]any{
		"resourceType": "Bundle",
		"type":         "transaction",
		"entry": []any{map[string]any{
			"request": map[string]any{"method": "DELETE", "url": typ + "/" + id},
		}},
	}
	return json.Marshal(b)
}

// IgnoredOutcomes are the error-file lines reporting the parameters a lenient kick-off
// dropped: one OperationOutcome per parameter.
func IgnoredOutcomes(ignored []string) ([][]byte, error) {
	out := make([][]byte, 0, len(ignored))
	for _, p := range ignored {
		line, err := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{
			"severity": "warning", "code": "not-supported",
			"diagnostics": "parameter " + p + " is not supported and was ignored (Prefer: handling=lenient)",
		}}})
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}
