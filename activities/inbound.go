package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/connector"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
	"github.com/nhp/interop/internal/outbox"
)

// MessageRef names one stored message and the attempt processing it. Workflows pass ids only:
// HL7 and FHIR bodies are PHI and stay in the database, out of workflow histories.
type MessageRef struct {
	MessageID uuid.UUID
	AttemptID uuid.UUID
}

// StartAttemptResult describes the attempt an InboundHL7 run opened.
type StartAttemptResult struct {
	AttemptID     uuid.UUID
	AttemptNumber int32
}

// StartAttempt marks the message processing and opens its Hl7ProcessingAttempt for this
// workflow run; a retry of the activity gets the same attempt back.
func (a *Activities) StartAttempt(ctx context.Context, messageID uuid.UUID) (StartAttemptResult, error) {
	info := activity.GetInfo(ctx)
	var res StartAttemptResult
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		if _, err := q.Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{ID: messageID, Status: db.Hl7MessageStatusProcessing}); err != nil {
			return fmt.Errorf("mark message processing: %w", err)
		}
		row, err := q.Hl7ProcessingAttemptStart(ctx, db.Hl7ProcessingAttemptStartParams{
			MessageID: messageID, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		})
		if err != nil {
			return fmt.Errorf("open processing attempt: %w", err)
		}
		res = StartAttemptResult{AttemptID: row.ID, AttemptNumber: row.AttemptNumber}
		return nil
	})
	if errors.Is(err, db.ErrNotFound) {
		return res, temporal.NewNonRetryableApplicationError("message "+messageID.String()+" does not exist", ErrTypeNotFound, err)
	}
	return res, err
}

// ParseResult is what the Parse step learnt, without PHI.
type ParseResult struct {
	MessageType string
	Structure   string
	Warnings    int
}

// ParseMessage parses the stored raw message. A message that cannot be parsed never will be:
// the error is non-retryable and dead-letters the message.
func (a *Activities) ParseMessage(ctx context.Context, ref MessageRef) (ParseResult, error) {
	msg, err := a.loadParsed(ctx, ref.MessageID)
	if err != nil {
		return ParseResult{}, err
	}
	t := msg.Type()
	return ParseResult{MessageType: t.String(), Structure: t.Structure, Warnings: len(msg.Problems())}, nil
}

// MapResult summarises the FHIR transaction Bundle the Map step stored on the attempt.
type MapResult struct {
	Entries int
	// Notes counts what the mapping noted without failing; the notes themselves may quote
	// message content (PHI), so they stay on the attempt row, out of the workflow history.
	Notes int
	// Unmapped is true when the message's type has no mapping: the stored Bundle is empty and
	// the run ends the message `unmapped` (CompleteUnmapped) without routing anything.
	Unmapped bool `json:",omitempty"`
}

// MapMessage maps the message to a FHIR transaction Bundle and stores it on the attempt, where
// RouteBundle reads it.
func (a *Activities) MapMessage(ctx context.Context, ref MessageRef) (MapResult, error) {
	msg, in, err := a.load(ctx, ref.MessageID)
	if err != nil {
		return MapResult{}, err
	}
	mapper := a.Mapping.ForTenant(in.TenantID)
	var zoneNote string
	if zone := in.Settings.TimeZone; zone != "" {
		// The admin API refuses unknown zones; one that fails here (a row written around it, a
		// zone database without it) maps with the tenant's zone and says so, rather than
		// dead-lettering every message of the connector.
		if loc, err := mapping.LoadZone(zone); err != nil {
			zoneNote = "connector settings.timeZone: " + err.Error() + "; the tenant's zone was used"
		} else {
			mapper = mapper.InZone(loc)
		}
	}
	res, err := mapper.Map(msg)
	if err != nil {
		return MapResult{}, temporal.NewNonRetryableApplicationError(mappingFailure(err), ErrTypeMapping, err)
	}
	if zoneNote != "" {
		res.Notes = append(res.Notes, zoneNote)
	}
	raw, err := res.Bundle.AppendJSON(nil) // the entries are JSON already: not re-compacted
	if err != nil {
		return MapResult{}, temporal.NewNonRetryableApplicationError("marshal mapped bundle", ErrTypeMapping, err)
	}
	notes := res.Notes
	if notes == nil {
		notes = []string{}
	}
	coverage, err := json.Marshal(res.Coverage())
	if err != nil {
		return MapResult{}, temporal.NewNonRetryableApplicationError("marshal field coverage", ErrTypeMapping, err)
	}
	if err := db.New(a.Pool).Hl7ProcessingAttemptSetBundle(ctx, db.Hl7ProcessingAttemptSetBundleParams{
		ID: ref.AttemptID, MappedBundle: raw, MappingNotes: notes, FieldCoverage: coverage,
	}); errors.Is(err, db.ErrInvalidData) {
		// Text PostgreSQL cannot hold (a NUL byte in a field): storing it again fails the same way.
		return MapResult{}, temporal.NewNonRetryableApplicationError("the mapped bundle cannot be stored: "+err.Error(), ErrTypeMapping, err)
	} else if err != nil {
		return MapResult{}, fmt.Errorf("store mapped bundle: %w", err)
	}
	return MapResult{Entries: len(res.Bundle.Entry), Notes: len(res.Notes), Unmapped: res.Unmapped}, nil
}

