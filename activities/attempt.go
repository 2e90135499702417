package activities

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
)

// PipelinePolicy is a connector's retry policy for whole pipeline tries, from its settings
// (`retry`: maxAttempts, initialIntervalSeconds, maxIntervalSeconds). Zero fields take the
// workflow's defaults.
type PipelinePolicy struct {
	MaxAttempts            int `json:"maxAttempts,omitempty"`
	InitialIntervalSeconds int `json:"initialIntervalSeconds,omitempty"`
	MaxIntervalSeconds     int `json:"maxIntervalSeconds,omitempty"`
}

// StartTryInput names one try of the pipeline within a workflow run.
type StartTryInput struct {
	MessageID uuid.UUID
	// Try counts the pipeline tries of this run, from 1.
	Try int
}

// StartTryResult is the attempt opened for the try, and the connector's policy.
type StartTryResult struct {
	AttemptID     uuid.UUID
	AttemptNumber int32
	Policy        PipelinePolicy
}

// StartTry marks the message processing and opens the Hl7ProcessingAttempt of this try; a
// retry of the activity gets the same attempt back.
func (a *Activities) StartTry(ctx context.Context, in StartTryInput) (StartTryResult, error) {
	if in.Try < 1 || in.Try > math.MaxInt32 {
		return StartTryResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("try %d is not 1..%d", in.Try, math.MaxInt32), "InvalidTry", nil)
	}
	runTry := int32(in.Try)
	info := activity.GetInfo(ctx)
	var res StartTryResult
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		if _, err := q.Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{ID: in.MessageID, Status: db.Hl7MessageStatusProcessing}); err != nil {
			return fmt.Errorf("mark message processing: %w", err)
		}
		row, err := q.Hl7ProcessingAttemptStartTry(ctx, db.Hl7ProcessingAttemptStartTryParams{
			MessageID: in.MessageID, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, RunTry: runTry,
		})
		if err != nil {
			return fmt.Errorf("open processing attempt: %w", err)
		}
		res.AttemptID, res.AttemptNumber = row.ID, row.AttemptNumber
		settings, err := q.Hl7MessageConnectorSettings(ctx, in.MessageID)
		if err != nil {
			return fmt.Errorf("read connector settings: %w", err)
		}
		s, err := connector.Decode(settings)
		if err != nil {
			// A malformed policy must not block processing: the defaults apply.
			a.logger().Warn("connector retry policy unreadable; using defaults", "message_id", in.MessageID, "error", err)
		}
		if r := s.Retry; r != nil {
			res.Policy = PipelinePolicy{MaxAttempts: r.MaxAttempts, InitialIntervalSeconds: r.InitialIntervalSeconds, MaxIntervalSeconds: r.MaxIntervalSeconds}
		}
		return nil
	})
	if errors.Is(err, db.ErrNotFound) {
		return res, temporal.NewNonRetryableApplicationError("message "+in.MessageID.String()+" does not exist", ErrTypeNotFound, err)
	}
	return res, err
}
