package mapping

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // G505: SHA-1 is what a version-5 UUID is defined by (RFC 4122), not a security use
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/encoding/json"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

// urnNamespace seeds the name-based UUIDs of a Bundle's fullUrls.
var urnNamespace = uuid.MustParse("0f2b8d0e-5b53-4d7e-9d44-6f3a1c0b7a21")

// Builder accumulates the entries of one message's Bundle. Handlers read Msg and add
// resources through it; it owns what makes a Bundle safe to apply and replay: name-based
// fullUrls, conditional requests keyed on business identifiers, one entry per key, and an
// entry order in which every urn:uuid reference points back to an earlier entry (route.go
// resolves references in order).
type Builder struct {
	// Msg is the message being mapped.
	Msg *hl7v2.Message
	// Opts is the Mapper's configuration.
	Opts *Options

	controlID string
	eventTime time.Time
	// shared holds Practitioner, Organization and Location (referenced by everything else, so
	// they come first); main the message's own resources in the order handlers add them.
	shared, main []*entry
	byKey        map[entryKey]*entry
	notes        []string
	patient      *Reference
	patientKey   Identifier
	encounter    *Reference
	encounterKey Identifier
	handled      map[*hl7v2.Segment]bool
	// meta is the source-event-time extension every resource's meta carries, formatted once
	// per message; resources share it read-only.
	metaExt []fhir.Extension
	// acct records what the handlers read of Msg (accounting.go).
	acct *account
	// zoneless lists the fields whose time of day was cut for want of a zone (noteZoneless).
	zoneless []fieldRef
}

// entryKey identifies an entry: its type and conditional key.
type entryKey struct{ typ, system, value string }

type entry struct {
	typ      string
	key      Identifier
	resource any
	update   bool
	patch    bool // resource is a FHIRPath Patch (Parameters) of the typ matching key
	fullURL  string
	// ref is the reference add returns to the caller that created the entry, allocated with
	// it; later adds of the same key get a reference of their own.
	ref Reference
}

func newBuilder(m *hl7v2.Message, opts *Options) *Builder {
	m, acct := newAccount(m)
	b := &Builder{Msg: m, Opts: opts, acct: acct, controlID: m.ControlID(), byKey: make(map[entryKey]*entry, 16)}
	b.eventTime = b.readEventTime()
	if !b.eventTime.IsZero() {
		b.metaExt = []fhir.Extension{fhir.SourceEventTimeExtension(b.eventTime)}
	}
	return b
}

// eventTime reads EVN-2 (recorded date/time), else MSH-7. Updates carry it so that the owner
// keeps the state of the newest event whatever order messages are processed in. A time
// without an offset is read as UTC here: it only orders events of one sender. Both are checked
// (MSH-7 is also Bundle.timestamp and MessageHeader's time), and a value that is not a time is
// noted.
func (b *Builder) readEventTime() time.Time {
	var event time.Time
	for _, seg := range []*hl7v2.Segment{b.Msg.Segment("EVN", 1), b.Msg.Segment("MSH", 1)} {
		n := 2
		if seg != nil && seg.Name() == "MSH" {
			n = 7
		}
		if v := FieldValue(seg, n).Get(1); v != "" {
			t, _, err := hl7v2.ParseTime(v)
			switch {
			case err != nil:
				b.noteBadTime(seg, n, v, err)
			case event.IsZero():
				event = t
			}
		}
	}
	return event
}

// EventTime is when the source event happened (EVN-2, else MSH-7); zero when unknown.
func (b *Builder) EventTime() time.Time { return b.eventTime }

// Meta returns the meta of a resource of type typ: its profiles (base, then the tenant's) and
// the source-event-time extension the FHIR store uses to refuse stale updates.
func (b *Builder) Meta(typ string) fhir.Meta {
	return fhir.Meta{Profile: b.Opts.profiles(typ), Extension: b.metaExt}
}

// Update adds a conditional update (PUT Type?identifier=system|value) of resource: the owner
// creates it or replaces it with this newer state. Use it for what later events change
// (Patient, Encounter, RelatedPerson…). key must be one of the resource's identifiers. A
// second resource with the same type and key is dropped in favour of the first; the
// reference returned is the first's.
func (b *Builder) Update(typ string, key Identifier, resource any) *Reference {
	return b.add(typ, key, resource, true, false)
}

// Create adds a conditional create (POST with ifNoneExist identifier=system|value): the owner
// creates it unless it exists, and never changes an existing one. Use it for facts a message
// reports once.
func (b *Builder) Create(typ string, key Identifier, resource any) *Reference {
	return b.add(typ, key, resource, false, false)
}

