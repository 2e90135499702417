package mapping

import (
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

type provenance struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         fhir.Meta         `json:"meta"`
	Target       []*Reference      `json:"target"`
	Recorded     string            `json:"recorded"`
	Activity     *CodeableConcept  `json:"activity,omitempty"`
	Agent        []provenanceAgent `json:"agent"`
}

type provenanceAgent struct {
	Type *CodeableConcept `json:"type,omitempty"`
	Who  *Reference       `json:"who"`
}

// provenance maps MSH/EVN to a Provenance of targets (the IG's MSH[Provenance-Source] and
// EVN[Provenance]): recorded is EVN-2 (else MSH-7) as an instant, the activity the trigger
// (EVN-4 reason is dropped), the author the sending facility (MSH-4, else the sending
// application's name) and the enterer EVN-5. recorded and an agent are required and have no
// honest stand-in: a message whose time has no UTC offset (and no tenant zone is configured)
// or that names no sender gets no Provenance, with a note, rather than an invented value.
func (b *Builder) provenance(targets []*Reference) *entry {
	msh, evn := b.Msg.Segment("MSH", 1), b.Msg.Segment("EVN", 1)
	p := &provenance{ResourceType: "Provenance", Meta: b.Meta("Provenance"), Target: targets}
	seg, field, when := evn, 2, FieldValue(evn, 2).Get(1)
	if when == "" {
		seg, field, when = msh, 7, FieldValue(msh, 7).Get(1)
	}
	s, ok := Instant(when, b.Opts.Location)
	if !ok {
		loc := segLocation(seg, field)
		_, prec, err := hl7v2.ParseTime(when)
		switch {
		case when == "":
			b.NoteAt(loc, "empty; no Provenance (recorded is required)")
		case err != nil:
			b.noteBadTime(seg, field, when, err)
			b.NoteAt(loc, "no valid time; no Provenance (recorded is required)")
		case prec < hl7v2.PrecisionMinute:
			b.NoteAt(loc, "%q is not an instant (coarser than a minute); no Provenance", when)
		default:
			b.NoteAt(loc, "%q is not an instant (no UTC offset and no sender zone configured); no Provenance", when)
		}
		return nil
	}
	p.Recorded = s
	if trig := b.Msg.Type().Trigger; trig != "" {
		p.Activity = &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0003", Code: trig}}}
	}
	author := b.HDOrganization(FieldValue(msh, 4))
	if author == nil {
		if app := FieldValue(msh, 3).Get(1); app != "" {
			author = &Reference{Display: app}
		}
	}
	if author != nil {
		p.Agent = append(p.Agent, provenanceAgent{
			Type: &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", Code: "author", Display: "Author"}}},
			Who:  author,
		})
	}
	if evn != nil {
		if who := b.XCN(FieldValue(evn, 5)); who != nil {
			p.Agent = append(p.Agent, provenanceAgent{
				Type: &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", Code: "enterer", Display: "Enterer"}}},
				Who:  who,
			})
		}
	}
	if len(p.Agent) == 0 {
		b.Notef("MSH-3, MSH-4, EVN-5: no sender or enterer to be the Provenance agent; no Provenance")
		return nil
	}
	e := b.trailerEntry("Provenance", p)
	p.ID = e.fullURL[len("urn:uuid:"):]
	return e
}
