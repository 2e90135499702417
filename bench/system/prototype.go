package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/workflows"
)

// --- the same-run baseline: one no-op local activity ---------------------------------------

const (
	noopTaskQueue  = "bench-noop"
	noopWorkflow   = "BenchNoop"
	protoTaskQueue = "bench-proto"
)

// benchNoop is the baseline workflow: one no-op local activity, then done. Its cost is what the
// server charges for a workflow at all (start, one workflow task, completion, visibility).
func benchNoop(ctx workflow.Context) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteLocalActivity(ctx, noopActivity).Get(ctx, nil)
}

func noopActivity(context.Context) error { return nil }

// --- prototypes of the pipeline, for the workflow owner to weigh -----------------------------

// Pipelines the bench can run. "production" is workflows.InboundHL7 as registered by
// worker.New; the others are prototypes registered here under the same workflow type name on
// their own task queue, running the real activities. They cover the happy path only (no
// pipeline tries, no dead-lettering): enough to measure what the shape of the workflow costs.
const (
	pipeProduction = "production"
	pipeOneUpsert  = "one-upsert"  // production activities, without the redundant first upsert
	pipeLAParseMap = "la-parsemap" // Parse and Map as local activities
	pipeLAAll      = "la-all"      // every step a local activity
)

var pipelines = []string{pipeProduction, pipeOneUpsert, pipeLAParseMap, pipeLAAll}

// protoPipeline is a prototype of InboundHL7: StartTry → Parse → Map → Route → Complete with
// the chosen steps as local activities.
type protoPipeline struct {
	acts *activities.Activities
	// local says which steps run as local activities.
	local map[string]bool
	// upsertProcessing repeats the "processing" search attribute the starter already set.
	upsertProcessing bool
}

func newProto(acts *activities.Activities, pipeline string) (*protoPipeline, error) {
	p := &protoPipeline{acts: acts, local: map[string]bool{}}
	switch pipeline {
	case pipeOneUpsert:
	case pipeLAParseMap:
		p.local["parse"], p.local["map"] = true, true
	case pipeLAAll:
		for _, s := range []string{"start", "parse", "map", "route", "complete"} {
			p.local[s] = true
		}
	default:
		return nil, fmt.Errorf("unknown prototype pipeline %q", pipeline)
	}
	return p, nil
}

func (p *protoPipeline) run(ctx workflow.Context, in workflows.InboundHL7Input) (workflows.InboundHL7Result, error) {
	actCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: &workflows.TryRetryPolicy,
	})
	laCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: &workflows.TryRetryPolicy,
	})
	exec := func(step string, fn, arg, out any) error {
		if p.local[step] {
			return workflow.ExecuteLocalActivity(laCtx, fn, arg).Get(ctx, out)
		}
		return workflow.ExecuteActivity(actCtx, fn, arg).Get(ctx, out)
	}
	if p.upsertProcessing {
		_ = workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchAttrStatus.ValueSet(workflows.StatusProcessing))
	}
	var started activities.StartTryResult
	if err := exec("start", p.acts.StartTry, activities.StartTryInput{MessageID: in.MessageID, Try: 1}, &started); err != nil {
		return workflows.InboundHL7Result{}, err
	}
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: started.AttemptID}
	if err := exec("parse", p.acts.ParseMessage, ref, nil); err != nil {
		return workflows.InboundHL7Result{}, err
	}
	if err := exec("map", p.acts.MapMessage, ref, nil); err != nil {
		return workflows.InboundHL7Result{}, err
	}
	var routed activities.RouteResult
	if err := exec("route", p.acts.RouteBundle, ref, &routed); err != nil {
		return workflows.InboundHL7Result{}, err
	}
	if err := exec("complete", p.acts.CompleteMessage, ref, nil); err != nil {
		return workflows.InboundHL7Result{}, err
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchAttrStatus.ValueSet(workflows.StatusProcessed))
	return workflows.InboundHL7Result{
		Status: workflows.StatusProcessed, AttemptID: started.AttemptID,
		Created: routed.Created, Updated: routed.Updated, Unchanged: routed.Unchanged,
	}, nil
}