// Patch adds a conditional patch (PATCH Type?identifier=system|value) whose body is a FHIRPath
// Patch, a Parameters resource: the owner changes only what its operations name in the
// resource it holds, and nothing when it holds none. Use it for events that add to a record
// without restating it (a merge marks the merged-away Patient). The entry takes the key's
// place: a later Update or Create of the same key gets this entry's reference.
func (b *Builder) Patch(typ string, key Identifier, params any) *Reference {
	if b.Has(typ, key) {
		return b.add(typ, key, params, false, false)
	}
	ref := b.add(typ, key, params, false, false)
	b.byKey[entryKey{typ, key.System, key.Value}].patch = true
	return ref
}

// Shared adds a conditional create of a Practitioner, Organization or Location. These come
// before every other entry, so any resource may reference them.
func (b *Builder) Shared(typ string, key Identifier, resource any) *Reference {
	return b.add(typ, key, resource, false, true)
}

func (b *Builder) add(typ string, key Identifier, resource any, update, shared bool) *Reference {
	k := entryKey{typ, key.System, key.Value}
	if e, ok := b.byKey[k]; ok {
		return &Reference{Reference: e.fullURL}
	}
	e := &entry{typ: typ, key: key, resource: resource, update: update, fullURL: b.fullURL(typ, key)}
	e.ref.Reference = e.fullURL
	b.byKey[k] = e
	if shared {
		b.shared = append(b.shared, e)
	} else {
		b.main = append(b.main, e)
	}
	return &e.ref
}

// Has reports whether an entry of typ with key was added.
func (b *Builder) Has(typ string, key Identifier) bool {
	_, ok := b.byKey[entryKey{typ, key.System, key.Value}]
	return ok
}

// fullURL is "urn:uuid:" and the name-based (SHA-1, version 5) UUID of the message's control
// id, typ and key: uuid.NewSHA1's value, computed without its allocations (it runs for every
// entry).
func (b *Builder) fullURL(typ string, key Identifier) string {
	var stack [256]byte
	name := append(stack[:0], urnNamespace[:]...)
	name = append(name, b.controlID...)
	name = append(name, 0)
	name = append(name, typ...)
	name = append(name, 0)
	name = append(name, key.System...)
	name = append(name, '|')
	name = append(name, key.Value...)
	sum := sha1.Sum(name)       //nolint:gosec // G401: the version-5 UUID's hash, as above
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	const hexDigits = "0123456789abcdef"
	var out [len("urn:uuid:") + 36]byte
	n := copy(out[:], "urn:uuid:")
	for i, c := range sum[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[n] = '-'
			n++
		}
		out[n], out[n+1] = hexDigits[c>>4], hexDigits[c&0x0f]
		n += 2
	}
	return string(out[:])
}

// Notef records something the mapping skipped or degraded; notes are returned in Result.
func (b *Builder) Notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// Patient returns the reference to the message's Patient, nil before the patient handler ran.
func (b *Builder) Patient() *Reference { return b.patient }

// PatientKey is the Patient's conditional key (the primary PID-3 identifier).
func (b *Builder) PatientKey() Identifier { return b.patientKey }

// Encounter returns the reference to the message's Encounter, nil when it has none.
func (b *Builder) Encounter() *Reference { return b.encounter }

// MarkHandled records that a handler mapped seg, so MapSegments leaves it alone.
func (b *Builder) MarkHandled(seg *hl7v2.Segment) {
	if b.handled == nil {
		b.handled = map[*hl7v2.Segment]bool{}
	}
	b.handled[seg] = true
}

// Unmappable returns the error for a message that can never map: it names the segment and
// field (e.g. "PID-3") and wraps ErrUnmappable (an *UnmappableError, for tools that place it).
func Unmappable(field, format string, args ...any) error {
	return &UnmappableError{Location: field, Reason: fmt.Sprintf(format, args...)}
}

// bundle marshals the entries, shared ones first, then the trailer (MessageHeader,
// Provenance), which reference everything before them. Every resource is encoded once, into
// one buffer the entries share: the Bundle is then written around those bytes
// (fhir.Bundle.AppendJSON) rather than re-encoded. The encoder writes exactly what
// encoding/json writes (HTML-safe, sorted map keys; encode_test.go checks every golden).
func (b *Builder) bundle(trailer []*entry) (*fhir.Bundle, error) {
	n := len(b.shared) + len(b.main) + len(trailer)
	data := make([]byte, 0, n*int(entryBytes.Load()))
	var endsArr [64]int
	ends := endsArr[:0]
	for _, list := range [...][]*entry{b.shared, b.main, trailer} {
		for _, e := range list {
			settleProfiles(e.resource)
			var err error
			start := len(data)
			if data, err = json.Append(data, e.resource, json.EscapeHTML|json.SortMapKeys); err != nil {
				return nil, fmt.Errorf("marshal %s: %w", e.typ, err)
			}
			data = dropEmptyMeta(data, start)
			ends = append(ends, len(data))
		}
	}
	if n > 0 {
		noteEntryBytes(len(data) / n)
	}
	all := make([]fhir.BundleEntry, n)
	reqs := make([]fhir.EntryRequest, n)
	i, start := 0, 0
	for _, list := range [...][]*entry{b.shared, b.main, trailer} {
		for _, e := range list {
			// The capacity limit keeps an append to one entry's Resource from overwriting
			// the next.
			end := ends[i]
			e.request(&reqs[i])
			all[i] = fhir.BundleEntry{FullURL: e.fullURL, Resource: data[start:end:end], Request: &reqs[i]}
			start = end
			i++
		}
	}
	return &fhir.Bundle{ResourceType: "Bundle", Type: fhir.BundleTransaction, Timestamp: b.timestamp(), Entry: all}, nil
}