// mappingFailure is the one sentence support staff read for a message the mapping refused,
// e.g. "PID-3: no identifier value": the error type (HL7MappingError) already says it is
// unmappable, so the sentinel's words are not repeated.
func mappingFailure(err error) string {
	return mapping.Refusal(err).String()
}

// loadParsed reads a stored message and parses it as the gateway read its header: with the
// character set of the connector it arrived on (settings.charset), which decodes non-ASCII
// bytes when MSH-18 is empty or ASCII.
func (a *Activities) loadParsed(ctx context.Context, messageID uuid.UUID) (*hl7v2.Message, error) {
	msg, _, err := a.load(ctx, messageID)
	return msg, err
}

// storedMessage is what the Parse and Map steps know of a stored message: its tenant and
// the settings of the connector it arrived on.
type storedMessage struct {
	TenantID string
	Settings connector.Settings
}

// load is loadParsed that also returns what the Map step needs of the message's row. The
// connector's charset decodes the bytes when MSH-18 is silent.
func (a *Activities) load(ctx context.Context, messageID uuid.UUID) (*hl7v2.Message, storedMessage, error) {
	row, err := db.New(a.Pool).Hl7MessageParseInput(ctx, messageID)
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return nil, storedMessage{}, temporal.NewNonRetryableApplicationError("message "+messageID.String()+" does not exist", ErrTypeNotFound, err)
		}
		return nil, storedMessage{}, fmt.Errorf("load message: %w", err)
	}
	in := storedMessage{TenantID: row.TenantID}
	if in.Settings, err = connector.Decode(row.Settings); err != nil {
		// Settings are written through the admin API's check; a row written around it must
		// not stop its messages: they are read with the defaults.
		a.logger().Warn("connector settings unreadable; using defaults", "message_id", messageID, "error", err)
	}
	var opts []hl7v2.Option
	if in.Settings.Charset != "" {
		opts = append(opts, hl7v2.WithCharset(in.Settings.Charset))
	}
	msg, err := hl7v2.Parse(row.Raw, opts...)
	if err != nil {
		return nil, in, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeParse, err)
	}
	return msg, in, nil
}

