package fhirserver

import (
	"slices"

	"github.com/nhp/interop/internal/store"
)

// CapabilityStatement is the FHIR CapabilityStatement resource, the parts this service states.
type CapabilityStatement struct {
	ResourceType string           `json:"resourceType"`
	Status       string           `json:"status"`
	Date         string           `json:"date,omitempty"`
	Kind         string           `json:"kind"`
	FHIRVersion  string           `json:"fhirVersion"`
	Format       []string         `json:"format"`
	Software     *Software        `json:"software,omitempty"`
	Rest         []CapabilityRest `json:"rest"`
}

// Software is CapabilityStatement.software.
type Software struct {
	Name string `json:"name"`
}

// CapabilityRest is CapabilityStatement.rest.
type CapabilityRest struct {
	Mode        string               `json:"mode"`
	Resource    []CapabilityResource `json:"resource"`
	Interaction []Code               `json:"interaction,omitempty"`
}

// CapabilityResource is CapabilityStatement.rest.resource: one type's abilities.
type CapabilityResource struct {
	Type              string        `json:"type"`
	Versioning        string        `json:"versioning"`
	ReadHistory       bool          `json:"readHistory"`
	UpdateCreate      bool          `json:"updateCreate"`
	ConditionalCreate bool          `json:"conditionalCreate"`
	ConditionalUpdate bool          `json:"conditionalUpdate"`
	ConditionalDelete string        `json:"conditionalDelete"`
	Interaction       []Code        `json:"interaction"`
	SearchInclude     []string      `json:"searchInclude,omitempty"`
	SearchParam       []SearchParam `json:"searchParam"`
}

// Code is an element holding one code (interaction.code).
type Code struct {
	Code string `json:"code"`
}

// SearchParam is CapabilityStatement.rest.resource.searchParam.
type SearchParam struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Capabilities states what the store serves: its indexed types, their interactions and
// search parameters, and the system interactions (batch, transaction). Any other valid
// type is stored too, searchable by _id, _lastUpdated and identifier. The gateway builds its
// own statement from this and its routing table.
func Capabilities() CapabilityStatement {
	var resources []CapabilityResource
	for _, typ := range store.IndexedTypes() {
		params := store.SearchParams(typ)
		names := make([]string, 0, len(params))
		for n := range params {
			names = append(names, n)
		}
		slices.Sort(names)
		res := CapabilityResource{
			Type: typ, Versioning: "versioned", ReadHistory: true, UpdateCreate: true,
			ConditionalCreate: true, ConditionalUpdate: true, ConditionalDelete: "single",
		}
		for _, c := range []string{"read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"} {
			res.Interaction = append(res.Interaction, Code{Code: c})
		}
		for _, n := range names {
			res.SearchParam = append(res.SearchParam, SearchParam{Name: n, Type: params[n]})
		}
		for _, p := range store.IncludeParams(typ) {
			res.SearchInclude = append(res.SearchInclude, typ+":"+p)
		}
		resources = append(resources, res)
	}
	return CapabilityStatement{
		ResourceType: "CapabilityStatement", Status: "active", Kind: "instance", FHIRVersion: "4.0.1",
		Format: []string{"application/fhir+json", "json"}, Software: &Software{Name: "interop built-in FHIR store"},
		Rest: []CapabilityRest{{
			Mode: "server", Resource: resources,
			Interaction: []Code{{Code: "batch"}, {Code: "transaction"}, {Code: "history-system"}},
		}},
	}
}
