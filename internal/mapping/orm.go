package mapping

func init() {
	RegisterMessage("ORM_O01", mapORM)
}

// mapORM maps a general order (IG ORM_O01): the patient, the visit when there is a PV1, then
// per ORC/OBR the ServiceRequest, with the order's OBX as its supporting information. The
// ServiceRequest is a conditional update: ORC-1/ORC-5 move it through its statuses (new,
// held, cancelled, completed) across messages.
func mapORM(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	if err := mapEncounter(b, b.Msg.Type().Trigger); err != nil {
		return err
	}
	mapOrders(b, false)
	return b.MapSegments()
}
