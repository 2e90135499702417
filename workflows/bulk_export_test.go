package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/workflows"
)

func newExportEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newEnv(t)
	env.RegisterWorkflowWithOptions(workflows.BulkExport, workflow.RegisterOptions{Name: workflows.BulkExportName})
	env.RegisterWorkflowWithOptions(workflows.BulkExportExpiry, workflow.RegisterOptions{Name: workflows.BulkExportExpiryName})
	return env
}

func exportPlan(types ...string) activities.ExportPlan {
	var p activities.ExportPlan
	for _, t := range types {
		p.Tasks = append(p.Tasks, activities.ExportTask{Type: t, Owner: "builtin"})
	}
	return p
}

// Every task runs, never more than Parallelism at once; the job completes and its expiry
// workflow is started, abandoned, to delete the files when they expire.
func TestBulkExportRunsTasksBoundedAndHandsFilesToExpiry(t *testing.T) {
	t.Parallel()
	env := newExportEnv(t)
	job := uuid.New()
	types := []string{"AllergyIntolerance", "Condition", "Encounter", "Immunization", "Observation", "Patient", "Procedure"}
	env.OnActivity(a.BulkExportPlan, mock.Anything, job).Return(exportPlan(types...), nil).Once()
	var mu sync.Mutex
	running, peak := 0, 0
	var ran []string
	env.OnActivity(a.BulkExportType, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportTaskInput) (activities.ExportTaskResult, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		ran = append(ran, in.Task.Type)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return activities.ExportTaskResult{Files: 1, Resources: 10}, nil
	})
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	env.OnActivity(a.BulkExportComplete, mock.Anything, activities.ExportCompleteInput{JobID: job, Retention: time.Hour}).
		Return(activities.ExportCompleteResult{ExpiresAt: expires, Files: len(types)}, nil).Once()
	var expiry workflows.BulkExportExpiryInput
	env.OnWorkflow(workflows.BulkExportExpiryName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.BulkExportExpiryInput) error {
		expiry = in
		return nil
	}).Once()

	env.ExecuteWorkflow(workflows.BulkExport, workflows.BulkExportInput{JobID: job, Retention: time.Hour, Parallelism: 3})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.ElementsMatch(t, types, ran)
	require.LessOrEqual(t, peak, 3, "more tasks ran at once than the parallelism allows")
	require.Equal(t, workflows.BulkExportExpiryInput{JobID: job, ExpiresAt: expires}, expiry)
	env.AssertExpectations(t)
}

// A task that fails for good fails the job with the activity's own message, and stops the
// tasks not yet started.
func TestBulkExportRecordsAFailure(t *testing.T) {
	t.Parallel()
	env := newExportEnv(t)
	job := uuid.New()
	env.OnActivity(a.BulkExportPlan, mock.Anything, job).Return(exportPlan("Condition", "Observation", "Patient"), nil).Once()
	var started []string
	var mu sync.Mutex
	env.OnActivity(a.BulkExportType, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportTaskInput) (activities.ExportTaskResult, error) {
		mu.Lock()
		started = append(started, in.Task.Type)
		mu.Unlock()
		if in.Task.Type == "Condition" {
			return activities.ExportTaskResult{}, temporal.NewNonRetryableApplicationError("_typeFilter Condition?x=1: unknown", activities.ErrTypeExportInvalid, nil)
		}
		return activities.ExportTaskResult{}, nil
	})
	var failed activities.ExportFailInput
	env.OnActivity(a.BulkExportFail, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = args.Get(1).(activities.ExportFailInput)
	}).Return(nil).Once()

	env.ExecuteWorkflow(workflows.BulkExport, workflows.BulkExportInput{JobID: job, Retention: time.Hour, Parallelism: 1})
	require.True(t, env.IsWorkflowCompleted())
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, activities.ExportFailInput{JobID: job, Message: "_typeFilter Condition?x=1: unknown"}, failed)
	require.Equal(t, []string{"Condition"}, started, "tasks were started after the first failure")
	env.AssertNotCalled(t, "BulkExportComplete", mock.Anything, mock.Anything)
}

// A job cancelled by DELETE (the activities find it inactive) deletes its files and is not
// recorded as failed.
func TestBulkExportCancelledDeletesFiles(t *testing.T) {
	t.Parallel()
	env := newExportEnv(t)
	job := uuid.New()
	env.OnActivity(a.BulkExportPlan, mock.Anything, job).Return(exportPlan("Patient"), nil).Once()
	env.OnActivity(a.BulkExportType, mock.Anything, mock.Anything).Return(activities.ExportTaskResult{},
		temporal.NewNonRetryableApplicationError("export job is cancelled", activities.ErrTypeExportInactive, nil)).Once()
	env.OnActivity(a.BulkExportCleanup, mock.Anything, activities.ExportCleanupInput{JobID: job}).Return(nil).Once()

	env.ExecuteWorkflow(workflows.BulkExport, workflows.BulkExportInput{JobID: job, Retention: time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.Error(t, env.GetWorkflowError())
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "BulkExportFail", mock.Anything, mock.Anything)
}

// The expiry workflow sleeps until the files expire, then deletes them and marks the job
// expired; cancelled first, it deletes them without marking it expired.
func TestBulkExportExpiry(t *testing.T) {
	t.Parallel()
	t.Run("expires", func(t *testing.T) {
		env := newExportEnv(t)
		job := uuid.New()
		start := env.Now()
		var firedAt time.Time
		env.OnActivity(a.BulkExportCleanup, mock.Anything, activities.ExportCleanupInput{JobID: job, Expire: true}).Run(func(mock.Arguments) {
			firedAt = env.Now()
		}).Return(nil).Once()
		env.ExecuteWorkflow(workflows.BulkExportExpiry, workflows.BulkExportExpiryInput{JobID: job, ExpiresAt: start.Add(24 * time.Hour)})
		require.NoError(t, env.GetWorkflowError())
		require.False(t, firedAt.Before(start.Add(24*time.Hour)), "files deleted before they expired: %s", firedAt.Sub(start))
		env.AssertExpectations(t)
	})
	t.Run("cancelled", func(t *testing.T) {
		env := newExportEnv(t)
		job := uuid.New()
		env.OnActivity(a.BulkExportCleanup, mock.Anything, activities.ExportCleanupInput{JobID: job, Expire: false}).Return(nil).Once()
		env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
		env.ExecuteWorkflow(workflows.BulkExportExpiry, workflows.BulkExportExpiryInput{JobID: job, ExpiresAt: env.Now().Add(24 * time.Hour)})
		env.AssertExpectations(t)
	})
}
