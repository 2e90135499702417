package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/workflows"
)

var a *activities.Activities

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	return env
}

func input() workflows.InboundHL7Input {
	return workflows.InboundHL7Input{MessageID: uuid.New(), TenantID: "t1", ConnectorID: uuid.New(), MessageType: "ADT^A01"}
}

func TestInboundHL7Processes(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil).Once()
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{MessageType: "ADT^A01^ADT_A01"}, nil).Once()
	env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{Entries: 1}, nil).Once()
	env.OnActivity(a.RouteBundle, mock.Anything, ref).Return(activities.RouteResult{Created: 1}, nil).Once()
	env.OnActivity(a.CompleteMessage, mock.Anything, ref).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.InboundHL7Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.InboundHL7Result{Status: workflows.StatusProcessed, AttemptID: attempt, Created: 1}, res)
	env.AssertExpectations(t)

	progress, err := env.QueryWorkflow(workflows.QueryProgress)
	require.NoError(t, err)
	var step string
	require.NoError(t, progress.Get(&step))
	require.Equal(t, "done", step)
}

// An unparseable message is dead-lettered at once: no retries, no Map, no Route.
func TestInboundHL7DeadLettersPermanentErrors(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil)
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{},
		temporal.NewNonRetryableApplicationError("no MSH segment", activities.ErrTypeParse, nil)).Once()
	var failed activities.FailInput
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = args.Get(1).(activities.FailInput)
	}).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &appErr))
	require.Equal(t, activities.ErrTypeParse, appErr.Type())
	require.Equal(t, ref, failed.MessageRef)
	require.True(t, failed.DeadLetter)
	require.Equal(t, activities.ErrTypeParse, failed.ErrorCode)
	require.Contains(t, failed.Detail, "parse: ")
	env.AssertExpectations(t)
}

// A transient failure is retried by policy, and the message completes when it clears.
func TestInboundHL7RetriesTransientErrors(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil)
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{}, nil)
	env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{Entries: 1}, nil)
	env.OnActivity(a.RouteBundle, mock.Anything, ref).Return(activities.RouteResult{}, errors.New("owner answered 503")).Times(2)
	env.OnActivity(a.RouteBundle, mock.Anything, ref).Return(activities.RouteResult{Updated: 1}, nil).Once()
	env.OnActivity(a.CompleteMessage, mock.Anything, ref).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.NoError(t, env.GetWorkflowError())
	var res workflows.InboundHL7Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.StatusProcessed, res.Status)
	require.Equal(t, 1, res.Updated)
	env.AssertExpectations(t)
}

// A try whose activity retries are spent marks the message failed, waits on a timer, and tries
// again as a new attempt; the message completes when the owner is back.
func TestInboundHL7TriesAgainAfterAWait(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	first, second := uuid.New(), uuid.New()
	ref1 := activities.MessageRef{MessageID: in.MessageID, AttemptID: first}
	ref2 := activities.MessageRef{MessageID: in.MessageID, AttemptID: second}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: first, AttemptNumber: 1}, nil).Once()
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 2}).Return(activities.StartTryResult{AttemptID: second, AttemptNumber: 2}, nil).Once()
	env.OnActivity(a.ParseMessage, mock.Anything, mock.Anything).Return(activities.ParseResult{}, nil)
	env.OnActivity(a.MapMessage, mock.Anything, mock.Anything).Return(activities.MapResult{Entries: 1}, nil)
	env.OnActivity(a.RouteBundle, mock.Anything, ref1).Return(activities.RouteResult{}, errors.New("owner answered 503")).
		Times(int(workflows.TryRetryPolicy.MaximumAttempts))
	env.OnActivity(a.RouteBundle, mock.Anything, ref2).Return(activities.RouteResult{Created: 1}, nil).Once()
	env.OnActivity(a.CompleteMessage, mock.Anything, ref2).Return(nil).Once()
	var failed []activities.FailInput
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = append(failed, args.Get(1).(activities.FailInput))
	}).Return(nil)

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.NoError(t, env.GetWorkflowError())
	var res workflows.InboundHL7Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.StatusProcessed, res.Status)
	require.Equal(t, second, res.AttemptID)
	require.Len(t, failed, 1)
	require.False(t, failed[0].DeadLetter, "a try that will be retried leaves the message failed, not dead-lettered")
	require.Equal(t, first, failed[0].AttemptID)
	require.Contains(t, failed[0].Detail, "route: ")
	env.AssertExpectations(t)
}

