package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
)

// --- Workflow -------------------------------------------------------------------------------

// a is nil: workflows name activities through it, the worker registers the real struct.
var a *activities.Activities

// InboundHL7 processes one acknowledged message: Parse → Map → Route, recording an
// Hl7ProcessingAttempt and ending the message processed or dead-lettered. Transient failures
// retry with backoff inside the activities' retry policy; permanent ones stop at once.
func InboundHL7(ctx workflow.Context, in InboundHL7Input) (InboundHL7Result, error) {
	w := &inboundHL7{in: in, step: "starting"}
	if err := w.setup(ctx); err != nil {
		return InboundHL7Result{}, err
	}
	return w.run(ctx)
}

type inboundHL7 struct {
	in   InboundHL7Input
	step string
	ref  activities.MessageRef
	// local runs the steps as local activities (versionLocalSteps).
	local bool
	// unmapped ends a message without a mapping as `unmapped` (versionUnmapped).
	unmapped bool
	// durable writes the outcome through settle (versionDurableOutcome).
	durable bool
	// durableStart opens each try through settle (versionDurableStart).
	durableStart bool
}

func (w *inboundHL7) setup(ctx workflow.Context) error {
	if w.in.MessageID == uuid.Nil {
		return temporal.NewNonRetryableApplicationError("input has no message id", "InvalidInput", nil)
	}
	w.ref.MessageID = w.in.MessageID
	return workflow.SetQueryHandler(ctx, QueryProgress, func() (string, error) { return w.step, nil })
}

// RetryPolicy is the default activity retry policy of InboundHL7.
var RetryPolicy = temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    time.Minute,
	MaximumAttempts:    10,
	NonRetryableErrorTypes: []string{
		activities.ErrTypeParse, activities.ErrTypeMapping, activities.ErrTypeRouting,
		activities.ErrTypeOwnerRefused, activities.ErrTypeNotFound,
	},
}

// Versions of the pipeline (change id "pipeline-tries"; one change id, so that a run records
// one version marker and one TemporalChangeVersion upsert):
//   - DefaultVersion: one try per run, activities retried up to RetryPolicy (runOnce);
//   - versionTries: several tries per run, each its own Hl7ProcessingAttempt, the message
//     `failed` while the next try waits on a durable timer (runTries);
//   - versionLocalSteps: the same tries with every step a local activity. The steps touch only
//     our database (and the owners, within seconds), so the round trips through the server's
//     task queues and the history events of each step bought nothing and cost 4× the
//     throughput (bench/system: tune la-all vs default);
//   - versionUnmapped: a message whose type has no mapping (MapResult.Unmapped) skips Route and
//     ends `unmapped` through CompleteUnmapped instead of CompleteMessage;
//   - versionDurableOutcome: the writes of the outcome (CompleteMessage, CompleteUnmapped,
//     FailMessage) retry until they land (settle), so a database stall delays the end of a
//     run but never ends it with the message `processing`; a completion that has not landed
//     yet is no longer a failed try;
//   - versionDurableStart: opening a try (StartTry) retries until it lands too. Before, a
//     StartTry that timed out three times (a database saturated by a backlog after a crash)
//     dead-lettered a message that had nothing wrong with it.
const versionPipelineTries = "pipeline-tries"

const (
	versionTries      workflow.Version = 1
	versionLocalSteps workflow.Version = 2
	versionUnmapped   workflow.Version = 3

	versionDurableOutcome workflow.Version = 4
	versionDurableStart   workflow.Version = 5
)

func (w *inboundHL7) run(ctx workflow.Context) (InboundHL7Result, error) {
	v := workflow.GetVersion(ctx, versionPipelineTries, workflow.DefaultVersion, versionDurableStart)
	if v == workflow.DefaultVersion {
		return w.runOnce(ctx)
	}
	w.local = v >= versionLocalSteps
	w.unmapped = v >= versionUnmapped
	w.durable = v >= versionDurableOutcome
	w.durableStart = v >= versionDurableStart
	return w.runTries(ctx)
}