// CompleteMessage records success: the message is processed, the attempt succeeded, and one
// Hl7MessageProcessed event per linked resource — all in one transaction.
func (a *Activities) CompleteMessage(ctx context.Context, ref MessageRef) error {
	var tenant string
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		msg, err := q.Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{ID: ref.MessageID, Status: db.Hl7MessageStatusProcessed})
		if err != nil {
			return fmt.Errorf("mark message processed: %w", err)
		}
		tenant = msg.TenantID
		if err := q.Hl7ProcessingAttemptFinish(ctx, db.Hl7ProcessingAttemptFinishParams{ID: ref.AttemptID, Status: db.Hl7AttemptStatusSucceeded}); err != nil {
			return fmt.Errorf("finish attempt: %w", err)
		}
		links, err := q.Hl7ResourceLinkListByMessage(ctx, ref.MessageID)
		if err != nil {
			return fmt.Errorf("list resource links: %w", err)
		}
		for _, l := range links {
			if err := outbox.Emit(ctx, q, msg.TenantID, outbox.Hl7MessageProcessed, ref.MessageID.String(), map[string]any{
				"messageId": ref.MessageID, "resourceType": l.ResourceType, "resourceId": l.ResourceID, "action": l.Action,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		a.countOutcome(tenant, string(db.Hl7MessageStatusProcessed))
	}
	return outcomeError(ref.MessageID, err)
}

// CompleteUnmapped ends a message whose type has no mapping: the message is `unmapped`, the
// attempt succeeded (its mapping notes say why nothing was written), and no resource is
// linked. Nothing was routed, so no Hl7MessageProcessed event is raised.
func (a *Activities) CompleteUnmapped(ctx context.Context, ref MessageRef) error {
	var tenant string
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		msg, err := q.Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{ID: ref.MessageID, Status: db.Hl7MessageStatusUnmapped})
		if err != nil {
			return fmt.Errorf("mark message unmapped: %w", err)
		}
		tenant = msg.TenantID
		if err := q.Hl7ProcessingAttemptFinish(ctx, db.Hl7ProcessingAttemptFinishParams{ID: ref.AttemptID, Status: db.Hl7AttemptStatusSucceeded}); err != nil {
			return fmt.Errorf("finish attempt: %w", err)
		}
		return nil
	})
	if err == nil {
		a.countOutcome(tenant, string(db.Hl7MessageStatusUnmapped))
	}
	return outcomeError(ref.MessageID, err)
}

// FailInput says why a message's processing stopped.
type FailInput struct {
	MessageRef
	ErrorCode string
	Detail    string
	// DeadLetter is true when no retry will follow (non-retryable error or retries exhausted).
	DeadLetter bool
}

// FailMessage records a failure: the attempt failed, the message failed or dead-lettered, and
// Hl7MessageFailed (plus Hl7MessageDeadLettered) — in one transaction.
func (a *Activities) FailMessage(ctx context.Context, in FailInput) error {
	in.ErrorCode, in.Detail = storableText(in.ErrorCode, maxErrorText), storableText(in.Detail, maxErrorText)
	status := db.Hl7MessageStatusFailed
	if in.DeadLetter {
		status = db.Hl7MessageStatusDeadLettered
	}
	var tenant string
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		msg, err := q.Hl7MessageSetStatus(ctx, db.Hl7MessageSetStatusParams{
			ID: in.MessageID, Status: status, LastErrorCode: in.ErrorCode, LastError: in.Detail,
		})
		if err != nil {
			return fmt.Errorf("mark message %s: %w", status, err)
		}
		tenant = msg.TenantID
		if in.AttemptID != uuid.Nil {
			if err := q.Hl7ProcessingAttemptFinish(ctx, db.Hl7ProcessingAttemptFinishParams{
				ID: in.AttemptID, Status: db.Hl7AttemptStatusFailed, ErrorCode: in.ErrorCode, ErrorDetail: in.Detail,
			}); err != nil {
				return fmt.Errorf("finish attempt: %w", err)
			}
		}
		id := in.MessageID.String()
		if err := outbox.Emit(ctx, q, msg.TenantID, outbox.Hl7MessageFailed, id, map[string]any{
			"messageId": in.MessageID, "errorCode": in.ErrorCode,
		}); err != nil {
			return err
		}
		if in.DeadLetter {
			return outbox.Emit(ctx, q, msg.TenantID, outbox.Hl7MessageDeadLettered, id, map[string]any{"messageId": in.MessageID})
		}
		return nil
	})
	if err == nil {
		a.countOutcome(tenant, string(status))
	}
	return outcomeError(in.MessageID, err)
}

// outcomeError classifies the error of an outcome write. The workflow retries these writes
// until they land (workflows.OutcomeRetryPolicy), so only what can never land is permanent:
// a message that does not exist.
func outcomeError(messageID uuid.UUID, err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError("message "+messageID.String()+" does not exist", ErrTypeNotFound, err)
	}
	return err
}

// maxErrorText bounds the error code and detail written on a message and its attempt.
const maxErrorText = 2000

// storableText is s as PostgreSQL text can always hold it: a cause may quote a sender's bytes
// (a NUL, invalid UTF-8) that PostgreSQL refuses, and a refused outcome write would be retried
// for ever. NULs are dropped, invalid bytes become U+FFFD, and the text is cut to max bytes
// on a character boundary.
func storableText(s string, limit int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