// Tries are bounded by the connector's policy: after the last one the message is dead-lettered.
func TestInboundHL7DeadLettersWhenTriesAreSpent(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	policy := activities.PipelinePolicy{MaxAttempts: 3, InitialIntervalSeconds: 60, MaxIntervalSeconds: 60}
	for try := 1; try <= 3; try++ {
		env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: try}).
			Return(activities.StartTryResult{AttemptID: uuid.New(), AttemptNumber: int32(try), Policy: policy}, nil).Once()
	}
	env.OnActivity(a.ParseMessage, mock.Anything, mock.Anything).Return(activities.ParseResult{}, nil)
	env.OnActivity(a.MapMessage, mock.Anything, mock.Anything).Return(activities.MapResult{Entries: 1}, nil)
	env.OnActivity(a.RouteBundle, mock.Anything, mock.Anything).Return(activities.RouteResult{}, errors.New("connection refused"))
	var failed []activities.FailInput
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = append(failed, args.Get(1).(activities.FailInput))
	}).Return(nil)
	start := env.Now()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.Error(t, env.GetWorkflowError())
	require.Len(t, failed, 3)
	require.False(t, failed[0].DeadLetter)
	require.False(t, failed[1].DeadLetter)
	require.True(t, failed[2].DeadLetter)
	// Two waits of 60 s ± 20 % jitter sit between the three tries.
	waited := env.Now().Sub(start)
	require.GreaterOrEqual(t, waited, 96*time.Second)
	require.LessOrEqual(t, waited, 150*time.Second)
	env.AssertExpectations(t)
}

func TestRejectsInputWithoutMessageID(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.ExecuteWorkflow(workflows.InboundHL7, workflows.InboundHL7Input{TenantID: "t1"})
	require.ErrorContains(t, env.GetWorkflowError(), "no message id")
}

func TestWorkflowIDRoundTrip(t *testing.T) {
	t.Parallel()
	keys := []workflows.MessageKey{
		{TenantID: "default", ConnectorID: uuid.New(), SendingApp: "ADTApp", ControlID: "MSG00001"},
		{TenantID: "t-2", ConnectorID: uuid.New(), SendingApp: "EPIC^1.2.840:x^ISO", ControlID: "a:b%c"},
		{TenantID: "t", ConnectorID: uuid.New(), SendingApp: "", ControlID: "1"},
		{TenantID: "urn:tenant:3", ConnectorID: uuid.New(), SendingApp: "A", ControlID: "dup-1"},
	}
	for _, k := range keys {
		id := workflows.InboundHL7WorkflowID(k)
		got, dup, err := workflows.ParseInboundHL7WorkflowID(id)
		require.NoError(t, err, id)
		require.Equal(t, k, got, id)
		require.Zero(t, dup, id)

		id = workflows.InboundHL7DuplicateWorkflowID(k, 7)
		got, dup, err = workflows.ParseInboundHL7WorkflowID(id)
		require.NoError(t, err, id)
		require.Equal(t, k, got, id)
		require.Equal(t, 7, dup, id)
	}
	require.Equal(t, "HL7Message:default:"+keys[0].ConnectorID.String()+":ADTApp:MSG00001", workflows.InboundHL7WorkflowID(keys[0]),
		"ids stay readable in the Temporal UI")
	c := uuid.New().String()
	for _, bad := range []string{"", "BulkExport:t:1", "HL7Message:t:not-a-uuid:a:b", "HL7Message:t:a:b",
		"HL7Message:t:" + c + ":a:b:dup-0", "HL7Message:t:" + c + ":a:b:dup-x", "HL7Message:t:" + c + ":a:b:c", "HL7Message:t:" + c + ":a%zz:b"} {
		_, _, err := workflows.ParseInboundHL7WorkflowID(bad)
		require.Error(t, err, bad)
	}
}

