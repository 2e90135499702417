package mapping

import (
	"github.com/nhp/interop/internal/fhir"
)

// patientMerges are the events whose MRG names a prior patient record that is merged into
// the PID's: A39 (merge person, patient id), A40 (merge patient, identifier list) and their
// pre-2.3.1 ADT_A30 forms A30 (merge person information), A34 (patient id only), A36
// (patient id and account number). A35 and A41 merge accounts, A42 visits: they link no
// patients.
var patientMerges = map[string]bool{"A30": true, "A34": true, "A36": true, "A39": true, "A40": true}

// mapADTMerge maps the merge family (ADT_A39: A39–A42; ADT_A30: A30, A34–A36, A46–A49): the surviving
// patient (PID), then, for a patient merge, the merge. An account merge (A35, A41) has no FHIR
// resource to change: accounts are not mapped. A visit merge (A42) maps the surviving visit
// (PV1) and leaves the prior one (MRG-5) as it is: an Encounter has no replaced-by link, and
// giving the survivor the prior visit number would make both Encounters match that key.
func mapADTMerge(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	trigger := b.Msg.Type().Trigger
	if n := len(b.Msg.Segments("MRG")); n > 1 {
		b.Notef("MRG(2): %d merges in one message; only the first (PID(1), MRG(1)) is mapped", n)
	}
	switch {
	case patientMerges[trigger]:
		return mapMerge(b)
	case trigger == "A42":
		if err := mapEncounter(b, trigger); err != nil {
			return err
		}
		b.Notef("MRG: %s visit merge: the prior visit (MRG-5) is not changed; the surviving visit is mapped", trigger)
	case trigger == "A35" || trigger == "A41":
		b.Notef("MRG: %s account merge: accounts are not mapped", trigger)
	default: // A46-A49: a patient's or account's identifier changed
		b.Notef("MRG: %s identifier change: the prior identifier (MRG) is not moved; the patient is mapped as PID-3 names it", trigger)
	}
	if mrg := b.Msg.Segment("MRG", 1); mrg != nil {
		b.MarkHandled(mrg)
	}
	return nil
}

// parameters is a FHIR Parameters resource: here, the body of a FHIRPath Patch.
type parameters struct {
	ResourceType string      `json:"resourceType"`
	Meta         *fhir.Meta  `json:"meta,omitempty"`
	Parameter    []parameter `json:"parameter"`
}

type parameter struct {
	Name           string      `json:"name"`
	ValueCode      string      `json:"valueCode,omitempty"`
	ValueString    string      `json:"valueString,omitempty"`
	ValueBoolean   *bool       `json:"valueBoolean,omitempty"`
	ValueReference *Reference  `json:"valueReference,omitempty"`
	Part           []parameter `json:"part,omitempty"`
}

// patchOp is one FHIRPath Patch operation; value is the value parameter (named "value").
func patchOp(kind, path, name string, value *parameter) parameter {
	op := parameter{Name: "operation", Part: []parameter{{Name: "type", ValueCode: kind}, {Name: "path", ValueString: path}}}
	if name != "" {
		op.Part = append(op.Part, parameter{Name: "name", ValueString: name})
	}
	if value != nil {
		value.Name = "value"
		op.Part = append(op.Part, *value)
	}
	return op
}

// mapMerge maps the MRG of a patient merge: the surviving Patient (PID) gets link "replaces"
// to the prior one (MRG-1), and the prior one becomes active=false with link "replaced-by".
// Links reference by identifier, not urn:uuid: the two Patients refer to each other, and
// entries may only reference earlier ones.
//
// A merge adds to the prior record and restates nothing of it: MRG carries its identifier
// (and at most a name), not its demographics. So the prior Patient is a FHIRPath Patch
// (PATCH Patient?identifier=…), not a conditional update, which would replace the record's
// name, gender, birth date, addresses… with what MRG lacks. The patch sets active=false and
// adds the link, a no-op when applied again; an owner without the prior record changes
// nothing. It carries the merge's event time, so a full update from an older event, processed
// late, does not undo it. MRG-7 (prior name) is the record's name already: not restated.
//
// The survivor's "replaces" link is part of its conditional update, so the survivor's next
// full update (an A08 restating PID) drops it; the prior record's "replaced-by", patched,
// stays, and is what leads from the old identifier to the survivor.
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

	b.Patch("Patient", oldKey, b.linkPatch(&sk, "replaced-by", true))
	return nil
}

// mapADTLink maps A24 (link patient information, ADT_A24): the two patients (PID, then the
// second PID) refer to each other with link "seealso", each added by a FHIRPath Patch as a
// merge's links are; neither record is restated (the message is about the link, and the
// owner may not hold both), and a patient the owner does not hold is not created.
func mapADTLink(b *Builder) error {
	pids := b.Msg.Segments("PID")
	if len(pids) < 2 {
		return Unmappable("PID", "%s links two patients and has %d PID segment(s)", b.Msg.Type(), len(pids))
	}
	var keys [2]Identifier
	for i, pid := range pids[:2] {
		b.MarkHandled(pid)
		k, ok := primaryIdentifier(patientIdentifiers(b, pid))
		if !ok {
			return Unmappable("PID-3", "PID(%d): no identifier value", i+1)
		}
		keys[i] = Identifier{System: k.System, Value: k.Value}
	}
	if keys[0] == keys[1] {
		return Unmappable("PID-3", "both patients are %s", keys[0].System+"|"+keys[0].Value)
	}
	for i, k := range keys {
		other := keys[1-i]
		b.Patch("Patient", k, b.linkPatch(&other, "seealso", false))
	}
	return nil
}

// mapADTUnlink maps A37 (unlink patient information, ADT_A37) to nothing, with a note:
// removing one link of a Patient is a patch with a FHIRPath filter this service does not
// write, and restating either Patient would not remove it.
func mapADTUnlink(b *Builder) error {
	b.Notef("EVN: %s unlink patient information: not applied; no resource is written", b.Msg.Type().Trigger)
	return nil
}

// linkPatch is a FHIRPath Patch adding link (type, to the Patient other) and, for a merged-away
// record, active=false; it carries the message's event time.
func (b *Builder) linkPatch(other *Identifier, typ string, inactive bool) *parameters {
	patch := &parameters{ResourceType: "Parameters"}
	if inactive {
		// delete, then add: a FHIRPath Patch "add" of an element that is present fails on
		// strict servers, and "replace" of one that is absent does.
		patch.Parameter = append(patch.Parameter,
			patchOp("delete", "Patient.active", "", nil),
			patchOp("add", "Patient", "active", &parameter{ValueBoolean: boolPtr(false)}))
	}
	patch.Parameter = append(patch.Parameter, patchOp("add", "Patient", "link", &parameter{Part: []parameter{
		{Name: "other", ValueReference: &Reference{Type: "Patient", Identifier: other}},
		{Name: "type", ValueCode: typ},
	}}))
	if b.metaExt != nil {
		patch.Meta = &fhir.Meta{Extension: b.metaExt}
	}
	return patch
}
