package mapping

import (
	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterMessage("VXU_V04", mapVXU) }

// vxuOrder is one ORDER group of a VXU_V04: ORC, [TIMING], RXA, [RXR], {OBSERVATION}.
type vxuOrder struct {
	orc, rxa, rxr *hl7v2.Segment
	obx           []*hl7v2.Segment
	nte           map[*hl7v2.Segment][]*hl7v2.Segment // NTE after an OBX
}

// mapVXU maps an unsolicited vaccination record update: the patient and next of kin, one
// Immunization per ORDER group, then the segments other families map (IN1 → Coverage, person
// OBX, …) through MapSegments.
//
// PV1 is not mapped to an Encounter here: the IG makes it optional ("only if the system wants
// to know about the encounter"), immunization senders fill it with little more than PV1-20
// (VFC eligibility), and an Encounter is a conditional update: a VXU's sparse PV1 would
// replace the state that the ADT feed owns.
func mapVXU(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	mapRelatedPersons(b)
	for _, name := range []string{"PV1", "PV2"} {
		if seg := b.Msg.Segment(name, 1); seg != nil {
			b.MarkHandled(seg)
		}
	}
	orders, inOrders := vxuOrders(b.Msg)
	// Every segment of the ORDER groups is the immunization's: other families' segment
	// handlers (ORC → ServiceRequest, OBX → Observation) must not map them again.
	for _, seg := range inOrders {
		b.MarkHandled(seg)
	}
	for _, o := range orders {
		if o.rxa == nil {
			b.Notef("ORC(%d): order group without RXA; nothing to map", o.orc.Index())
			continue
		}
		if err := mapImmunization(b, o); err != nil {
			return err
		}
	}
	if err := b.MapSegments(); err != nil {
		return err
	}
	// PERSON_OBSERVATION OBX map only where a family registered an OBX segment handler.
	for _, seg := range b.Msg.Segments("") {
		if seg.Name() == "OBX" && !b.handled[seg] {
			b.Notef("OBX(%d): person observation not mapped", seg.Index())
		}
	}
	return nil
}

// vxuOrders splits the message into ORDER groups. An ORC opens a group; so does an RXA when
// the open group already has one (v2.3 and v2.4 VXUs may omit ORC). Groups without RXA are
// kept, for a note: the RXA is what is reported. inOrders lists every segment from the first
// ORC or RXA on, which VXU_V04 places in ORDER groups.
func vxuOrders(m *hl7v2.Message) (orders []*vxuOrder, inOrders []*hl7v2.Segment) {
	var (
		cur     *vxuOrder
		lastOBX *hl7v2.Segment
	)
	open := func() *vxuOrder {
		cur = &vxuOrder{nte: map[*hl7v2.Segment][]*hl7v2.Segment{}}
		orders = append(orders, cur)
		lastOBX = nil
		return cur
	}
	for _, seg := range m.Segments("") {
		if cur == nil && seg.Name() != "ORC" && seg.Name() != "RXA" {
			continue
		}
		inOrders = append(inOrders, seg)
		switch seg.Name() {
		case "ORC":
			open().orc = seg
		case "RXA":
			if cur == nil || cur.rxa != nil {
				open()
			}
			cur.rxa = seg
		case "RXR":
			if cur.rxa != nil && cur.rxr == nil {
				cur.rxr = seg
			}
		case "OBX":
			if cur.rxa != nil {
				cur.obx = append(cur.obx, seg)
				lastOBX = seg
			}
		case "NTE":
			if lastOBX != nil {
				cur.nte[lastOBX] = append(cur.nte[lastOBX], seg)
			}
		}
	}
	return orders, inOrders
}