func TestInboundStartOptions(t *testing.T) {
	t.Parallel()
	in := workflows.InboundHL7Input{MessageID: uuid.New(), TenantID: "t1", ConnectorID: uuid.New(), MessageType: "ADT^A01", ReprocessOf: "run-1"}
	first := workflows.InboundHL7StartOptions("id-1", "q", in)
	require.Equal(t, "id-1", first.ID)
	require.Equal(t, "q", first.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, first.WorkflowIDConflictPolicy, "a repeated start finds the running run")
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, first.WorkflowIDReusePolicy, "a closed run is never re-run by the ingest path")
	require.False(t, first.WorkflowExecutionErrorWhenAlreadyStarted)

	again := workflows.InboundHL7ReprocessOptions("id-1", "q", in)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, again.WorkflowIDReusePolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, again.WorkflowIDConflictPolicy)
	require.True(t, again.WorkflowExecutionErrorWhenAlreadyStarted, "a second reprocess of an open run must be refused, not handed the open run")
	require.Equal(t, "run-1", again.Memo["reprocessOf"])

	for _, o := range []client.StartWorkflowOptions{first, again} {
		sa := o.TypedSearchAttributes
		tenant, _ := sa.GetKeyword(workflows.SearchAttrTenant)
		conn, _ := sa.GetKeyword(workflows.SearchAttrConnector)
		typ, _ := sa.GetKeyword(workflows.SearchAttrMessageType)
		status, _ := sa.GetKeyword(workflows.SearchAttrStatus)
		require.Equal(t, []string{"t1", in.ConnectorID.String(), "ADT^A01", workflows.StatusProcessing}, []string{tenant, conn, typ, status})
	}
}

// A message whose type has no mapping completes as unmapped: no Route, no CompleteMessage, no
// retry and no dead letter.
func TestInboundHL7EndsUnmapped(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil).Once()
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{MessageType: "DFT^P03^DFT_P03"}, nil).Once()
	env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{Notes: 1, Unmapped: true}, nil).Once()
	env.OnActivity(a.CompleteUnmapped, mock.Anything, ref).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.InboundHL7Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.InboundHL7Result{Status: workflows.StatusUnmapped, AttemptID: attempt}, res)
	env.AssertExpectations(t)
}

// The dead letter's detail is the root cause in one sentence: no "(type: …, retryable: …)"
// and no repetition of the cause that Temporal's error chain appends.
func TestInboundHL7DeadLetterDetailIsOneSentence(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, mock.Anything).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil)
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{}, nil)
	cause := errors.New("unmappable message: PID-3: no identifier value")
	env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{},
		temporal.NewNonRetryableApplicationError("PID-3: no identifier value", activities.ErrTypeMapping, cause))
	var failed activities.FailInput
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = args.Get(1).(activities.FailInput)
	}).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.Error(t, env.GetWorkflowError())
	require.True(t, failed.DeadLetter)
	require.Equal(t, activities.ErrTypeMapping, failed.ErrorCode)
	require.Equal(t, "map: PID-3: no identifier value", failed.Detail)
}

