package workflows

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/nhp/interop/activities"
)

// DefaultPipelinePolicy applies where a connector's `retry` settings are silent: 8 tries,
// waiting 10 s, 20 s, 40 s … up to 5 min between them (about 17 minutes in all), so a
// restarting owner is ridden out without a person, and a lasting outage dead-letters.
var DefaultPipelinePolicy = activities.PipelinePolicy{MaxAttempts: 8, InitialIntervalSeconds: 10, MaxIntervalSeconds: 300}

// TryRetryPolicy retries one activity within a try, for blips shorter than a try's wait.
var TryRetryPolicy = temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        10 * time.Second,
	MaximumAttempts:        3,
	NonRetryableErrorTypes: RetryPolicy.NonRetryableErrorTypes,
}

// jitterFraction spreads the waits of many messages failing together by ±20 %, so they do not
// all hit a recovering owner in the same second.
const jitterFraction = 0.2

func (w *inboundHL7) runTries(ctx workflow.Context) (InboundHL7Result, error) {
	policy := DefaultPipelinePolicy
	if !w.local {
		// The starter sets the status at start; runs since versionLocalSteps trust it.
		w.setStatus(ctx, StatusProcessing)
	}
	for try := 1; ; try++ {
		w.step = "start-attempt"
		started, err := w.startTry(ctx, try)
		if err != nil {
			return w.fail(ctx, err)
		}
		w.ref.AttemptID = started.AttemptID
		if try == 1 {
			policy = mergePolicy(policy, started.Policy)
		}
		routed, unmapped, err := w.pipeline(ctx)
		if err == nil {
			w.step = "done"
			status := StatusProcessed
			if unmapped {
				status = StatusUnmapped
			}
			w.setStatus(ctx, status)
			return InboundHL7Result{
				Status: status, AttemptID: w.ref.AttemptID,
				Created: routed.Created, Updated: routed.Updated, Unchanged: routed.Unchanged,
			}, nil
		}
		if isPermanent(err) || try >= policy.MaxAttempts {
			return w.fail(ctx, err)
		}
		if err := w.recordFailedTry(ctx, err); err != nil {
			return InboundHL7Result{}, err
		}
		delay := w.backoff(ctx, policy, try)
		w.step = fmt.Sprintf("waiting %s before try %d of %d", delay, try+1, policy.MaxAttempts)
		if err := workflow.Sleep(ctx, delay); err != nil {
			return InboundHL7Result{}, err
		}
		w.setStatus(ctx, StatusProcessing)
	}
}

// pipeline runs one try: Parse → Map → Route → Complete; since versionUnmapped, a message
// without a mapping goes Parse → Map → CompleteUnmapped (unmapped is then true).
func (w *inboundHL7) pipeline(ctx workflow.Context) (routed activities.RouteResult, unmapped bool, err error) {
	w.step = "parse"
	if err := w.exec(ctx, a.ParseMessage, w.ref).Get(ctx, nil); err != nil {
		return routed, false, err
	}
	w.step = "map"
	var mapped activities.MapResult
	if err := w.exec(ctx, a.MapMessage, w.ref).Get(ctx, &mapped); err != nil {
		return routed, false, err
	}
	if w.unmapped && mapped.Unmapped {
		w.step = "complete"
		return routed, true, w.complete(ctx, a.CompleteUnmapped)
	}
	w.step = "route"
	if err := w.exec(ctx, a.RouteBundle, w.ref).Get(ctx, &routed); err != nil {
		return routed, false, err
	}
	w.step = "complete"
	return routed, false, w.complete(ctx, a.CompleteMessage)
}

// complete records the success of a try with activity (CompleteMessage or CompleteUnmapped):
// through settle since versionDurableOutcome, as a step of the try before.
func (w *inboundHL7) complete(ctx workflow.Context, activity any) error {
	if w.durable {
		return w.settle(ctx, activity, w.ref, nil)
	}
	return w.exec(ctx, activity, w.ref).Get(ctx, nil)
}

// exec runs one step of a try, as a local activity since versionLocalSteps. Either way
// a step is retried by TryRetryPolicy; a local activity's retries are recorded once, with its
// result, and a worker crash mid-step re-runs the step, which every step tolerates.
func (w *inboundHL7) exec(ctx workflow.Context, activity any, arg any) workflow.Future {
	if w.local {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &TryRetryPolicy,
		}), activity, arg)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &TryRetryPolicy,
	}), activity, arg)
}

// startTry opens try's Hl7ProcessingAttempt: through settle since versionDurableStart.
func (w *inboundHL7) startTry(ctx workflow.Context, try int) (activities.StartTryResult, error) {
	var started activities.StartTryResult
	in := activities.StartTryInput{MessageID: w.in.MessageID, Try: try}
	if w.durableStart {
		return started, w.settle(ctx, a.StartTry, in, &started)
	}
	return started, w.exec(ctx, a.StartTry, in).Get(ctx, &started)
}

// recordFailedTry marks the message failed (not dead-lettered) while the next try waits.
func (w *inboundHL7) recordFailedTry(ctx workflow.Context, cause error) error {
	code, detail := classify(cause)
	in := activities.FailInput{MessageRef: w.ref, ErrorCode: code, Detail: w.step + ": " + detail}
	if err := w.record(ctx, in); err != nil {
		return fmt.Errorf("record failed try at %s: %w", w.step, err)
	}
	w.setStatus(ctx, StatusFailed)
	return nil
}

// backoff is the wait after try: initial × 2^(try-1), capped, with jitter drawn once through a
// side effect so that replay sees the same wait.
func (w *inboundHL7) backoff(ctx workflow.Context, p activities.PipelinePolicy, try int) time.Duration {
	base := float64(p.InitialIntervalSeconds) * math.Pow(2, float64(try-1))
	base = math.Min(base, float64(p.MaxIntervalSeconds))
	var jitter float64
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		return (rand.Float64()*2 - 1) * jitterFraction //nolint:gosec // G404: retry jitter spreads load, it guards nothing
	}).Get(&jitter); err != nil {
		jitter = 0
	}
	return time.Duration(base * (1 + jitter) * float64(time.Second)).Round(time.Second)
}

func mergePolicy(def, p activities.PipelinePolicy) activities.PipelinePolicy {
	if p.MaxAttempts > 0 {
		def.MaxAttempts = p.MaxAttempts
	}
	if p.InitialIntervalSeconds > 0 {
		def.InitialIntervalSeconds = p.InitialIntervalSeconds
	}
	if p.MaxIntervalSeconds > 0 {
		def.MaxIntervalSeconds = p.MaxIntervalSeconds
	}
	def.MaxIntervalSeconds = max(def.MaxIntervalSeconds, def.InitialIntervalSeconds)
	return def
}

// isPermanent reports whether retrying cannot help: a non-retryable application error, or one
// whose type the policy lists as non-retryable.
func isPermanent(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return false
	}
	return appErr.NonRetryable() || slices.Contains(RetryPolicy.NonRetryableErrorTypes, appErr.Type())
}
