package mapping

import (
	"fmt"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// Handler maps one message: it reads b.Msg and adds resources through b. It returns an error
// from Unmappable for a message that can never map.
type Handler func(b *Builder) error

// SegmentHandler maps one segment of a message whose handler calls Builder.MapSegments (ADT
// does), e.g. AL1 → AllergyIntolerance. b.Patient() and b.Encounter() are set by then.
type SegmentHandler func(b *Builder, seg *hl7v2.Segment) error

var (
	messageHandlers = map[string]Handler{}
	segmentHandlers = map[string]SegmentHandler{}
)

// RegisterMessage makes h the handler of a message structure (table 0354, e.g. "ORU_R01").
// Families call it from an init function in their own file, so adding a family touches no
// shared file. It panics on a duplicate, which is a programming error.
func RegisterMessage(structure string, h Handler) {
	if _, dup := messageHandlers[structure]; dup {
		panic("mapping: duplicate handler for " + structure)
	}
	messageHandlers[structure] = h
}

// RegisterSegment makes h the mapper of a segment ID (e.g. "AL1") inside messages whose
// handler calls MapSegments. Call it from an init function; it panics on a duplicate.
func RegisterSegment(id string, h SegmentHandler) {
	if _, dup := segmentHandlers[id]; dup {
		panic("mapping: duplicate segment handler for " + id)
	}
	segmentHandlers[id] = h
}

// handlerFor finds the handler of m: by MSH-9.3 as written, else by the structure HL7 assigns
// to MSH-9.1/9.2 in MSH-12 (some senders write the event, "ADT_A04", in MSH-9.3). ok is false
// when none is registered.
func handlerFor(m *hl7v2.Message) (string, Handler, bool) {
	t := m.Type()
	for _, s := range []string{strings.ToUpper(t.Structure), hl7v2.StructureFor(t.Code, t.Trigger, m.Version())} {
		if h, ok := messageHandlers[s]; ok && s != "" {
			return s, h, true
		}
	}
	return "", nil, false
}

// MapSegments runs the registered segment handlers over the message's segments in order,
// skipping those a handler marked as handled.
func (b *Builder) MapSegments() error {
	for _, seg := range b.Msg.Segments("") {
		h, ok := segmentHandlers[seg.Name()]
		if !ok || b.handled[seg] {
			continue
		}
		if err := h(b, seg); err != nil {
			return err
		}
		b.MarkHandled(seg)
	}
	return nil
}

// readEventType accounts for EVN-1 (event type code, deprecated since v2.5) when it repeats
// MSH-9.2: the trigger is then mapped (MessageHeader.eventCoding). One that differs stays
// unread, so that the accounting notes it.
func (b *Builder) readEventType() {
	evn := b.Msg.Segment("EVN", 1)
	if evn == nil || evn.Field(1).Value() != b.Msg.Type().Trigger {
		return
	}
	FieldValue(evn, 1).Get(1)
}

// noteZSegments records every Z-segment: site-defined, so never mapped and never a failure.
func (b *Builder) noteZSegments() {
	for _, seg := range b.Msg.Segments("") {
		if strings.HasPrefix(seg.Name(), "Z") {
			b.Notef("%s(%d): Z-segment ignored", seg.Name(), seg.Index())
		}
	}
}

func unknownStructure(m *hl7v2.Message) string {
	t := m.Type()
	s := strings.ToUpper(t.Structure)
	if s == "" {
		s = hl7v2.StructureFor(t.Code, t.Trigger, m.Version())
	}
	if s == "" {
		s = "no known structure"
	}
	return fmt.Sprintf("MSH-9: no mapping for %s (%s); the message is kept, nothing was written", t, s)
}
