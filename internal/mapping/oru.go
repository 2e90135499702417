package mapping

func init() {
	RegisterMessage("ORU_R01", mapORU)
}

// mapORU maps an unsolicited observation result (IG ORU_R01): the patient, the visit when
// there is a PV1, then per order the ServiceRequest, Specimens, Observations and the
// DiagnosticReport; then any segment another family registered (e.g. a PID-level NTE).
// Results are conditional updates, so a correction (OBX-11 C, OBR-25 C) replaces the
// preliminary result it corrects.
func mapORU(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	if err := mapEncounter(b, b.Msg.Type().Trigger); err != nil {
		return err
	}
	mapOrders(b, true)
	return b.MapSegments()
}
