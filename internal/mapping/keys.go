package mapping

// Systems of the derived keys this package writes when v2 has no business identifier for a
// resource that later events update. A derived key is built only from what the sender wrote
// and is the same in every message about the same thing, so conditional writes converge.
const (
	// SystemV2Visit keys an Encounter without PV1-19: "<patient system>|<patient id>|<PV1-44>".
	SystemV2Visit = "https://interop.nhp.health/fhir/sid/v2-visit"
	// SystemV2MessageVisit keys the Encounter of an ADT message whose PV1 has a patient class
	// but no visit id and no admit time: "<MSH-3>|<MSH-4>|<MSH-10>" (each HD as
	// "<namespace>^<universal id>", or the namespace alone).
	// It is the one derived key that does not converge across messages (see visitKey).
	SystemV2MessageVisit = "https://interop.nhp.health/fhir/sid/v2-message-visit"
	// SystemV2PatientObservation keys an Observation outside any order (ADT OBX): "<patient
	// system>|<patient id>|<visit key system>|<visit key value>|<OBX-3 system>|<OBX-3
	// code>|<OBX-4 sub-id>"; the visit part is empty when the message maps no Encounter or
	// one keyed on the message (SystemV2MessageVisit).
	SystemV2PatientObservation = "https://interop.nhp.health/fhir/sid/v2-patient-observation"
	// SystemV2Contact keys a RelatedPerson without NK1-12/NK1-33: "<patient system>|<patient
	// id>|<NK1-1 set id>".
	SystemV2Contact = "https://interop.nhp.health/fhir/sid/v2-contact"
	// SystemV2Location keys a Location without PL-10: its path as the sender names it.
	SystemV2Location = "https://interop.nhp.health/fhir/sid/v2-location"
)

// keyOf is the conditional key of an identifier: its system and value alone (a type or period
// on it would not take part in the match).
func keyOf(id Identifier) Identifier { return Identifier{System: id.System, Value: id.Value} }
