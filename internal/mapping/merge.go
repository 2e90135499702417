package mapping

// mapMerge maps MRG of an A40 (merge patient — patient identifier list): the surviving
// Patient (PID) gets link "replaces" to the prior one (MRG-1), and the prior one is updated to
// active=false with link "replaced-by". Links reference by identifier, not urn:uuid: the two
// Patients refer to each other, and entries may only reference earlier ones.
//
// The prior Patient is a conditional update carrying only what MRG holds (identifier, MRG-7
// name): the transaction format has no patch, and a merged-away record is kept only to
// redirect to the survivor.
func mapMerge(b *Builder) error {
	mrg := b.Msg.Segment("MRG", 1)
	if mrg == nil {
		return Unmappable("MRG", "%s has no MRG segment", b.Msg.Type())
	}
	b.MarkHandled(mrg)
	var prior []Identifier
	for v := range Repetitions(mrg, 1) {
		if id, ok := CX(v, b.Opts.ids()); ok {
			prior = append(prior, id)
		}
	}
	oldKey, ok := primaryIdentifier(prior)
	if !ok {
		return Unmappable("MRG-1", "no prior patient identifier value")
	}
	oldKey = Identifier{System: oldKey.System, Value: oldKey.Value}
	if oldKey == b.PatientKey() {
		return Unmappable("MRG-1", "prior patient identifier %s equals the surviving PID-3", oldKey.System+"|"+oldKey.Value)
	}
	survivor := b.byKey[entryKey{"Patient", b.patientKey.System, b.patientKey.Value}].resource.(*patient)
	sk := b.PatientKey()
	survivor.Link = append(survivor.Link, patientLink{Other: Reference{Type: "Patient", Identifier: &oldKey}, Type: "replaces"})

	old := &patient{ResourceType: "Patient", Meta: b.Meta("Patient"), Identifier: prior, Active: boolPtr(false)}
	for v := range Repetitions(mrg, 7) {
		if n, ok := XPN(v); ok {
			old.Name = append(old.Name, n)
		}
	}
	if len(old.Name) == 0 {
		old.Name = []HumanName{{Extension: Absent()}}
		// US Core 5.0.1 evaluates us-core-6 on Patient, not Patient.name (6.1 fixed the context):
		// the resource-level reason keeps the record valid for validators of either version.
		old.Extension = Absent()
	}
	old.GenderElement = AbsentElement()
	old.Link = []patientLink{{Other: Reference{Type: "Patient", Identifier: &sk}, Type: "replaced-by"}}
	b.Update("Patient", oldKey, old)
	return nil
}