// timestamp is Bundle.timestamp, the IG's MSH[Bundle]: MSH-7 as an instant, which needs
// seconds and a zone. A time without an offset is read in the sender's zone when one is
// configured; otherwise, or when MSH-7 is not a time, the timestamp is left out with a note
// rather than given an invented zone.
func (b *Builder) timestamp() string {
	msh := b.Msg.Segment("MSH", 1)
	raw := FieldValue(msh, 7).Get(1)
	if raw == "" {
		b.Notef("MSH-7: no message date/time; Bundle.timestamp left out")
		return ""
	}
	if s, ok := b.Instant(msh, 7, raw); ok {
		return s
	}
	// An invalid MSH-7 was noted by Instant (once, with the event time's reading of it).
	if _, _, err := hl7v2.ParseTime(raw); err == nil {
		b.Notef("MSH-7: %q is not an instant (no UTC offset and no sender zone configured, or not to the minute); Bundle.timestamp left out", raw)
	}
	return ""
}

// entryBytes is the buffer bundle allocates per entry: a running estimate of the encoded size
// of a resource (typically 0.5–1.5 KiB) with some headroom, so that the one buffer of a
// Bundle's resources is seldom regrown and seldom much too large. It only sizes a buffer:
// the output never depends on it.
var entryBytes atomic.Int64

func init() { entryBytes.Store(1280) }

// noteEntryBytes folds a Bundle's mean encoded resource size into entryBytes (an exponential
// moving average, plus 25% headroom). Concurrent updates may lose one another; that is fine
// for an estimate.
func noteEntryBytes(mean int) {
	target := int64(mean + mean/4)
	old := entryBytes.Load()
	entryBytes.Store(max(256, old+(target-old)/4))
}

// request fills r with the entry's conditional request.
func (e *entry) request(r *fhir.EntryRequest) {
	switch {
	case e.patch:
		r.Method, r.URL = "PATCH", conditionURL(e.typ+"?identifier=", e.key)
	case e.update:
		r.Method, r.URL = "PUT", conditionURL(e.typ+"?identifier=", e.key)
	case e.key.Value == "":
		// MessageHeader and Provenance have no identifier in R4: a PUT to a name-based id
		// makes them idempotent on owners that accept client ids.
		r.Method, r.URL = "PUT", e.typ+"/"+e.fullURL[len("urn:uuid:"):]
	default:
		r.Method, r.URL, r.IfNoneExist = "POST", e.typ, conditionURL("identifier=", e.key)
	}
}

// conditionURL is prefix + url.QueryEscape(key.System+"|"+key.Value), built with one
// allocation.
func conditionURL(prefix string, key Identifier) string {
	var stack [256]byte
	dst := append(stack[:0], prefix...)
	dst = appendQueryEscape(dst, key.System)
	dst = append(dst, "%7C"...) // '|'
	dst = appendQueryEscape(dst, key.Value)
	return string(dst)
}

// appendQueryEscape appends s escaped as url.QueryEscape escapes it: unreserved characters
// stay, a space becomes '+', every other byte becomes %XX (upper-case hex).
func appendQueryEscape(dst []byte, s string) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
		}
	}
	return dst
}

// dropEmptyMeta removes an empty meta ("meta":{}, FHIR has no empty elements) from the
// resource encoded at data[start:]. Resource types declare Meta right after ResourceType,
// as a value: it is empty when a resource claims no profile (none met, see settleProfiles)
// and the message gave no event time.
func dropEmptyMeta(data []byte, start int) []byte {
	const prefix, empty = `{"resourceType":"`, `,"meta":{}`
	r := data[start:]
	if !bytes.HasPrefix(r, []byte(prefix)) {
		return data
	}
	end := bytes.IndexByte(r[len(prefix):], '"')
	if end < 0 {
		return data
	}
	at := len(prefix) + end + 1
	if !bytes.HasPrefix(r[at:], []byte(empty)) {
		return data
	}
	return append(data[:start+at], r[at+len(empty):]...)
}
