package mapping

func init() {
	RegisterMessage("OML_O21", mapOML)
}

// mapOML maps a laboratory order (IG OML_O21): the patient, the visit when there is a PV1,
// then per ORDER group the ServiceRequest (ORC, OBR, TQ1-less timing as ORM), its OBX as
// supporting information and its SPM as Specimens the ServiceRequest references (IG
// SPM[Specimen], ServiceRequest.specimen); then the segments other families map (AL1, DG1,
// IN1…). It is the ORM mapping with specimens: an OML_O21 is the v2.5 successor of ORM_O01 for
// lab orders, and ORC-1/ORC-5 move the same ServiceRequest through its statuses.
func mapOML(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	mapRelatedPersons(b)
	if err := mapEncounter(b, b.Msg.Type().Trigger); err != nil {
		return err
	}
	mapOrders(b, false)
	return b.MapSegments()
}
