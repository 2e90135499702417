package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// GroupPatients returns the ids of a Group resource's Patient members (member.entity
// references of the form Patient/id or …/Patient/id), in order, without duplicates. Members
// whose membership is marked inactive are left out.
func GroupPatients(group []byte) ([]string, error) {
	var g struct {
		ResourceType string `json:"resourceType"`
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
	seen := map[string]bool{}
	var out []string
	for _, m := range g.Member {
		if m.Inactive {
			continue
		}
		ref := m.Entity.Reference
		i := strings.LastIndex(ref, "Patient/")
		if i < 0 || (i > 0 && ref[i-1] != '/') {
			continue
		}
		id := ref[i+len("Patient/"):]
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

// IgnoredOutcome is the error-file line reporting the parameters a lenient kick-off dropped.
func IgnoredOutcome(ignored []string) ([]byte, error) {
	issues := make([]any, 0, len(ignored))
	for _, p := range ignored {
		issues = append(issues, map[string]any{
			"severity": "warning", "code": "not-supported",
			"diagnostics": "parameter " + p + " is not supported and was ignored (Prefer: handling=lenient)",
		})
	}
	return json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": issues})
}
