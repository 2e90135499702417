// Package worker registers the workflows and activities on their task queue and sets the
// worker options. Both `interop worker` and `interop dev` run it.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/workflows"
)

// Options tune the worker's concurrency; zero values take the SDK's defaults.
type Options struct {
	// MaxConcurrentLocalActivities bounds the pipeline steps in flight; 0 means
	// DefaultMaxConcurrentLocalActivities.
	MaxConcurrentLocalActivities int
	MaxConcurrentActivities      int
	MaxConcurrentWorkflows       int
	ActivityPollers              int
	WorkflowPollers              int
}

// DefaultMaxConcurrentLocalActivities keeps the pipeline steps in flight near what the
// database pool (db.DefaultMaxConns) serves. Unbounded, the steps would wait for a connection
// inside their start-to-close timeout, and an overloaded worker would fail tries instead of
// queueing them.
const DefaultMaxConcurrentLocalActivities = 32

// New returns a worker (not yet started) serving taskQueue with every workflow and activity.
func New(c client.Client, taskQueue string, acts *activities.Activities, o Options) sdkworker.Worker {
	if o.MaxConcurrentLocalActivities <= 0 {
		o.MaxConcurrentLocalActivities = DefaultMaxConcurrentLocalActivities
	}
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		MaxConcurrentLocalActivityExecutionSize: o.MaxConcurrentLocalActivities,
		MaxConcurrentActivityExecutionSize:      o.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize:  o.MaxConcurrentWorkflows,
		MaxConcurrentActivityTaskPollers:        o.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:        o.WorkflowPollers,
		// A workflow that panics or turns non-deterministic after a deploy must stop and wait
		// for a fix, not retry forever or corrupt state; support staff see it in the UI.
		WorkflowPanicPolicy: sdkworker.BlockWorkflow,
	})
	Register(w, acts)
	return w
}

// Register adds every workflow and activity to r.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	RegisterWorkflows(r)
	r.RegisterActivity(acts)
}

// WorkflowRegistry is what both a worker and a WorkflowReplayer offer.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflows adds every workflow to r. The replayer uses it too, so replay tests see
// exactly the workflows production registers, under the same names.
func RegisterWorkflows(r WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.InboundHL7, workflow.RegisterOptions{Name: workflows.InboundHL7Name})
	r.RegisterWorkflowWithOptions(workflows.BulkExport, workflow.RegisterOptions{Name: workflows.BulkExportName})
	r.RegisterWorkflowWithOptions(workflows.BulkExportExpiry, workflow.RegisterOptions{Name: workflows.BulkExportExpiryName})
}
