package inbound

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/outbox"
	"github.com/nhp/interop/workflows"
)

// Error codes (last_error_code) of messages settled without their run.
const (
	// ErrCodeStartRefused: Temporal refused to start the message's workflow.
	ErrCodeStartRefused = "WorkflowStartRefused"
	// ErrCodeRunClosed: the run ended (failed, terminated, timed out, canceled) without
	// recording the message's outcome.
	ErrCodeRunClosed = "WorkflowClosed"
)

// reconcile is one pass of the reconciler: it finds messages not done (pending, processing,
// failed) whose status has not moved for ReconcileAge and settles those whose run is closed or
// missing, by the run's stored workflow_id:
//   - no run (NotFound, or an id Temporal will not even look up): the run is (re)started; a
//     start Temporal refuses dead-letters the message (Starter.start);
//   - a run still open: nothing to do, it will write the outcome itself;
//   - a run completed while the message does not say so (its last write was lost): its
//     result's status (processed or unmapped) is recorded;
//   - a run that failed, was terminated, timed out or was canceled before recording the
//     outcome: the message is dead-lettered with the reason.
//
// A pass checks at most ReconcileBatch messages, going on after the previous pass's cursor,
// and stops when Temporal is unreachable. Settling is conditional on the message's status not
// having moved since it was read, so a pass racing a run's own write, or another replica's
// pass, changes nothing: passes are idempotent.
//
// It runs in the gateway, beside the sweeper: starting runs is the gateway's (the worker only
// executes them), and the reconciler needs the same start path, its classification of errors
// and the same Temporal client.
func (s *Starter) reconcile(ctx context.Context) {
	s.init()
	rows, err := s.Queries.Hl7MessageListUnsettled(ctx, db.Hl7MessageListUnsettledParams{
		ChangedBefore: time.Now().Add(-s.ReconcileAge), AfterAt: s.reconcileAfter.at, AfterID: s.reconcileAfter.id,
		MaxRows: clampInt32(s.ReconcileBatch),
	})
	if err != nil {
		s.Logger.Warn("reconcile messages with their runs", "error", err)
		return
	}
	settled := 0
	for _, m := range rows {
		if ctx.Err() != nil {
			return
		}
		done, stop := s.reconcileOne(ctx, m)
		if stop {
			s.Logger.Warn("reconcile stopped early; Temporal is unreachable", "checked", settled)
			return
		}
		if done {
			settled++
		}
		s.reconcileAfter = cursor{at: m.ReceivedAt, id: m.ID}
	}
	if len(rows) < s.ReconcileBatch {
		s.reconcileAfter = cursor{}
	}
	if settled > 0 {
		s.Logger.Info("reconciled messages with their runs", "checked", len(rows), "settled", settled)
	}
}

// reconcileOne settles one message if its run is closed or missing: done says it did, stop
// that Temporal is unreachable.
func (s *Starter) reconcileOne(ctx context.Context, m db.Hl7MessageListUnsettledRow) (done, stop bool) {
	log := s.Logger.With("message_id", m.ID, "workflow_id", m.WorkflowID, "status", m.Status)
	seen := m.StatusChangedAt
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	desc, err := s.Client.DescribeWorkflowExecution(dctx, m.WorkflowID, "")
	cancel()
	var (
		notFound *serviceerror.NotFound
		invalid  *serviceerror.InvalidArgument
	)
	switch {
	case errors.As(err, &notFound), errors.As(err, &invalid):
		switch s.start(ctx, StartRequest{WorkflowID: m.WorkflowID, Input: workflows.InboundHL7Input{
			MessageID: m.ID, TenantID: m.TenantID, ConnectorID: m.ConnectorID, MessageType: workflows.MessageType(m.MessageCode, m.TriggerEvent),
		}}, &seen) {
		case startOK:
			log.Warn("reconciler: the message had no workflow run; started one")
			s.countReconciled("restarted")
			return true, false
		case startExisting:
			// Started by the sweeper or the ingest path since the describe: nothing to settle.
			return false, false
		case startRefused:
			s.countReconciled(string(db.Hl7MessageStatusDeadLettered))
			return true, false
		case startUnavailable:
			return false, true
		default:
			return false, false
		}
	case err != nil:
		if classifyStart(err) == startUnavailable {
			return false, true
		}
		log.Warn("reconciler: describe the message's run", "error", err)
		return false, false
	}
	info := desc.GetWorkflowExecutionInfo()
	runID := info.GetExecution().GetRunId()
	st := settlement{MessageID: m.ID, Seen: &seen, Status: db.Hl7MessageStatusDeadLettered, Code: ErrCodeRunClosed}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var res workflows.InboundHL7Result
		if err := s.Client.GetWorkflow(ctx, m.WorkflowID, runID).Get(ctx, &res); err != nil {
			log.Warn("reconciler: read the result of a completed run", "run_id", runID, "error", err)
			return false, classifyStart(err) == startUnavailable
		}
		switch res.Status {
		case workflows.StatusProcessed, workflows.StatusUnmapped:
			st.Status, st.Code = db.Hl7MessageStatus(res.Status), ""
		default:
			st.Reason = fmt.Sprintf("Its workflow run %s completed with status %q without recording the outcome.", runID, res.Status)
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		st.Reason = fmt.Sprintf("Its workflow run %s failed before recording the outcome: %s.", runID, s.runFailure(ctx, m.WorkflowID, runID))
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		st.Reason = fmt.Sprintf("Its workflow run %s was terminated before recording the outcome.", runID)
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		st.Reason = fmt.Sprintf("Its workflow run %s timed out before recording the outcome.", runID)
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		st.Reason = fmt.Sprintf("Its workflow run %s was canceled before recording the outcome.", runID)
	default:
		return false, false // running, or continued as new: its run will write the outcome
	}
	ok, err := s.settle(ctx, st)
	if err != nil {
		log.Warn("reconciler: settle a message whose run is closed", "run_id", runID, "error", err)
		return false, false
	}
	if ok {
		log.Warn("reconciler: settled a message its closed run left unsettled", "run_id", runID, "settled_as", st.Status, "reason", st.Reason)
		s.countReconciled(string(st.Status))
	}
	return ok, false
}

