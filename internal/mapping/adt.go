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
	} {
		RegisterMessage(s, mapADT)
	}
	RegisterMessage("ADT_A39", mapADTMerge) // A39-A42
	RegisterMessage("ADT_A40", mapADTMerge) // pre-2.3.1 name senders still write in MSH-9.3
	RegisterMessage("ADT_A30", mapADTMerge) // A30, A34-A36 (merges before v2.3.1's A39-A42)
}

// personTriggers update the person only: their PV1, when present, is a placeholder.
var personTriggers = map[string]bool{"A28": true, "A29": true, "A31": true}

// mapADT maps the patient, the next of kin, the visit (unless the event is about the person
// only), then any segment a family registered (AL1, DG1, PR1, IN1, OBX…).
func mapADT(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	mapRelatedPersons(b)
	trigger := b.Msg.Type().Trigger
	if !personTriggers[trigger] {
		if err := mapEncounter(b, trigger); err != nil {
			return err
		}
	} else if pv1 := b.Msg.Segment("PV1", 1); pv1 != nil {
		b.MarkHandled(pv1)
	}
	return b.MapSegments()
}
