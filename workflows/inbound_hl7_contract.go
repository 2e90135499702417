package workflows

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// The contract of InboundHL7: what a caller needs to start, find and read a run — its type
// name, input and result, id builder and inverse, search attributes and start options — kept
// in one place, beside the workflow, so that the ingest path, the sweeper and the admin API's
// reprocess start runs the same way.

// InboundHL7Name is the registered workflow type name.
const InboundHL7Name = "InboundHL7"

// InboundHL7Input names the stored message to process. Bodies never travel in the input:
// the activities read them from the database.
type InboundHL7Input struct {
	MessageID   uuid.UUID
	TenantID    string
	ConnectorID uuid.UUID
	// MessageType is MSH-9 as "ADT^A01", for the search attribute.
	MessageType string
	// ReprocessOf is the run id this run re-processes, set when support staff reprocess a
	// message; empty for the first run.
	ReprocessOf string `json:",omitempty"`
}

// MessageType is InboundHL7Input.MessageType of a stored message's MSH-9.1 code and MSH-9.2
// trigger: "ADT^A01", or the code alone without a trigger.
func MessageType(code, trigger string) string {
	if trigger == "" {
		return code
	}
	return code + "^" + trigger
}

// InboundHL7Result is how a run ended.
type InboundHL7Result struct {
	Status    string
	AttemptID uuid.UUID
	Created   int
	Updated   int
	Unchanged int
}

// Status values of InboundHL7Result and of the InteropStatus search attribute; they are the
// Hl7Message statuses.
const (
	StatusProcessing   = "processing"
	StatusProcessed    = "processed"
	StatusUnmapped     = "unmapped"
	StatusFailed       = "failed"
	StatusDeadLettered = "dead_lettered"
)

// Search attributes of inbound runs, registered on the namespace at start-up, so support staff
// can filter runs in the Temporal UI (e.g. `InteropStatus = "dead_lettered"`).
var (
	SearchAttrTenant      = temporal.NewSearchAttributeKeyKeyword("InteropTenant")
	SearchAttrConnector   = temporal.NewSearchAttributeKeyKeyword("InteropConnector")
	SearchAttrMessageType = temporal.NewSearchAttributeKeyKeyword("InteropMessageType")
	SearchAttrStatus      = temporal.NewSearchAttributeKeyKeyword("InteropStatus")
)

// SearchAttributes lists every custom search attribute the workflows use, for registration.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchAttrTenant.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrConnector.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrMessageType.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrStatus.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// MessageKey is the business key of an inbound message: the dedup key of Hl7Message.
type MessageKey struct {
	TenantID    string
	ConnectorID uuid.UUID
	SendingApp  string
	ControlID   string
}

const (
	inboundPrefix = "HL7Message:"
	dupSuffix     = ":dup-"
)

// InboundHL7WorkflowID is the readable, unique workflow id of a message:
// HL7Message:<tenant>:<connector>:<MSH-3>:<MSH-10>. ':' and '%' inside the tenant, MSH-3 and
// MSH-10 are percent-encoded so that ParseInboundHL7WorkflowID can invert it.
func InboundHL7WorkflowID(k MessageKey) string {
	return inboundPrefix + escapeIDPart(k.TenantID) + ":" + k.ConnectorID.String() + ":" + escapeIDPart(k.SendingApp) + ":" + escapeIDPart(k.ControlID)
}

// InboundHL7DuplicateWorkflowID is the workflow id of the n-th (from 1) resend of key with
// other bytes that a connector with duplicatePolicy "accept" stored as a new message flagged
// as a duplicate of the original: the original's id (InboundHL7WorkflowID) followed by
// ":dup-<n>", so support staff find it next to the original. ':' inside the parts is escaped
// in the original's id, so no original message can have this id.
func InboundHL7DuplicateWorkflowID(k MessageKey, n int) string {
	return InboundHL7WorkflowID(k) + dupSuffix + strconv.Itoa(n)
}

// ParseInboundHL7WorkflowID inverts InboundHL7WorkflowID and InboundHL7DuplicateWorkflowID:
// dup is the n of a duplicate's id, 0 for an original message's.
func ParseInboundHL7WorkflowID(id string) (k MessageKey, dup int, err error) {
	rest, ok := strings.CutPrefix(id, inboundPrefix)
	if !ok {
		return MessageKey{}, 0, fmt.Errorf("workflow id %q: not an inbound HL7 id", id)
	}
	parts := strings.Split(rest, ":")
	if len(parts) == 5 {
		n, ok := strings.CutPrefix(parts[4], dupSuffix[1:])
		if dup, err = strconv.Atoi(n); !ok || err != nil || dup < 1 {
			return MessageKey{}, 0, fmt.Errorf("workflow id %q: %q is not a duplicate's suffix", id, parts[4])
		}
		parts = parts[:4]
	}
	if len(parts) != 4 {
		return MessageKey{}, 0, fmt.Errorf("workflow id %q: want 4 parts after the prefix, got %d", id, len(parts))
	}
	conn, err := uuid.Parse(parts[1])
	if err != nil {
		return MessageKey{}, 0, fmt.Errorf("workflow id %q: connector: %w", id, err)
	}
	tenant, err0 := url.PathUnescape(parts[0])
	app, err1 := url.PathUnescape(parts[2])
	ctl, err2 := url.PathUnescape(parts[3])
	if err := errors.Join(err0, err1, err2); err != nil {
		return MessageKey{}, 0, fmt.Errorf("workflow id %q: %w", id, err)
	}
	return MessageKey{TenantID: tenant, ConnectorID: conn, SendingApp: app, ControlID: ctl}, dup, nil
}

// escapeIDPart percent-encodes the separator of an inbound workflow id (and '%') inside one
// of its parts.
func escapeIDPart(s string) string {
	return inboundIDEscaper.Replace(s)
}

var inboundIDEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// InboundHL7StartOptions are the options of a message's first run, started by the ingest path
// (and by the sweeper after a failed start): a running run is reused and a closed one is not
// re-run, so a start repeated after a crash or a timeout never processes a message twice.
// Reprocessing is a separate, explicit start (InboundHL7ReprocessOptions).
func InboundHL7StartOptions(id, taskQueue string, in InboundHL7Input) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		EnableEagerStart:         true,
		TypedSearchAttributes:    inboundSearchAttributes(in),
	}
}

// InboundHL7ReprocessOptions are the options of a run that re-processes a message support
// staff chose: a new run of the same id, so the history of earlier runs stays beside it. A
// run still open refuses the start with serviceerror.WorkflowExecutionAlreadyStarted (without
// WorkflowExecutionErrorWhenAlreadyStarted the SDK would hand back the open run as if this
// start had made it, and a second reprocess would look accepted).
func InboundHL7ReprocessOptions(id, taskQueue string, in InboundHL7Input) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{"reprocessOf": in.ReprocessOf},
		TypedSearchAttributes:                    inboundSearchAttributes(in),
	}
}

// inboundSearchAttributes are the search attributes a run starts with; the workflow upserts
// InteropStatus as it ends.
func inboundSearchAttributes(in InboundHL7Input) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchAttrTenant.ValueSet(in.TenantID),
		SearchAttrConnector.ValueSet(in.ConnectorID.String()),
		SearchAttrMessageType.ValueSet(in.MessageType),
		SearchAttrStatus.ValueSet(StatusProcessing),
	)
}

// QueryProgress is the query name returning the step a run is at (for support staff).
const QueryProgress = "progress"
