package mapping

import (
	"slices"
	"strconv"
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// Field accounting: every populated field of a message is either read by the mapping or
// named in a note as not mapped, so that nothing a sender wrote is lost silently.
//
// The Builder maps a Tagged copy of the message whose segments point at its account. A Value
// made from such a segment (FieldValue, Repetitions) carries the word of its field repetition,
// and Get and Sub set the bit of each component they read. The unit is the component: reading
// any subcomponent of a component (an HD inside a CX) accounts for the component. Afterwards
// the account compares what was read with what is populated.

// NotMapped ends the note of every populated segment, field, repetition or component that the
// mapping did not read, e.g. "PID-11.7: not mapped", "ROL(2): not mapped".
const NotMapped = "not mapped"

// engineFields are MSH fields consumed before and around the mapping rather than by it: the
// delimiters (MSH-1, MSH-2) and the character set (MSH-18) by the parser, the acknowledgment
// modes (MSH-15, MSH-16) by ingest, the message type and version (MSH-9, MSH-12) by dispatch,
// and the control id (MSH-10) by the idempotency keys (fullUrls, the dedup key).
var engineFields = [...]int{1, 2, 9, 10, 12, 15, 16, 18}

// setIDSegments are the segments whose field 1 is a Set ID: a sequence number within the
// message (or group) that orders segments and carries no data of its own; the mapping's keys
// never use it, because it changes when a sender adds or drops a segment.
var setIDSegments = map[string]bool{
	"AIG": true, "AIL": true, "AIP": true, "AIS": true, "AL1": true, "ARV": true, "DB1": true,
	"DG1": true, "FT1": true, "GT1": true, "IAM": true, "IN1": true, "NK1": true, "NTE": true,
	"OBR": true, "OBX": true, "PID": true, "PR1": true, "PV1": true, "SPM": true, "TQ1": true,
	"TQ2": true, "TXA": true, "RGS": true, "CON": true, "UB1": true, "UB2": true, "DSP": true,
	"IN3": true,
}

// account records which components of which field repetitions the mapping read.
type account struct {
	msg  *hl7v2.Message
	segs []*hl7v2.Segment
	// base[pos] is the index in slab of field 1, repetition 1, of the segment at pos; slab
	// holds one word per field (repetition 1), the common case, without a map.
	base []int32
	slab []uint64
	// more holds the words of repetitions after the first, allocated as they are read.
	more map[repKey]*uint64
	// laterRead[i], built once by summarise after the mapping, says whether any repetition
	// after the first of the field at slab[i] was read: the checks per field and per segment
	// then cost an index, not a walk over more.
	laterRead []bool
}

type repKey struct{ pos, field, rep int32 }

// componentBit is the bit of component n in a repetition's word; components past 63 share
// the last bit.
func componentBit(n int) uint64 {
	if n < 1 {
		n = 1
	}
	return 1 << uint(min(n, 63))
}

// newAccount tags a copy of m with a fresh account and returns both.
func newAccount(m *hl7v2.Message) (*hl7v2.Message, *account) {
	a := &account{}
	tagged := m.Tagged(a)
	segs := tagged.Segments("")
	a.base = make([]int32, len(segs))
	n := 0
	for i, s := range segs {
		a.base[i] = int32(n)
		n += s.NumFields()
	}
	a.slab = make([]uint64, n)
	a.msg, a.segs = tagged, segs
	for _, s := range segs {
		if setIDSegments[s.Name()] {
			if w := a.slot(s, 1, 1); w != nil {
				*w = ^uint64(0)
			}
		}
	}
	if msh := tagged.Segment("MSH", 1); msh != nil {
		for _, f := range engineFields {
			if w := a.slot(msh, f, 1); w != nil {
				*w = ^uint64(0)
			}
		}
	}
	return tagged, a
}

// structural reports whether field n of seg is accounted for before the mapping runs (a set
// id, an MSH field of the engine's): reading it says nothing about the rest of the segment.
func structural(seg *hl7v2.Segment, n int) bool {
	if n == 1 && setIDSegments[seg.Name()] {
		return true
	}
	return seg.Name() == "MSH" && seg.Index() == 1 && slices.Contains(engineFields[:], n)
}

// accountSlot returns the word of repetition rep of field n of seg, nil when seg is not of an
// accounted message.
func accountSlot(seg *hl7v2.Segment, n, rep int) *uint64 {
	a, ok := seg.Tag().(*account)
	if !ok {
		return nil
	}
	return a.slot(seg, n, rep)
}

func (a *account) slot(seg *hl7v2.Segment, n, rep int) *uint64 {
	if n < 1 || n > seg.NumFields() {
		return nil
	}
	pos := seg.Position()
	if rep <= 1 {
		return &a.slab[int(a.base[pos])+n-1]
	}
	k := repKey{int32(pos), int32(n), int32(rep)} //nolint:gosec // G115: counts within one message, bounded by its length (far below 2^31)
	if w, ok := a.more[k]; ok {
		return w
	}
	if a.more == nil {
		a.more = make(map[repKey]*uint64)
	}
	w := new(uint64)
	a.more[k] = w
	return w
}

// word is the recorded word of a repetition, 0 when nothing of it was read.
func (a *account) word(pos, n, rep int) uint64 {
	if rep <= 1 {
		return a.slab[int(a.base[pos])+n-1]
	}
	if w, ok := a.more[repKey{int32(pos), int32(n), int32(rep)}]; ok { //nolint:gosec // G115: as in slot
		return *w
	}
	return 0
}

// Coverage is the field accounting of one mapped message: every populated component
// (segment-field[(repetition)][.component]) with whether the mapping read it.
type Coverage struct {
	// Populated counts the populated components; Mapped those the mapping read.
	Populated int `json:"populated"`
	Mapped    int `json:"mapped"`
	// Fields lists each populated component in message order.
	Fields []FieldUse `json:"fields"`
}

// FieldUse is one populated component and what became of it.
type FieldUse struct {
	// Location is e.g. "PID-5.1", "PID-3(2).4", or "MSH-10" for a field of one component.
	Location string `json:"location"`
	// Status is "mapped", "not mapped" or "ignored" (Z-segments: site-defined, never mapped).
	Status string `json:"status"`
}

// FieldUse statuses.
const (
	StatusMapped  = "mapped"
	StatusIgnored = "ignored"
)

// visit calls fn for every populated component of every populated repetition of every field
// of the message with the bits that say whether it was read. Components are as written:
// subcomponents and escapes stay inside their component.
func (a *account) visit(fn func(seg *hl7v2.Segment, field, rep, comp int, read bool)) {
	for pos, seg := range a.segs {
		// A segment of which nothing but its structure (a set id) was read is not mapped at
		// all, its set id included: it is noted as a whole.
		dataRead := a.dataRead(pos, seg)
		for n := 1; n <= seg.NumFields(); n++ {
			f := seg.Field(n)
			if f.IsEmpty() {
				continue
			}
			for r, rv := range f.Repetitions() {
				if rv.IsEmpty() {
					continue
				}
				w := a.word(pos, n, r)
				if !dataRead {
					w = 0
				}
				if seg.Name() == "MSH" && n <= 2 {
					fn(seg, n, r, 1, w != 0)
					continue
				}
				for c, cv := range rv.Components() {
					if cv.IsEmpty() {
						continue
					}
					fn(seg, n, r, c, w&componentBit(c) != 0)
				}
			}
		}
	}
}

// dataRead reports whether the mapping read any field of seg beyond its structure.
func (a *account) dataRead(pos int, seg *hl7v2.Segment) bool {
	if seg.Name() == "MSH" && seg.Index() == 1 {
		return true // the engine read it (engineFields), whatever the mapping did
	}
	a.summarise()
	base := int(a.base[pos])
	for n := 1; n <= seg.NumFields(); n++ {
		i := base + n - 1
		if (a.slab[i] != 0 && seg.RawField(n) != "" || a.laterRead[i]) && !structural(seg, n) {
			return true
		}
	}
	return false
}

// summarise builds laterRead from more, once.
func (a *account) summarise() {
	if a.laterRead != nil {
		return
	}
	a.laterRead = make([]bool, len(a.slab))
	for k, w := range a.more {
		if *w != 0 {
			a.laterRead[int(a.base[k.pos])+int(k.field)-1] = true
		}
	}
}

// populatedMask returns the bits (componentBit) of the non-empty components of one encoded
// field repetition, scanning it once: the check of a repetition the mapping read whole costs
// no splitting.
func populatedMask(rep string, sep byte) uint64 {
	var mask uint64
	c, start := 1, 0
	for i := 0; i <= len(rep); i++ {
		if i < len(rep) && rep[i] != sep {
			continue
		}
		if i > start {
			mask |= componentBit(c)
		}
		c, start = c+1, i+1
	}
	return mask
}

// notMappedNotes returns one note per populated unit the mapping did not read, at the
// coarsest level that is wholly unread: a segment ("ROL: not mapped"), a field ("PID-13: not
// mapped"), a repetition ("PID-3(2): not mapped") or a component ("PID-11.7: not mapped").
// Z-segments are left out: noteZSegments names them.
func (a *account) notMappedNotes() []string {
	var nw noteWriter
	for pos, seg := range a.segs {
		if strings.HasPrefix(seg.Name(), "Z") {
			continue
		}
		if !a.dataRead(pos, seg) {
			if populated(seg) {
				nw.add(seg, 0, 0, 0, 1)
			}
			continue
		}
		d := a.msg.Delimiters()
		for n := 1; n <= seg.NumFields(); n++ {
			raw := seg.RawField(n)
			if raw == "" {
				continue
			}
			if !a.fieldRead(pos, n) {
				nw.add(seg, n, 0, 0, 1)
				continue
			}
			if seg.Name() == "MSH" && n <= 2 {
				continue
			}
			// One scan per repetition: its populated components as bits, less those read, are
			// the components to note.
			r, reps := 1, 1
			if strings.IndexByte(raw, d.Repetition) >= 0 {
				reps = 2 // only "more than one" matters to fieldLocation
			}
			for {
				i := strings.IndexByte(raw, d.Repetition)
				rep := raw
				if i >= 0 {
					rep = raw[:i]
				}
				if rep != "" {
					w := a.word(pos, n, r)
					if w == 0 {
						nw.add(seg, n, r, 0, reps)
					} else if unread := populatedMask(rep, d.Component) &^ w; unread != 0 {
						for c := 1; c < 64; c++ {
							if unread&componentBit(c) != 0 {
								nw.add(seg, n, r, c, reps)
							}
						}
					}
				}
				if i < 0 {
					break
				}
				raw, r = raw[i+1:], r+1
			}
		}
	}
	return nw.notes()
}

// fieldRead reports whether any repetition of field n of the segment at pos was read.
func (a *account) fieldRead(pos, n int) bool {
	a.summarise()
	i := int(a.base[pos]) + n - 1
	return a.slab[i] != 0 || a.laterRead[i]
}

// noteWriter collects "<location>: not mapped" notes in one buffer. The notes are cut from
// the Builder's one string, so all of them cost one buffer rather than one string each.
type noteWriter struct {
	buf  strings.Builder
	ends []int
}

func (w *noteWriter) add(seg *hl7v2.Segment, field, rep, comp, reps int) {
	if w.buf.Cap() == 0 {
		w.buf.Grow(2048) // a kitchen-sink ADT^A01 notes ~140 units, ~3.5 KiB
		w.ends = make([]int, 0, 64)
	}
	var loc [40]byte
	w.buf.Write(appendFieldLocation(loc[:0], seg, field, rep, comp, reps))
	w.buf.WriteString(": " + NotMapped)
	w.ends = append(w.ends, w.buf.Len())
}

func (w *noteWriter) notes() []string {
	if len(w.ends) == 0 {
		return nil
	}
	all, out, start := w.buf.String(), make([]string, len(w.ends)), 0
	for i, end := range w.ends {
		out[i], start = all[start:end], end
	}
	return out
}

// populated reports whether any field of seg has content.
func populated(seg *hl7v2.Segment) bool {
	for n := 1; n <= seg.NumFields(); n++ {
		if seg.RawField(n) != "" {
			return true
		}
	}
	return false
}

// coverage builds the full table. It allocates a string per populated component, so the
// pipeline asks for it only when it is shown.
func (a *account) coverage() Coverage {
	var c Coverage
	a.visit(func(seg *hl7v2.Segment, field, rep, comp int, read bool) {
		status := StatusMapped
		switch {
		case strings.HasPrefix(seg.Name(), "Z"):
			status = StatusIgnored
		case !read:
			status = NotMapped
		}
		c.Populated++
		if status == StatusMapped {
			c.Mapped++
		}
		reps := seg.Field(field).NumRepetitions()
		if seg.Name() == "MSH" && field <= 2 {
			comp = 0
		} else if seg.Field(field).Repetition(rep).NumComponents() == 1 {
			comp = 0
		}
		c.Fields = append(c.Fields, FieldUse{Location: fieldLocation(seg, field, rep, comp, reps), Status: status})
	})
	return c
}

// fieldLocation formats SEG[(i)][-F[(r)][.C]]: the segment's occurrence when it is not the first,
// the repetition when the field has several, the component when given.
func fieldLocation(seg *hl7v2.Segment, field, rep, comp, reps int) string {
	var stack [32]byte
	return string(appendFieldLocation(stack[:0], seg, field, rep, comp, reps))
}

func appendFieldLocation(b []byte, seg *hl7v2.Segment, field, rep, comp, reps int) []byte {
	b = append(b, seg.Name()...)
	if seg.Index() > 1 {
		b = append(b, '(')
		b = strconv.AppendInt(b, int64(seg.Index()), 10)
		b = append(b, ')')
	}
	if field > 0 {
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(field), 10)
		if rep > 0 && reps > 1 {
			b = append(b, '(')
			b = strconv.AppendInt(b, int64(rep), 10)
			b = append(b, ')')
		}
		if comp > 0 {
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(comp), 10)
		}
	}
	return b
}