// runFailure is the cause a failed run ended with, in one sentence, for the dead letter.
func (s *Starter) runFailure(ctx context.Context, workflowID, runID string) string {
	err := s.Client.GetWorkflow(ctx, workflowID, runID).Get(ctx, nil)
	if err == nil {
		return "no cause given"
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg := appErr.Message()
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return msg
	}
	return err.Error()
}

// settlement is how a message is settled without its run.
type settlement struct {
	MessageID uuid.UUID
	// Seen is the status_changed_at the message was read with; nil settles it whenever it is
	// still pending, processing or failed.
	Seen   *time.Time
	Status db.Hl7MessageStatus
	Code   string
	// Reason is last_error: one sentence for support staff.
	Reason string
}

// settle writes a settlement as the pipeline's own outcome writes would, in one transaction:
// the message's status and error, its running attempts closed, and its domain events
// (Hl7MessageFailed and Hl7MessageDeadLettered for a dead letter, one Hl7MessageProcessed per
// linked resource for processed). It reports false, writing nothing, when the message is done
// already or its status moved since it was read.
func (s *Starter) settle(ctx context.Context, st settlement) (bool, error) {
	if s.Pool == nil {
		return false, errors.New("settle message: the starter has no database pool")
	}
	settled := false
	err := db.InTx(ctx, s.Pool, func(q *db.Queries) error {
		row, err := q.Hl7MessageSettle(ctx, db.Hl7MessageSettleParams{
			ID: st.MessageID, SeenChangedAt: st.Seen, Status: st.Status, LastErrorCode: st.Code, LastError: st.Reason,
		})
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("settle message: %w", err)
		}
		settled = true
		attempt := db.Hl7AttemptStatusSucceeded
		if st.Status == db.Hl7MessageStatusDeadLettered {
			attempt = db.Hl7AttemptStatusFailed
		}
		if err := q.Hl7ProcessingAttemptFinishRunning(ctx, db.Hl7ProcessingAttemptFinishRunningParams{
			MessageID: st.MessageID, Status: attempt, ErrorCode: st.Code, ErrorDetail: st.Reason,
		}); err != nil {
			return fmt.Errorf("close running attempts: %w", err)
		}
		id := st.MessageID.String()
		switch st.Status {
		case db.Hl7MessageStatusDeadLettered:
			if err := outbox.Emit(ctx, q, row.TenantID, outbox.Hl7MessageFailed, id, map[string]any{
				"messageId": st.MessageID, "errorCode": st.Code,
			}); err != nil {
				return err
			}
			return outbox.Emit(ctx, q, row.TenantID, outbox.Hl7MessageDeadLettered, id, map[string]any{"messageId": st.MessageID})
		case db.Hl7MessageStatusProcessed:
			links, err := q.Hl7ResourceLinkListByMessage(ctx, st.MessageID)
			if err != nil {
				return fmt.Errorf("list resource links: %w", err)
			}
			for _, l := range links {
				if err := outbox.Emit(ctx, q, row.TenantID, outbox.Hl7MessageProcessed, id, map[string]any{
					"messageId": st.MessageID, "resourceType": l.ResourceType, "resourceId": l.ResourceID, "action": l.Action,
				}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return settled, err
}

func (s *Starter) countReconciled(outcome string) {
	if s.Metrics != nil && s.Metrics.Reconciled != nil {
		s.Metrics.Reconciled.WithLabelValues(outcome).Inc()
	}
}
