// Package mapping turns parsed HL7 v2 messages into FHIR R4 transaction Bundles. It is pure:
// the same message always gives the same Bundle (fullUrls are name-based UUIDs), so the Map
// step can be retried and replayed. Every entry is conditional on a business identifier, so
// re-processing a message, or a later event about the same patient or visit, converges on
// the same resources.
//
// Message families plug in by registering a Handler per message structure (RegisterMessage)
// or a SegmentHandler per segment (RegisterSegment) from an init function in their own file;
// handlers build resources with the Builder and the datatype functions (CX, XPN, XAD, XTN,
// CWE, XCN, XON, PL, DateTime, NM, SN, ED…).
package mapping

import (
	"errors"
	"strings"
	"time"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

// ErrUnmappable is wrapped by every error about a message this package cannot map; such a
// message will never map and is dead-lettered rather than retried.
var ErrUnmappable = errors.New("unmappable message")

// Result is a mapped message: the transaction Bundle and notes on what was skipped or
// degraded (ignored Z-segments, values that did not convert, and every populated field the
// mapping did not read, as "<location>: not mapped").
type Result struct {
	Bundle *fhir.Bundle
	Notes  []string
	// Unmapped is true when no mapping exists for the message's type (a query response, a
	// financial transaction, an ACK…): the Bundle has no entries, a note says why, and the
	// pipeline writes nothing for it.
	Unmapped bool
	acct     *account
}

// Coverage returns the field accounting of the message: every populated component and
// whether the mapping read it. It is built on demand (a string per component).
func (r Result) Coverage() Coverage {
	if r.acct == nil {
		return Coverage{}
	}
	return r.acct.coverage()
}

// CoverageCounts returns Coverage's counts without building its table.
func (r Result) CoverageCounts() (populated, mapped int) {
	if r.acct == nil {
		return 0, 0
	}
	r.acct.visit(func(seg *hl7v2.Segment, _, _, _ int, read bool) {
		populated++
		if read && !strings.HasPrefix(seg.Name(), "Z") {
			mapped++
		}
	})
	return populated, mapped
}

// Mapper maps messages with one tenant's configuration. It is immutable and safe for
// concurrent use.
type Mapper struct {
	opts Options
}

// New returns a Mapper for opts.
func New(opts Options) *Mapper { return &Mapper{opts: opts} }

// InZone returns a Mapper like mp that reads v2 times without a UTC offset in loc: the zone of
// the connector (one facility) a message arrived on, which is more precise than its tenant's.
// A nil loc leaves mp's zone.
func (mp *Mapper) InZone(loc *time.Location) *Mapper {
	if loc == nil || loc == mp.opts.Location {
		return mp
	}
	opts := mp.opts
	opts.Location = loc
	return &Mapper{opts: opts}
}

// defaultMapper writes MessageHeader and Provenance: the pipeline's router applies their
// PUT Type/<name-based id> as a plain, idempotent update.
var defaultMapper = New(Options{MessageResources: true})

// Map maps m with the default options (base profiles, no tenant configuration) and returns
// the Bundle alone; see Mapper.Map for the notes.
func Map(m *hl7v2.Message) (*fhir.Bundle, error) {
	r, err := defaultMapper.Map(m)
	if err != nil {
		return nil, err
	}
	return r.Bundle, nil
}

// Map returns the FHIR transaction Bundle for m. A message whose structure has no handler
// maps to an empty Bundle with Unmapped set: its PID may be a query's subject (QRY, RSP), a
// guarantor's account (BAR, DFT) or absent (ACK, MFN), so writing the Patient from it would
// overwrite what the ADT feed owns with whatever that message happens to carry.
func (mp *Mapper) Map(m *hl7v2.Message) (Result, error) {
	_, h, ok := handlerFor(m)
	if !ok {
		return unmapped(m, unknownStructure(m)), nil
	}
	b := newBuilder(m, &mp.opts)
	b.noteZSegments()
	b.readEventType()
	if err := h(b); err != nil {
		var none noMapping
		if errors.As(err, &none) {
			return unmapped(m, none.reason), nil
		}
		return Result{}, err
	}
	var trailer []*entry
	if mp.opts.MessageResources {
		trailer = b.messageResources()
	}
	b.noteZoneless()
	b.notes = append(b.notes, b.acct.notMappedNotes()...)
	bundle, err := b.bundle(trailer)
	if err != nil {
		return Result{}, err
	}
	return Result{Bundle: bundle, Notes: b.notes, acct: b.acct}, nil
}

// unmapped is the Result of a message nothing is written for. Its one note speaks for the
// whole message; its Coverage lists every populated component as not mapped (only the MSH
// fields the engine consumed are read).
func unmapped(m *hl7v2.Message, note string) Result {
	_, acct := newAccount(m)
	return Result{
		Bundle:   &fhir.Bundle{ResourceType: "Bundle", Type: fhir.BundleTransaction, Entry: []fhir.BundleEntry{}},
		Notes:    []string{note},
		Unmapped: true,
		acct:     acct,
	}
}

// noMapping is returned by a handler for an event of its structure that has no mapping
// (SIU^S23, blocked time, shares SIU_S12 with the appointment events): the message is then
// unmapped, as one of a type without a handler, with reason as its note.
type noMapping struct{ reason string }

func (e noMapping) Error() string { return e.reason }
