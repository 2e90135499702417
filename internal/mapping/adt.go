package mapping

func init() {
	// ADT structures (table 0354) and the triggers they carry.
	for _, s := range []string{
		"ADT_A01", // A01, A04, A08, A13
		"ADT_A02",
		"ADT_A03",
		"ADT_A05", // A05, A14, A28, A31
		"ADT_A06", // A06, A07
		"ADT_A09", // A09-A12 before v2.5
		"ADT_A12", // A12 from v2.5
		"ADT_A21", // A21-A23, A25-A27, A29, A32, A33
	} {
		RegisterMessage(s, mapADT)
	}
	RegisterMessage("ADT_A39", mapADTMerge) // A39-A42
	RegisterMessage("ADT_A40", mapADTMerge) // pre-2.3.1 name senders still write in MSH-9.3
	RegisterMessage("ADT_A30", mapADTMerge) // A30, A34-A36, A46-A49 (before v2.3.1's A39-A44)
	RegisterMessage("ADT_A24", mapADTLink)
	RegisterMessage("ADT_A37", mapADTUnlink)
}

// personTriggers update the person only: their PV1, when present, is a placeholder.
var personTriggers = map[string]bool{"A28": true, "A31": true}

// mapADT maps the patient, the next of kin, the visit (unless the event is about the person
// only), then any segment a family registered (AL1, DG1, PR1, IN1, OBX…).
//
// Two events delete rather than state, and a conditional update cannot delete: A29 (delete
// person information) writes nothing at all, since its PID, upserted, would recreate or
// restate the very record the sender deletes; A23 (delete a visit) maps the person but leaves
// the Encounter as it is. Each says so in a note: removing records is the owner's decision.
func mapADT(b *Builder) error {
	trigger := b.Msg.Type().Trigger
	if trigger == "A29" {
		b.Notef("EVN: A29 delete person information: not applied; no resource is written")
		return nil
	}
	if err := mapPatient(b); err != nil {
		return err
	}
	mapRelatedPersons(b)
	switch pv1 := b.Msg.Segment("PV1", 1); {
	case trigger == "A23":
		b.Notef("EVN: A23 delete a visit: not applied; the Encounter is not written")
		fallthrough
	case personTriggers[trigger]:
		if pv1 != nil {
			b.MarkHandled(pv1)
		}
	default:
		if err := mapEncounter(b, trigger); err != nil {
			return err
		}
	}
	return b.MapSegments()
}
