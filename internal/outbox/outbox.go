// Package outbox records domain events in the transaction of the change that raises them, so an
// event exists if and only if its change committed. Delivery (at least once) reads them back
// in commit order through the gap-free cursor of db.DomainEventListAfter.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nhp/interop/db"
)

// EventType names a domain event of the seed model (§4).
type EventType string

// The domain events.
const (
	Hl7MessageReceived     EventType = "Hl7MessageReceived"
	Hl7MessageProcessed    EventType = "Hl7MessageProcessed"
	Hl7MessageFailed       EventType = "Hl7MessageFailed"
	Hl7MessageDeadLettered EventType = "Hl7MessageDeadLettered"
	FhirRequestRouted      EventType = "FhirRequestRouted"
	BulkExportStarted      EventType = "BulkExportStarted"
	BulkExportCompleted    EventType = "BulkExportCompleted"
	ConnectorActivated     EventType = "ConnectorActivated"
	ConnectorDeactivated   EventType = "ConnectorDeactivated"
)

// aggregateOf is the aggregate each event belongs to.
var aggregateOf = map[EventType]string{
	Hl7MessageReceived: "Hl7Message", Hl7MessageProcessed: "Hl7Message", Hl7MessageFailed: "Hl7Message",
	Hl7MessageDeadLettered: "Hl7Message", FhirRequestRouted: "FhirRoutingRule",
	BulkExportStarted: "BulkExportJob", BulkExportCompleted: "BulkExportJob",
	ConnectorActivated: "InteropConnector", ConnectorDeactivated: "InteropConnector",
}

// Emit inserts one event with q, which must belong to the transaction of the change.
// payload is marshalled to a JSON object; tenantId is always part of it.
func Emit(ctx context.Context, q *db.Queries, tenant string, typ EventType, aggregateID string, payload map[string]any) error {
	e, err := NewEvent(tenant, typ, payload)
	if err != nil {
		return err
	}
	if err := q.DomainEventInsert(ctx, db.DomainEventInsertParams{
		TenantID: tenant, EventType: string(typ), AggregateType: e.AggregateType, AggregateID: aggregateID, Payload: e.Payload,
	}); err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	return nil
}

// Event is an event ready to insert, for statements that write the change and its event in
// one go (db.Hl7MessageInsertReceived).
type Event struct {
	Type          EventType
	AggregateType string
	Payload       []byte
}

// NewEvent builds the row Emit would insert: payload as a JSON object with tenantId added.
func NewEvent(tenant string, typ EventType, payload map[string]any) (Event, error) {
	agg, ok := aggregateOf[typ]
	if !ok {
		return Event{}, fmt.Errorf("emit %s: unknown event type", typ)
	}
	body := make(map[string]any, len(payload)+1)
	for k, v := range payload {
		body[k] = v
	}
	body["tenantId"] = tenant
	raw, err := json.Marshal(body)
	if err != nil {
		return Event{}, fmt.Errorf("emit %s: marshal payload: %w", typ, err)
	}
	return Event{Type: typ, AggregateType: agg, Payload: raw}, nil
}

// Cursor is a reader's position: the (transaction, sequence) of the last event it saw.
type Cursor struct {
	TxID string
	Seq  int64
}

// ErrBadCursor is returned for a cursor string this package did not make.
var ErrBadCursor = errors.New("malformed event cursor")

// String renders the cursor as the opaque "txid-seq" token clients pass back.
func (c Cursor) String() string {
	if c.TxID == "" {
		return ""
	}
	return c.TxID + "-" + strconv.FormatInt(c.Seq, 10)
}

// ParseCursor reads a token made by Cursor.String; "" is the start of the stream.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{TxID: "0"}, nil
	}
	tx, seq, ok := strings.Cut(s, "-")
	if !ok {
		return Cursor{}, ErrBadCursor
	}
	if _, err := strconv.ParseUint(tx, 10, 64); err != nil {
		return Cursor{}, ErrBadCursor
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 0 {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{TxID: tx, Seq: n}, nil
}
