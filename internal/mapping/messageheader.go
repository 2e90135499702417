package mapping

import (
	"github.com/nhp/interop/internal/fhir"
)

type messageHeader struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         headerMeta        `json:"meta"`
	EventCoding  Coding            `json:"eventCoding"`
	Destination  []messageEndpoint `json:"destination,omitempty"`
	Sender       *Reference        `json:"sender,omitempty"`
	Source       messageEndpoint   `json:"source"`
	Responsible  *Reference        `json:"responsible,omitempty"`
	Focus        []*Reference      `json:"focus,omitempty"`
}

// headerMeta is the MessageHeader's meta: the common one, and MSH-11 as tags (PT[Meta]).
type headerMeta struct {
	fhir.Meta
	Tag []Coding `json:"tag,omitempty"`
}

type messageEndpoint struct {
	Name     string     `json:"name,omitempty"`
	Software string     `json:"software,omitempty"`
	Version  string     `json:"version,omitempty"`
	Endpoint string     `json:"endpoint"`
	Receiver *Reference `json:"receiver,omitempty"`
}

// messageResources builds the MessageHeader (the IG's MSH[MessageHeader]) and the Provenance
// (MSH[Provenance-Source] with EVN) of the message. Both come last: they reference every
// resource the message produced. Either is left out, with a note, when the message lacks what
// it requires (see provenance); the MessageHeader needs a source endpoint, MSH-3.
func (b *Builder) messageResources() []*entry {
	msh := b.Msg.Segment("MSH", 1)
	var focus []*Reference
	if len(b.main) > 0 {
		refs := make([]Reference, len(b.main))
		focus = make([]*Reference, 0, len(b.main))
		for i, e := range b.main {
			// A patch's target may not exist at the owner (a merge of a patient it never
			// received): a reference to it could not be resolved.
			if e.patch {
				continue
			}
			refs[i].Reference = e.fullURL
			focus = append(focus, &refs[i])
		}
	}
	var out []*entry
	if source, ok := endpoint(FieldValue(msh, 3)); ok {
		mh := &messageHeader{
			ResourceType: "MessageHeader", Meta: headerMeta{Meta: b.Meta("MessageHeader"), Tag: processingTags(FieldValue(msh, 11))},
			EventCoding: Coding{System: "http://terminology.hl7.org/CodeSystem/v2-0003", Code: b.Msg.Type().Trigger},
			Source:      source,
			Sender:      b.HDOrganization(FieldValue(msh, 4)),
			Responsible: b.XON(FieldValue(msh, 22)),
			Focus:       focus,
		}
		if sft := b.Msg.Segment("SFT", 1); sft != nil {
			mh.Source.Software, mh.Source.Version = FieldValue(sft, 3).Get(1), FieldValue(sft, 2).Get(1)
		}
		// MSH-6 (else its XON form, MSH-23) is the receiving facility: the destination's
		// receiver. A destination needs an endpoint, which only MSH-5 gives.
		receiver := b.HDOrganization(FieldValue(msh, 6))
		if receiver == nil {
			receiver = b.XON(FieldValue(msh, 23))
		}
		if dest, ok := endpoint(FieldValue(msh, 5)); ok {
			dest.Receiver = receiver
			mh.Destination = []messageEndpoint{dest}
		}
		header := b.trailerEntry("MessageHeader", mh)
		mh.ID = header.fullURL[len("urn:uuid:"):]
		out = append(out, header)
	} else {
		b.Notef("MSH-3: no sending application, so no MessageHeader (its source endpoint is required)")
	}
	if prov := b.provenance(focus); prov != nil {
		out = append(out, prov)
	}
	return out
}

// processingTags maps MSH-11 (PT[Meta]): the processing id (table 0103: P production, T
// training, D debugging) and mode (table 0207) as meta tags, so that a consumer can tell a
// training message from a production one.
func processingTags(pt Value) []Coding {
	var tags []Coding
	if id := pt.Get(1); id != "" {
		tags = append(tags, Coding{System: "http://terminology.hl7.org/CodeSystem/v2-0103", Code: id})
	}
	if mode := pt.Get(2); mode != "" {
		tags = append(tags, Coding{System: "http://terminology.hl7.org/CodeSystem/v2-0207", Code: mode})
	}
	return tags
}

// endpoint maps an HD application (MSH-3, MSH-5) to a message endpoint (the IG's
// HD[MessageHeader.source-endpoint]): the universal id as a URI (urn:oid:, urn:uuid:, or the
// URI itself). v2 rarely has a universal id: the namespace id then names the application as
// urn:id:<namespace>, the rule identifier systems follow (HDSystem). ok is false for an empty
// HD.
func endpoint(hd Value) (e messageEndpoint, ok bool) {
	e = messageEndpoint{Name: hd.Get(1), Endpoint: HDSystem(hd, nil)}
	return e, e.Endpoint != ""
}

// trailerEntry makes an entry for a resource without a business identifier, keyed on the
// message: its fullUrl, and so its id on the owner (PUT Type/id), derive from the type and the
// message's identity, its sender (MSH-3, MSH-4) and MSH-10. Control ids are unique per sender
// only: two senders' message 1 must not overwrite each other's MessageHeader.
func (b *Builder) trailerEntry(typ string, resource any) *entry {
	msh := b.Msg.Segment("MSH", 1)
	app, fac := FieldValue(msh, 3), FieldValue(msh, 4)
	sender := app.Get(1) + "^" + app.Get(2) + "|" + fac.Get(1) + "^" + fac.Get(2)
	return &entry{typ: typ, resource: resource, fullURL: b.fullURL(typ, Identifier{System: sender, Value: "message"})}
}
