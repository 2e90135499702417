package mapping

import "github.com/nhp/interop/internal/fhir"

// FHIR R4 shapes of the scheduling family (SIU): Appointment. US Core 6.1 and IPS define no
// Appointment profile, so none is claimed.

type appointment struct {
	ResourceType    string            `json:"resourceType"`
	Meta            fhir.Meta         `json:"meta"`
	Identifier      []Identifier      `json:"identifier"`
	Status          string            `json:"status"`
	ServiceType     []CodeableConcept `json:"serviceType,omitempty"`
	AppointmentType *CodeableConcept  `json:"appointmentType,omitempty"`
	ReasonCode      []CodeableConcept `json:"reasonCode,omitempty"`
	Start           string            `json:"start,omitempty"`
	End             string            `json:"end,omitempty"`
	MinutesDuration int               `json:"minutesDuration,omitempty"`
	Comment         string            `json:"comment,omitempty"`
	BasedOn         []*Reference      `json:"basedOn,omitempty"`
	Participant     []apptParticipant `json:"participant"`
	RequestedPeriod []Period          `json:"requestedPeriod,omitempty"`
}

type apptParticipant struct {
	Type   []CodeableConcept `json:"type,omitempty"`
	Actor  *Reference        `json:"actor,omitempty"`
	Status string            `json:"status"`
	Period *Period           `json:"period,omitempty"`
}