// A transient error's retries spent: the detail is the activity's own error text, once.
func TestInboundHL7TransientDetailIsOneSentence(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	env.OnActivity(a.StartTry, mock.Anything, mock.Anything).Return(activities.StartTryResult{AttemptID: uuid.New(), AttemptNumber: 1,
		Policy: activities.PipelinePolicy{MaxAttempts: 1}}, nil)
	env.OnActivity(a.ParseMessage, mock.Anything, mock.Anything).Return(activities.ParseResult{}, nil)
	env.OnActivity(a.MapMessage, mock.Anything, mock.Anything).Return(activities.MapResult{Entries: 1}, nil)
	env.OnActivity(a.RouteBundle, mock.Anything, mock.Anything).Return(activities.RouteResult{},
		fmt.Errorf("owner http://owner.example: %w", errors.New("connection refused")))
	var failed activities.FailInput
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		failed = args.Get(1).(activities.FailInput)
	}).Return(nil).Once()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.Error(t, env.GetWorkflowError())
	require.True(t, failed.DeadLetter)
	require.Equal(t, "route: owner http://owner.example: connection refused", failed.Detail)
	require.NotContains(t, failed.Detail, "retryable")
}

// requireValidWorkflowID checks what Temporal needs of a workflow id a sender's bytes went
// into: printable ASCII, and far below the server's limit.maxIDLength (1000 bytes by default;
// internal/temporaldev keeps the default).
func requireValidWorkflowID(t testing.TB, id string) {
	t.Helper()
	require.NotEmpty(t, id)
	require.LessOrEqual(t, len(id), 512, "workflow id of %d bytes", len(id))
	for i := range len(id) {
		require.True(t, id[i] >= 0x20 && id[i] < 0x7f, "byte %d of %q is not printable ASCII", i, id)
	}
}

// Whatever a sender puts in MSH-3 and MSH-10 (non-ASCII, control characters, 10,000
// characters), the workflow id is one Temporal accepts, and still names the message.
func TestWorkflowIDOfUntrustedParts(t *testing.T) {
	t.Parallel()
	conn := uuid.New()
	long := strings.Repeat("x", 1000)
	keys := []workflows.MessageKey{
		{TenantID: "t", ConnectorID: conn, SendingApp: "LAB", ControlID: "été-1"},
		{TenantID: "t", ConnectorID: conn, SendingApp: "LAB", ControlID: long},
		{TenantID: "t", ConnectorID: conn, SendingApp: strings.Repeat("A", 10000), ControlID: "1"},
		{TenantID: "t", ConnectorID: conn, SendingApp: "LAB\x01\x7f\t", ControlID: "a b\r\n"},
		{TenantID: strings.Repeat("é", 300), ConnectorID: conn, SendingApp: strings.Repeat("€", 5000), ControlID: strings.Repeat("%:", 2000)},
	}
	seen := map[string]bool{}
	for _, k := range keys {
		for _, id := range []string{workflows.InboundHL7WorkflowID(k), workflows.InboundHL7DuplicateWorkflowID(k, math.MaxInt)} {
			requireValidWorkflowID(t, id)
			require.False(t, seen[id], "two keys share %q", id)
			seen[id] = true
			require.True(t, strings.HasPrefix(id, "HL7Message:"+k.TenantID[:min(len(k.TenantID), 1)]) || strings.HasPrefix(id, "HL7Message:%"), id)
		}
	}
	// Readable where it can be: a short non-ASCII control id is percent-encoded, not hashed.
	got, dup, err := workflows.ParseInboundHL7WorkflowID(workflows.InboundHL7WorkflowID(keys[0]))
	require.NoError(t, err)
	require.Zero(t, dup)
	require.Equal(t, keys[0], got)
	require.Equal(t, "HL7Message:t:"+conn.String()+":LAB:%C3%A9t%C3%A9-1", workflows.InboundHL7WorkflowID(keys[0]))
	// Long parts keep a readable prefix and are shortened with a hash of the whole part;
	// keys differing only past the prefix get different ids.
	k2 := keys[1]
	k2.ControlID = long[:999] + "y"
	require.NotEqual(t, workflows.InboundHL7WorkflowID(keys[1]), workflows.InboundHL7WorkflowID(k2))
	require.Contains(t, workflows.InboundHL7WorkflowID(keys[1]), ":LAB:xxxxxxxx")
}

