package workflows

import (
	"errors"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
)

// BulkExport runs one $export: it plans the tasks (one per resource type and owner), runs them
// with bounded parallelism — each writes its files and resumes from its heartbeat after a
// crash — then completes the job and hands its files to BulkExportExpiry. A cancellation
// (DELETE on the status URL) stops the tasks and deletes what they wrote; a failure is
// recorded on the job for the status URL, and its files are deleted.
func BulkExport(ctx workflow.Context, in BulkExportInput) error {
	var a *activities.Activities
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 20,
		},
	})
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 24 * time.Hour,
		// A killed worker's task is retried elsewhere within 20 s, from its last heartbeat (the
		// SDK sends them at most every 16 s; a task heartbeats after every page of rows).
		HeartbeatTimeout:    20 * time.Second,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute, MaximumAttempts: 50,
		},
	})

	var plan activities.ExportPlan
	err := workflow.ExecuteActivity(short, a.BulkExportPlan, in.JobID).Get(ctx, &plan)
	if err == nil {
		err = runExportTasks(long, in, plan)
	}
	var done activities.ExportCompleteResult
	if err == nil {
		err = workflow.ExecuteActivity(short, a.BulkExportComplete, activities.ExportCompleteInput{JobID: in.JobID, Retention: in.Retention}).Get(ctx, &done)
	}
	if err != nil {
		cleanup, _ := workflow.NewDisconnectedContext(short)
		switch {
		case temporal.IsCanceledError(err) || ctx.Err() != nil || isApplicationError(err, activities.ErrTypeExportInactive):
			// Cancelled: the gateway has marked the job; only its files are left to delete.
			_ = workflow.ExecuteActivity(cleanup, a.BulkExportCleanup, activities.ExportCleanupInput{JobID: in.JobID}).Get(cleanup, nil)
			return err
		default:
			if ferr := workflow.ExecuteActivity(cleanup, a.BulkExportFail, activities.ExportFailInput{JobID: in.JobID, Message: failureMessage(err)}).Get(cleanup, nil); ferr != nil {
				workflow.GetLogger(ctx).Error("export: recording the failure failed", "error", ferr)
			}
			return err
		}
	}
	// The files outlive this workflow, so that a new export of the group may start at once;
	// their expiry is a workflow of its own that this one does not wait for.
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        BulkExportExpiryWorkflowID(in.JobID),
		ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
	})
	exp := workflow.ExecuteChildWorkflow(child, BulkExportExpiryName, BulkExportExpiryInput{JobID: in.JobID, ExpiresAt: done.ExpiresAt})
	return exp.GetChildWorkflowExecution().Get(ctx, nil)
}

// runExportTasks runs the plan's tasks, at most in.Parallelism at once. The first failure
// cancels the others.
func runExportTasks(ctx workflow.Context, in BulkExportInput, plan activities.ExportPlan) error {
	var a *activities.Activities
	par := in.Parallelism
	if par <= 0 {
		par = DefaultExportParallelism
	}
	tasksCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	var firstErr error
	next, running := 0, 0
	for next < len(plan.Tasks) || running > 0 {
		for firstErr == nil && running < par && next < len(plan.Tasks) {
			task := plan.Tasks[next]
			f := workflow.ExecuteActivity(tasksCtx, a.BulkExportType, activities.ExportTaskInput{JobID: in.JobID, Task: task})
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				if err := f.Get(ctx, nil); err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
			})
			next++
			running++
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if firstErr == nil && ctx.Err() != nil {
		return temporal.NewCanceledError()
	}
	return firstErr
}

// BulkExportExpiry waits, on a durable timer, until a completed job's files expire, then
// deletes them and marks the job expired. Cancelled (DELETE after completion), it deletes
// them at once.
func BulkExportExpiry(ctx workflow.Context, in BulkExportExpiryInput) error {
	var a *activities.Activities
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 5 * time.Minute},
	}
	err := workflow.Sleep(ctx, max(in.ExpiresAt.Sub(workflow.Now(ctx)), 0))
	expire := err == nil
	if err != nil && !temporal.IsCanceledError(err) {
		return err
	}
	cleanup, _ := workflow.NewDisconnectedContext(workflow.WithActivityOptions(ctx, opts))
	return workflow.ExecuteActivity(cleanup, a.BulkExportCleanup, activities.ExportCleanupInput{JobID: in.JobID, Expire: expire}).Get(cleanup, nil)
}

func isApplicationError(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}

// failureMessage is what the status URL reports of a failed export: the application error's
// own message, which activities word for users, not the wrapping of the SDK.
func failureMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "the export timed out"
	}
	return "the export failed"
}