// runOnce is the pipeline of runs started before versionPipelineTries; kept so they replay.
func (w *inboundHL7) runOnce(ctx workflow.Context) (InboundHL7Result, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &RetryPolicy,
	})
	w.setStatus(ctx, StatusProcessing)

	w.step = "start-attempt"
	var started activities.StartAttemptResult
	if err := workflow.ExecuteActivity(ctx, a.StartAttempt, w.in.MessageID).Get(ctx, &started); err != nil {
		return w.fail(ctx, err)
	}
	w.ref.AttemptID = started.AttemptID

	w.step = "parse"
	var parsed activities.ParseResult
	if err := workflow.ExecuteActivity(ctx, a.ParseMessage, w.ref).Get(ctx, &parsed); err != nil {
		return w.fail(ctx, err)
	}
	w.step = "map"
	var mapped activities.MapResult
	if err := workflow.ExecuteActivity(ctx, a.MapMessage, w.ref).Get(ctx, &mapped); err != nil {
		return w.fail(ctx, err)
	}
	w.step = "route"
	var routed activities.RouteResult
	if err := workflow.ExecuteActivity(ctx, a.RouteBundle, w.ref).Get(ctx, &routed); err != nil {
		return w.fail(ctx, err)
	}
	w.step = "complete"
	if err := workflow.ExecuteActivity(ctx, a.CompleteMessage, w.ref).Get(ctx, nil); err != nil {
		return w.fail(ctx, err)
	}
	w.step = "done"
	w.setStatus(ctx, StatusProcessed)
	return InboundHL7Result{
		Status: StatusProcessed, AttemptID: w.ref.AttemptID,
		Created: routed.Created, Updated: routed.Updated, Unchanged: routed.Unchanged,
	}, nil
}

// fail dead-letters the message: the error is non-retryable or the activity's retries are spent.
// The run then fails with the cause, so the Temporal UI shows it as failed.
func (w *inboundHL7) fail(ctx workflow.Context, cause error) (InboundHL7Result, error) {
	failedStep := w.step
	w.step = "dead-letter"
	code, detail := classify(cause)
	in := activities.FailInput{MessageRef: w.ref, ErrorCode: code, Detail: failedStep + ": " + detail, DeadLetter: true}
	if err := w.record(ctx, in); err != nil {
		return InboundHL7Result{}, fmt.Errorf("record dead letter after %s failed: %w", failedStep, err)
	}
	w.setStatus(ctx, StatusDeadLettered)
	w.step = "dead-lettered"
	return InboundHL7Result{Status: StatusDeadLettered, AttemptID: w.ref.AttemptID}, cause
}

// record runs FailMessage. Recording an outcome must outlive database outages: since
// versionDurableOutcome it is written through settle; before, it retried without a limit on
// attempts, but a local activity's retries end at its schedule-to-close timeout, which
// defaults to its start-to-close timeout (30 s), so a longer stall failed the run with the
// message left `processing` (kept so that those runs replay).
func (w *inboundHL7) record(ctx workflow.Context, in activities.FailInput) error {
	if w.durable {
		return w.settle(ctx, a.FailMessage, in, nil)
	}
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute}
	if w.local {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry,
		}), a.FailMessage, in).Get(ctx, nil)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry,
	}), a.FailMessage, in).Get(ctx, nil)
}

// OutcomeRetryPolicy retries a write of a run's outcome (CompleteMessage, CompleteUnmapped,
// FailMessage) within one round of settle: no limit on attempts, backoff capped at a minute.
// The writes are idempotent, so repeating one that landed without its answer is harmless.
var OutcomeRetryPolicy = temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{activities.ErrTypeNotFound},
}

// outcomeRound is how long one round of settle retries before the run waits outcomeWait on
// a durable timer and starts another: a local activity's retries live in one workflow task,
// and the timer between rounds keeps a long outage from holding it.
const (
	outcomeRound = 10 * time.Minute
	outcomeWait  = time.Minute
)

// settle runs a bookkeeping write (an outcome, or opening a try) with activity until it lands,
// decoding its result into result unless that is nil: a run never ends while its message's
// status still says `processing`, and a database that is slow or away delays a message
// instead of dead-lettering it. Only a permanent error (the message no longer exists) or the
// run's cancellation stops it. The writes are idempotent.
func (w *inboundHL7) settle(ctx workflow.Context, activity, arg, result any) error {
	opts := workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: outcomeRound,
		RetryPolicy:            &OutcomeRetryPolicy,
	}
	for {
		err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), activity, arg).Get(ctx, result)
		if err == nil || isPermanent(err) || ctx.Err() != nil {
			return err
		}
		if err := workflow.Sleep(ctx, outcomeWait); err != nil {
			return err
		}
	}
}

// classify returns the application error type (or "Timeout"/"Unknown") and the root cause in
// one sentence, as the activity worded it. ApplicationError.Error() is not that sentence: it
// appends "(type: …, retryable: …)" and then its cause, converted by Temporal into an
// application error of its own, so one failure read "… retryable: false): … retryable: true".
func classify(err error) (code, detail string) {
	// The ActivityError around the cause only names the activity ("activity error (type: …,
	// scheduledEventID: …)"); the step already says which one failed.
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) && actErr.Unwrap() != nil {
		err = actErr.Unwrap()
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type(), appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "Timeout", "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "Canceled", "canceled"
	}
	return "Unknown", err.Error()
}

func (w *inboundHL7) setStatus(ctx workflow.Context, status string) {
	// Best effort: a search attribute that cannot be upserted must not fail processing.
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrStatus.ValueSet(status))
}