// FuzzInboundHL7WorkflowID: arbitrary bytes in the tenant, MSH-3 and MSH-10 always make a
// valid id, which the inverse reads back (or says that a part is hashed).
func FuzzInboundHL7WorkflowID(f *testing.F) {
	f.Add("default", "ADTApp", "MSG00001", 1)
	f.Add("t", "été", "été-1", 2)
	f.Add("a:b", "%zz", "%~00", 0)
	f.Add("t", strings.Repeat("A", 10000), strings.Repeat("1", 1000), math.MaxInt)
	f.Add("\x00\xff", "\xc3", "\r\n\t", 7)
	f.Add("t", strings.Repeat("%", 43)+"x", strings.Repeat("é", 40), 3)
	conn := uuid.New()
	f.Fuzz(func(t *testing.T, tenant, app, ctl string, n int) {
		k := workflows.MessageKey{TenantID: tenant, ConnectorID: conn, SendingApp: app, ControlID: ctl}
		id := workflows.InboundHL7WorkflowID(k)
		requireValidWorkflowID(t, id)
		require.True(t, workflows.ValidInboundHL7WorkflowID(id))
		wantDup := 0
		if n > 0 {
			id = workflows.InboundHL7DuplicateWorkflowID(k, n)
			requireValidWorkflowID(t, id)
			require.True(t, workflows.ValidInboundHL7WorkflowID(id))
			wantDup = n
		}
		got, dup, err := workflows.ParseInboundHL7WorkflowID(id)
		require.Equal(t, wantDup, dup, id)
		require.Equal(t, conn, got.ConnectorID, id)
		if errors.Is(err, workflows.ErrHashedIDPart) {
			require.True(t, strings.Contains(id, "%~"), id)
			return
		}
		require.NoError(t, err, id)
		require.Equal(t, k, got, id)
	})
}

// MSH-9 is the sender's: a long one must not make the server refuse the start's search
// attributes (2 KiB per value by default).
func TestInboundStartOptionsBoundSearchAttributes(t *testing.T) {
	t.Parallel()
	in := input()
	in.MessageType = strings.Repeat("é", 5000)
	opts := workflows.InboundHL7StartOptions("id", "q", in)
	v, ok := opts.TypedSearchAttributes.GetKeyword(workflows.SearchAttrMessageType)
	require.True(t, ok)
	require.LessOrEqual(t, len(v), 100)
	require.True(t, utf8.ValidString(v))
	in.MessageType = "ADT^A01"
	v, _ = workflows.InboundHL7StartOptions("id", "q", in).TypedSearchAttributes.GetKeyword(workflows.SearchAttrMessageType)
	require.Equal(t, "ADT^A01", v)
}

// A database stall longer than any one activity's timeout: the dead letter is written when
// the database is back, and the run never ends with the message still `processing`.
func TestInboundHL7RecordsTheDeadLetterThroughAStall(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil)
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{},
		temporal.NewNonRetryableApplicationError("no MSH segment", activities.ErrTypeParse, nil)).Once()
	stalled := 0
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.FailInput) error {
		if stalled++; stalled <= 30 { // 1+2+4+…+60 s of backoff: half an hour of outage
			return errors.New("connect: connection refused")
		}
		return nil
	})
	start := env.Now()

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(env.GetWorkflowError(), &appErr), "%v", env.GetWorkflowError())
	require.Equal(t, activities.ErrTypeParse, appErr.Type(), "the run ends with its cause, not with the stall")
	require.Equal(t, 31, stalled, "FailMessage retried until it landed")
	require.Greater(t, env.Now().Sub(start), 20*time.Minute, "longer than one round of retries")
}

