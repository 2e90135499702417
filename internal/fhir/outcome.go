package fhir

import (
	"slices"
	"strconv"
)

// IssueSeverity is OperationOutcome.issue.severity.
type IssueSeverity string

// Issue severities (http://hl7.org/fhir/issue-severity).
const (
	SeverityFatal       IssueSeverity = "fatal"
	SeverityError       IssueSeverity = "error"
	SeverityWarning     IssueSeverity = "warning"
	SeverityInformation IssueSeverity = "information"
)

// IssueType is OperationOutcome.issue.code (http://hl7.org/fhir/issue-type), the subset we raise.
type IssueType string

// Issue types the service raises.
const (
	IssueInvalid       IssueType = "invalid"
	IssueStructure     IssueType = "structure"
	IssueRequired      IssueType = "required"
	IssueValue         IssueType = "value"
	IssueSecurity      IssueType = "security"
	IssueLogin         IssueType = "login"
	IssueForbidden     IssueType = "forbidden"
	IssueNotFound      IssueType = "not-found"
	IssueDeleted       IssueType = "deleted"
	IssueConflict      IssueType = "conflict"
	IssueDuplicate     IssueType = "duplicate"
	IssueNotSupported  IssueType = "not-supported"
	IssueProcessing    IssueType = "processing"
	IssueTransient     IssueType = "transient"
	IssueTimeout       IssueType = "timeout"
	IssueThrottled     IssueType = "throttled"
	IssueException     IssueType = "exception"
	IssueInformational IssueType = "informational"
	IssueTooLong       IssueType = "too-long"
	// IssueMultipleMatches: the operation needed one match and its criteria found several.
	IssueMultipleMatches IssueType = "multiple-matches"
	// IssueSuppressed: some information was left out of the answer, here for want of the
	// token's scopes (resources of a type it may not read).
	IssueSuppressed IssueType = "suppressed"
)

// OperationOutcome is the FHIR resource for errors and warnings.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    IssueSeverity `json:"severity"`
	Code        IssueType     `json:"code"`
	Diagnostics string        `json:"diagnostics,omitempty"`
	Expression  []string      `json:"expression,omitempty"`
}

// NewOutcome returns an OperationOutcome with one issue.
func NewOutcome(severity IssueSeverity, code IssueType, diagnostics string) *OperationOutcome {
	return &OperationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []Issue{{Severity: severity, Code: code, Diagnostics: diagnostics}},
	}
}

// WithheldOutcome is the OperationOutcome of a search (searchset entry of mode outcome) that
// left resources out because the caller may not read their type: one warning per type,
// counts by type (included or revincluded resources, or resources of another type an owner
// answered with). Nil when nothing was left out.
func WithheldOutcome(counts map[string]int) *OperationOutcome {
	if len(counts) == 0 {
		return nil
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)
	oo := &OperationOutcome{ResourceType: "OperationOutcome"}
	for _, t := range types {
		oo.Issue = append(oo.Issue, Issue{Severity: SeverityWarning, Code: IssueSuppressed,
			Diagnostics: strconv.Itoa(counts[t]) + " " + t + " resource(s) left out: the token's scopes do not grant read ('r') on " + t})
	}
	return oo
}
