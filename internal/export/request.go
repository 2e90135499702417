// Package export holds the pure parts of FHIR Bulk Data $export (Bulk Data Access IG v2.0.0):
// the kick-off request and its validation, the manifest, the splitting of NDJSON output into
// files bounded by bytes and count, and the signed, expiring URLs files are served through.
// It knows nothing of Temporal, echo or SQL.
package export

import "time"

// Level is the scope of an export: the whole system, every patient, or one Group's members.
type Level string

// Levels of a kick-off.
const (
	LevelSystem  Level = "system"
	LevelPatient Level = "patient"
	LevelGroup   Level = "group"
)

// Request is a validated kick-off request. It is stored with the BulkExportJob (as JSON) and
// carried by the BulkExportWorkflow, so it holds no PHI beyond ids.
type Request struct {
	Level Level `json:"level"`
	// GroupID is the Group of a group-level export.
	GroupID string `json:"groupId,omitempty"`
	// Types are the resource types to export (_type), in request order without duplicates;
	// empty means every type the level covers.
	Types []string `json:"types,omitempty"`
	// Since (_since) exports only resources changed after it; zero means all.
	Since time.Time `json:"since,omitzero"`
	// TypeFilters (_typeFilter) are, per resource type, FHIR search queries (without the type
	// and '?', e.g. "category=laboratory&status=final"); a resource is exported when it matches
	// any of its type's queries. Types without filters are exported whole. Each query is in
	// canonical URL-encoded form: url.ParseQuery yields exactly its search parameters.
	TypeFilters map[string][]string `json:"typeFilters,omitempty"`
	// Patients (the POST `patient` parameter) restrict a patient- or group-level export to
	// these Patient ids.
	Patients []string `json:"patients,omitempty"`
	// OutputFormat is always application/fhir+ndjson once validated.
	OutputFormat string `json:"outputFormat"`
	// IncludeAssociatedData, Elements… are not supported; with Prefer: handling=lenient they
	// are dropped and listed here, to be reported in the manifest's error file. Each entry
	// names the parameter, with the dropped value or a short note where that helps:
	// `_elements`, `_type value "Foo"`, `_typeFilter on Observation (not in _type)`.
	Ignored []string `json:"ignored,omitempty"`
}

// GroupKey is the (tenant, group) key of the one-active-export invariant: system and patient
// levels count as groups of their own.
func (r Request) GroupKey() string {
	switch r.Level {
	case LevelSystem:
		return "$system"
	case LevelPatient:
		return "$patient"
	default:
		return r.GroupID
	}
}