// The same for a success: CompleteMessage failing through a stall is retried until it lands,
// and the message is not routed again nor dead-lettered for it.
func TestInboundHL7RecordsCompletionThroughAStall(t *testing.T) {
	t.Parallel()
	for _, unmapped := range []bool{false, true} {
		t.Run(fmt.Sprint("unmapped=", unmapped), func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			in := input()
			attempt := uuid.New()
			ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
			env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil).Once()
			env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{}, nil).Once()
			env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{Entries: 1, Unmapped: unmapped}, nil).Once()
			if !unmapped {
				env.OnActivity(a.RouteBundle, mock.Anything, ref).Return(activities.RouteResult{Created: 1}, nil).Once()
			}
			stalled := 0
			complete := func(_ context.Context, _ activities.MessageRef) error {
				if stalled++; stalled <= 12 {
					return errors.New("connect: connection refused")
				}
				return nil
			}
			if unmapped {
				env.OnActivity(a.CompleteUnmapped, mock.Anything, ref).Return(complete)
			} else {
				env.OnActivity(a.CompleteMessage, mock.Anything, ref).Return(complete)
			}
			failed := countFailures(env)
			env.ExecuteWorkflow(workflows.InboundHL7, in)
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			require.Zero(t, *failed, "a write that did not land yet is not a failed try")
			var res workflows.InboundHL7Result
			require.NoError(t, env.GetWorkflowResult(&res))
			want := workflows.StatusProcessed
			if unmapped {
				want = workflows.StatusUnmapped
			}
			require.Equal(t, want, res.Status)
			require.Equal(t, 13, stalled)
			env.AssertExpectations(t)
		})
	}
}

// Opening a try through a saturated or stalled database (StartTry timing out again and again,
// as after a crash with thousands of messages to recover): the message waits and is processed,
// never dead-lettered for it. A StartTry that fails permanently (the message is gone) still
// ends the run at once.
func TestInboundHL7OpensATryThroughAStall(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	in := input()
	attempt := uuid.New()
	ref := activities.MessageRef{MessageID: in.MessageID, AttemptID: attempt}
	stalled := 0
	env.OnActivity(a.StartTry, mock.Anything, activities.StartTryInput{MessageID: in.MessageID, Try: 1}).Return(
		func(context.Context, activities.StartTryInput) (activities.StartTryResult, error) {
			if stalled++; stalled <= 20 {
				return activities.StartTryResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil)
			}
			return activities.StartTryResult{AttemptID: attempt, AttemptNumber: 1}, nil
		})
	env.OnActivity(a.ParseMessage, mock.Anything, ref).Return(activities.ParseResult{}, nil).Once()
	env.OnActivity(a.MapMessage, mock.Anything, ref).Return(activities.MapResult{Entries: 1}, nil).Once()
	env.OnActivity(a.RouteBundle, mock.Anything, ref).Return(activities.RouteResult{Created: 1}, nil).Once()
	env.OnActivity(a.CompleteMessage, mock.Anything, ref).Return(nil).Once()
	failed := countFailures(env)

	env.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Zero(t, *failed, "not dead-lettered, not even a failed try")
	var res workflows.InboundHL7Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.InboundHL7Result{Status: workflows.StatusProcessed, AttemptID: attempt, Created: 1}, res)
	require.Equal(t, 21, stalled, "StartTry retried until it landed")
	env.AssertExpectations(t)

	gone := newEnv(t)
	in = input()
	gone.OnActivity(a.StartTry, mock.Anything, mock.Anything).Return(activities.StartTryResult{},
		temporal.NewNonRetryableApplicationError("message does not exist", activities.ErrTypeNotFound, nil)).Once()
	gone.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Return(nil).Maybe()
	gone.ExecuteWorkflow(workflows.InboundHL7, in)
	require.True(t, gone.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(gone.GetWorkflowError(), &appErr), "%v", gone.GetWorkflowError())
	require.Equal(t, activities.ErrTypeNotFound, appErr.Type())
	gone.AssertExpectations(t)
}

// countFailures counts the FailMessage calls of env's run (a failed try or the dead letter).
func countFailures(env *testsuite.TestWorkflowEnvironment) *int {
	failed := new(int)
	env.OnActivity(a.FailMessage, mock.Anything, mock.Anything).Return(func(context.Context, activities.FailInput) error {
		*failed++
		return nil
	}).Maybe()
	return failed
}
