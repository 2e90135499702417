package workflows

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// The contract of BulkExport and BulkExportExpiry: type names, inputs, id builders and their
// inverses, and the start options of an export, in one place beside the workflows.

// Workflow type names, fixed so that renaming a Go function never orphans running exports.
const (
	BulkExportName       = "BulkExportWorkflow"
	BulkExportExpiryName = "BulkExportExpiryWorkflow"
)

// DefaultExportParallelism bounds the tasks (resource types) one export runs at once.
const DefaultExportParallelism = 4

// BulkExportInput starts the export of one BulkExportJob.
type BulkExportInput struct {
	JobID uuid.UUID `json:"jobId"`
	// Retention is how long the completed files are kept.
	Retention time.Duration `json:"retention"`
	// Parallelism bounds the tasks run at once; 0 means DefaultExportParallelism.
	Parallelism int `json:"parallelism,omitempty"`
}

const (
	bulkExportPrefix       = "bulk-export/"
	bulkExportExpiryPrefix = "bulk-export-expiry/"
)

// BulkExportWorkflowID is the id of the export workflow of (tenant, group): a second export
// of the same group cannot start while one runs, whatever the database says. '/' and '%'
// inside the tenant are percent-encoded so that ParseBulkExportWorkflowID can invert it (a
// group key — a FHIR id, "$system" or "$patient" — has no '/').
func BulkExportWorkflowID(tenant, groupKey string) string {
	return bulkExportPrefix + bulkIDEscaper.Replace(tenant) + "/" + groupKey
}

var bulkIDEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// ParseBulkExportWorkflowID inverts BulkExportWorkflowID.
func ParseBulkExportWorkflowID(id string) (tenant, groupKey string, err error) {
	rest, ok := strings.CutPrefix(id, bulkExportPrefix)
	if !ok {
		return "", "", fmt.Errorf("workflow id %q: not a bulk export id", id)
	}
	t, g, ok := strings.Cut(rest, "/")
	if !ok || t == "" || g == "" || strings.Contains(g, "/") {
		return "", "", fmt.Errorf("workflow id %q: want bulk-export/<tenant>/<group>", id)
	}
	if tenant, err = url.PathUnescape(t); err != nil {
		return "", "", fmt.Errorf("workflow id %q: tenant: %w", id, err)
	}
	return tenant, g, nil
}

// BulkExportExpiryWorkflowID is the id of the workflow that deletes a job's files at expiry.
func BulkExportExpiryWorkflowID(jobID uuid.UUID) string {
	return bulkExportExpiryPrefix + jobID.String()
}

// ParseBulkExportExpiryWorkflowID inverts BulkExportExpiryWorkflowID.
func ParseBulkExportExpiryWorkflowID(id string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(id, bulkExportExpiryPrefix)
	if !ok {
		return uuid.Nil, fmt.Errorf("workflow id %q: not a bulk export expiry id", id)
	}
	jobID, err := uuid.Parse(rest)
	if err != nil {
		return uuid.Nil, fmt.Errorf("workflow id %q: job: %w", id, err)
	}
	return jobID, nil
}

// BulkExportStartOptions are the options of an export's run under the group's id. The
// database has just admitted the job, so a run holding the id is one that completed its job
// and is closing; the start must then fail with serviceerror.WorkflowExecutionAlreadyStarted
// (the caller waits for that run and starts again): by default the SDK would return the
// running workflow as if it were the new one, and the new job would never start.
func BulkExportStartOptions(id, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// BulkExportExpiryInput names the job whose files expire, and when.
type BulkExportExpiryInput struct {
	JobID     uuid.UUID `json:"jobId"`
	ExpiresAt time.Time `json:"expiresAt"`
}
