package workflows_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/nhp/interop/workflows"
)

func TestBulkExportIDsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]string{{"default", "$system"}, {"t-1", "$patient"}, {"a/b%c", "group-1.x"}} {
		id := workflows.BulkExportWorkflowID(c[0], c[1])
		tenant, group, err := workflows.ParseBulkExportWorkflowID(id)
		require.NoError(t, err, id)
		require.Equal(t, c, [2]string{tenant, group}, id)
	}
	require.Equal(t, "bulk-export/default/$system", workflows.BulkExportWorkflowID("default", "$system"), "ids stay readable")
	for _, bad := range []string{"", "bulk-export/", "bulk-export/t", "bulk-export//g", "bulk-export/t/", "bulk-export/t/g/h", "bulk-export/%zz/g", "HL7Message:t"} {
		_, _, err := workflows.ParseBulkExportWorkflowID(bad)
		require.Error(t, err, bad)
	}

	job := uuid.New()
	got, err := workflows.ParseBulkExportExpiryWorkflowID(workflows.BulkExportExpiryWorkflowID(job))
	require.NoError(t, err)
	require.Equal(t, job, got)
	for _, bad := range []string{"", "bulk-export-expiry/x", "bulk-export/" + job.String()} {
		_, err := workflows.ParseBulkExportExpiryWorkflowID(bad)
		require.Error(t, err, bad)
	}
}

func TestBulkExportStartOptions(t *testing.T) {
	t.Parallel()
	o := workflows.BulkExportStartOptions("bulk-export/t/$system", "q")
	require.Equal(t, "bulk-export/t/$system", o.ID)
	require.Equal(t, "q", o.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, o.WorkflowIDReusePolicy, "a new job of the group reuses the id of a completed one")
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, o.WorkflowIDConflictPolicy)
	require.True(t, o.WorkflowExecutionErrorWhenAlreadyStarted, "a closing run must not be returned as the new job's")
}
