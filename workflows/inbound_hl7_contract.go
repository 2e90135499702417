package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

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
// HL7Message:<tenant>:<connector>:<MSH-3>:<MSH-10>. The tenant, MSH-3 and MSH-10 come from
// outside (MSH-3 and MSH-10 from the sender), so each is made a safe part of an id:
//   - ':' and '%', and every byte that is not printable ASCII (control characters, non-ASCII
//     UTF-8), are percent-encoded, so ordinary printable ids read exactly as before and
//     ParseInboundHL7WorkflowID can invert them ("été-1" reads "%C3%A9t%C3%A9-1");
//   - a part longer than MaxInboundHL7IDPart once encoded keeps a readable prefix and ends
//     with "%~" and a hash of the whole part (see hashedPart), which the inverse cannot undo.
//
// So the id is always printable ASCII of at most MaxInboundHL7WorkflowIDLength bytes (with a
// duplicate's suffix), well under Temporal's limit.maxIDLength (1000 bytes by default, which
// the embedded server keeps). The id is stored on the message row (workflow_id) when it is
// received: restarts and reprocessing use the stored id, never a recomputed one.
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

const (
	// MaxInboundHL7IDPart bounds one encoded part (tenant, MSH-3, MSH-10) of an inbound id.
	MaxInboundHL7IDPart = 128
	// MaxInboundHL7WorkflowIDLength bounds an inbound workflow id: the prefix, three parts,
	// the connector's UUID, the separators and a duplicate's suffix with the largest n.
	MaxInboundHL7WorkflowIDLength = len(inboundPrefix) + 3*MaxInboundHL7IDPart + 36 + 3 + len(dupSuffix) + 19
)

// ErrHashedIDPart is returned, wrapped, by ParseInboundHL7WorkflowID for an id one of whose
// parts was too long and was shortened with a hash: the original cannot be recovered from the
// id, and the returned key holds that part as it reads in the id. Look the message up by its
// stored workflow_id instead.
var ErrHashedIDPart = errors.New("a part of the id is shortened with a hash")

// hashMark starts the hash of a shortened part. The encoding never writes '%' followed by
// '~' ('%' itself is encoded as "%25"), so no encoded part can be mistaken for a hashed one.
const hashMark = "%~"

// hashedPart is the part of an id for an encoded part that is too long: the first bytes of the
// encoding (never cutting an escape in two), hashMark, and 32 hex digits (128 bits) of the
// SHA-256 of the whole raw part — as unique as the key within its connector.
func hashedPart(raw, escaped string) string {
	sum := sha256.Sum256([]byte(raw))
	digest := hex.EncodeToString(sum[:16])
	cut := MaxInboundHL7IDPart - len(hashMark) - len(digest)
	if i := strings.LastIndexByte(escaped[:cut], '%'); i >= cut-2 {
		cut = i // an escape would be cut in two: end the prefix before it
	}
	return escaped[:cut] + hashMark + digest
}

// ParseInboundHL7WorkflowID inverts InboundHL7WorkflowID and InboundHL7DuplicateWorkflowID:
// dup is the n of a duplicate's id, 0 for an original message's. For an id with a part
// shortened by a hash, it returns the key with that part as it reads in the id (readable
// prefix, "%~", hash), dup, and an error wrapping ErrHashedIDPart.
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
	var hashed bool
	unescape := func(p string) (string, error) {
		if strings.Contains(p, hashMark) {
			hashed = true
			return p, nil
		}
		return url.PathUnescape(p)
	}
	tenant, err0 := unescape(parts[0])
	app, err1 := unescape(parts[2])
	ctl, err2 := unescape(parts[3])
	if err := errors.Join(err0, err1, err2); err != nil {
		return MessageKey{}, 0, fmt.Errorf("workflow id %q: %w", id, err)
	}
	k = MessageKey{TenantID: tenant, ConnectorID: conn, SendingApp: app, ControlID: ctl}
	if hashed {
		return k, dup, fmt.Errorf("workflow id %q: %w", id, ErrHashedIDPart)
	}
	return k, dup, nil
}

// escapeIDPart makes one untrusted part of an inbound workflow id safe (see
// InboundHL7WorkflowID): printable ASCII but ':' and '%' is kept, every other byte is
// percent-encoded, and a part still too long is shortened with its hash.
func escapeIDPart(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != ':' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	escaped := b.String()
	if len(escaped) > MaxInboundHL7IDPart {
		return hashedPart(s, escaped)
	}
	return escaped
}

const upperHex = "0123456789ABCDEF"

// ValidInboundHL7WorkflowID reports whether id is one Temporal accepts and this contract
// builds: non-empty printable ASCII of at most MaxInboundHL7WorkflowIDLength bytes. Ids
// stored before the parts were encoded (non-ASCII, or longer) are not.
func ValidInboundHL7WorkflowID(id string) bool {
	if id == "" || len(id) > MaxInboundHL7WorkflowIDLength {
		return false
	}
	for i := range len(id) {
		if id[i] < 0x20 || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

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
		SearchAttrTenant.ValueSet(boundKeyword(in.TenantID)),
		SearchAttrConnector.ValueSet(in.ConnectorID.String()),
		SearchAttrMessageType.ValueSet(boundKeyword(in.MessageType)),
		SearchAttrStatus.ValueSet(StatusProcessing),
	)
}

// maxKeyword bounds the keyword search attributes taken from outside (MSH-9 comes from the
// sender): the server refuses a start whose values exceed its limit (2 KiB by default), and
// that refusal would hold the message. Real values are a few bytes long.
const maxKeyword = 100

// boundKeyword cuts s to at most maxKeyword bytes without splitting a UTF-8 sequence.
func boundKeyword(s string) string {
	if len(s) <= maxKeyword {
		return s
	}
	cut := maxKeyword
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// QueryProgress is the query name returning the step a run is at (for support staff).
const QueryProgress = "progress"
