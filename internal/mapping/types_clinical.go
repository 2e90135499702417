package mapping

import "github.com/nhp/interop/internal/fhir"

// FHIR R4 resources and elements of the clinical segment families (VXU, AL1, DG1, PR1, IN1).
// Field order is JSON output order.

// Derived-key systems of the clinical families: used when v2 has no business identifier for
// the resource. Each value is built only from what the sender wrote (see the functions that
// build them), so the same fact in a later message converges on the same resource.
const (
	// SystemV2Immunization keys an Immunization without ORC-3/ORC-2:
	// "<patient system>|<patient id>|<RXA-5 system>|<RXA-5 code>|<RXA-3>".
	SystemV2Immunization = "https://interop.nhp.health/fhir/sid/v2-immunization"
	// SystemV2ImmunizationObservation keys an Observation of a VXU order group:
	// "<immunization key system>|<immunization key value>|<OBX-3 code>|<OBX-4 sub-id>".
	SystemV2ImmunizationObservation = "https://interop.nhp.health/fhir/sid/v2-immunization-observation"
	// SystemV2Allergy keys an AllergyIntolerance: "<patient system>|<patient id>|<AL1-3 system>|<AL1-3 code>".
	SystemV2Allergy = "https://interop.nhp.health/fhir/sid/v2-allergy"
	// SystemV2Condition keys a Condition without DG1-20: "<patient system>|<patient id>|<DG1-3
	// system>|<DG1-3 code>|<visit key system>|<visit key value>".
	SystemV2Condition = "https://interop.nhp.health/fhir/sid/v2-condition"
	// SystemV2Procedure keys a Procedure without PR1-19: "<patient system>|<patient id>|<PR1-3
	// system>|<PR1-3 code>|<PR1-5>".
	SystemV2Procedure = "https://interop.nhp.health/fhir/sid/v2-procedure"
	// SystemV2Coverage keys a Coverage without a member id that has a system: "<patient
	// system>|<patient id>|<IN1-3 company id>|<IN1-4 company name>|<IN1-2 plan id>|<IN1-36
	// policy number>".
	SystemV2Coverage = "https://interop.nhp.health/fhir/sid/v2-coverage"
)

// US Core 6.1 and IPS profiles of the clinical families.
const (
	ProfileUSCoreImmunization                = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization"
	ProfileIPSImmunization                   = "http://hl7.org/fhir/uv/ips/StructureDefinition/Immunization-uv-ips"
	ProfileUSCoreAllergyIntolerance          = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"
	ProfileUSCoreConditionEncounterDiagnosis = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"
	ProfileUSCoreProcedure                   = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"
	ProfileUSCoreCoverage                    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage"
)

func init() {
	// Declared from here so that adding the clinical families touches no shared file.
	baseProfiles["Immunization"] = []string{ProfileUSCoreImmunization, ProfileIPSImmunization}
	baseProfiles["AllergyIntolerance"] = []string{ProfileUSCoreAllergyIntolerance}
	baseProfiles["Condition"] = []string{ProfileUSCoreConditionEncounterDiagnosis}
	baseProfiles["Procedure"] = []string{ProfileUSCoreProcedure}
	baseProfiles["Coverage"] = []string{ProfileUSCoreCoverage}
}

// clinicalRef is a Reference that may carry data-absent-reason, for a required reference
// v2 did not supply (Coverage.payor).
type clinicalRef struct {
	Extension []Extension `json:"extension,omitempty"`
	Reference string      `json:"reference,omitempty"`
	Display   string      `json:"display,omitempty"`
}

// clinicalNote is a FHIR Annotation with text only.
type clinicalNote struct {
	Text string `json:"text"`
}

type immunization struct {
	ResourceType       string                  `json:"resourceType"`
	Meta               fhir.Meta               `json:"meta"`
	Identifier         []Identifier            `json:"identifier"`
	Status             string                  `json:"status"`
	StatusReason       *CodeableConcept        `json:"statusReason,omitempty"`
	VaccineCode        CodeableConcept         `json:"vaccineCode"`
	Patient            *Reference              `json:"patient"`
	Encounter          *Reference              `json:"encounter,omitempty"`
	OccurrenceDateTime string                  `json:"occurrenceDateTime,omitempty"`
	OccurrenceElement  *Element                `json:"_occurrenceDateTime,omitempty"`
	Recorded           string                  `json:"recorded,omitempty"`
	PrimarySource      *bool                   `json:"primarySource,omitempty"`
	PrimarySourceElem  *Element                `json:"_primarySource,omitempty"`
	ReportOrigin       *CodeableConcept        `json:"reportOrigin,omitempty"`
	Location           *Reference              `json:"location,omitempty"`
	Manufacturer       *Reference              `json:"manufacturer,omitempty"`
	LotNumber          string                  `json:"lotNumber,omitempty"`
	ExpirationDate     string                  `json:"expirationDate,omitempty"`
	Site               *CodeableConcept        `json:"site,omitempty"`
	Route              *CodeableConcept        `json:"route,omitempty"`
	DoseQuantity       *Quantity               `json:"doseQuantity,omitempty"`
	Performer          []immunizationPerformer `json:"performer,omitempty"`
	Note               []clinicalNote          `json:"note,omitempty"`
	ReasonCode         []CodeableConcept       `json:"reasonCode,omitempty"`
	Education          []immunizationEducation `json:"education,omitempty"`
	ProgramEligibility []CodeableConcept       `json:"programEligibility,omitempty"`
	FundingSource      *CodeableConcept        `json:"fundingSource,omitempty"`
	Reaction           []immunizationReaction  `json:"reaction,omitempty"`
}

type immunizationPerformer struct {
	Function *CodeableConcept `json:"function,omitempty"`
	Actor    *Reference       `json:"actor"`
}

type immunizationEducation struct {
	DocumentType     string `json:"documentType,omitempty"`
	Reference        string `json:"reference,omitempty"`
	PublicationDate  string `json:"publicationDate,omitempty"`
	PresentationDate string `json:"presentationDate,omitempty"`
}

type immunizationReaction struct {
	Date   string     `json:"date,omitempty"`
	Detail *Reference `json:"detail,omitempty"`
}

// observation is the Observation of an OBX in a VXU order group that has no Immunization
// element (IG VXU_V04: Observation with partOf the Immunization), and of an immunization
// reaction (Immunization.reaction.detail).
type izObservation struct {
	ResourceType         string            `json:"resourceType"`
	Meta                 fhir.Meta         `json:"meta"`
	Identifier           []Identifier      `json:"identifier"`
	PartOf               []Reference       `json:"partOf,omitempty"`
	Status               string            `json:"status"`
	Code                 CodeableConcept   `json:"code"`
	Subject              *Reference        `json:"subject"`
	EffectiveDateTime    string            `json:"effectiveDateTime,omitempty"`
	ValueQuantity        *Quantity         `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *CodeableConcept  `json:"valueCodeableConcept,omitempty"`
	ValueString          string            `json:"valueString,omitempty"`
	ValueDateTime        string            `json:"valueDateTime,omitempty"`
	DataAbsentReason     *CodeableConcept  `json:"dataAbsentReason,omitempty"`
	Note                 []clinicalNote    `json:"note,omitempty"`
	Interpretation       []CodeableConcept `json:"interpretation,omitempty"`
}

type allergyIntolerance struct {
	ResourceType       string            `json:"resourceType"`
	Meta               fhir.Meta         `json:"meta"`
	Identifier         []Identifier      `json:"identifier"`
	ClinicalStatus     *CodeableConcept  `json:"clinicalStatus,omitempty"`
	VerificationStatus *CodeableConcept  `json:"verificationStatus,omitempty"`
	Type               string            `json:"type,omitempty"`
	Category           []string          `json:"category,omitempty"`
	Criticality        string            `json:"criticality,omitempty"`
	Code               CodeableConcept   `json:"code"`
	Patient            *Reference        `json:"patient"`
	Encounter          *Reference        `json:"encounter,omitempty"`
	OnsetDateTime      string            `json:"onsetDateTime,omitempty"`
	Reaction           []allergyReaction `json:"reaction,omitempty"`
}

type allergyReaction struct {
	Manifestation []CodeableConcept `json:"manifestation"`
	Severity      string            `json:"severity,omitempty"`
}

type condition struct {
	ResourceType       string            `json:"resourceType"`
	Meta               fhir.Meta         `json:"meta"`
	Identifier         []Identifier      `json:"identifier"`
	VerificationStatus *CodeableConcept  `json:"verificationStatus,omitempty"`
	Category           []CodeableConcept `json:"category"`
	Code               CodeableConcept   `json:"code"`
	Subject            *Reference        `json:"subject"`
	Encounter          *Reference        `json:"encounter,omitempty"`
	OnsetDateTime      string            `json:"onsetDateTime,omitempty"`
	RecordedDate       string            `json:"recordedDate,omitempty"`
	Asserter           *Reference        `json:"asserter,omitempty"`
}

type procedure struct {
	ResourceType      string               `json:"resourceType"`
	Meta              fhir.Meta            `json:"meta"`
	Identifier        []Identifier         `json:"identifier"`
	Status            string               `json:"status"`
	Category          *CodeableConcept     `json:"category,omitempty"`
	Code              CodeableConcept      `json:"code"`
	Subject           *Reference           `json:"subject"`
	Encounter         *Reference           `json:"encounter,omitempty"`
	PerformedDateTime string               `json:"performedDateTime,omitempty"`
	PerformedElement  *Element             `json:"_performedDateTime,omitempty"`
	Performer         []procedurePerformer `json:"performer,omitempty"`
	Location          *Reference           `json:"location,omitempty"`
	ReasonCode        []CodeableConcept    `json:"reasonCode,omitempty"`
}

type procedurePerformer struct {
	Function *CodeableConcept `json:"function,omitempty"`
	Actor    *Reference       `json:"actor"`
}

type coverage struct {
	ResourceType string           `json:"resourceType"`
	Meta         fhir.Meta        `json:"meta"`
	Identifier   []Identifier     `json:"identifier"`
	Status       string           `json:"status"`
	Type         *CodeableConcept `json:"type,omitempty"`
	Subscriber   *Reference       `json:"subscriber,omitempty"`
	SubscriberID string           `json:"subscriberId,omitempty"`
	Beneficiary  *Reference       `json:"beneficiary"`
	Relationship *CodeableConcept `json:"relationship,omitempty"`
	Period       *Period          `json:"period,omitempty"`
	Payor        []clinicalRef    `json:"payor"`
	Class        []coverageClass  `json:"class,omitempty"`
	Order        int              `json:"order,omitempty"`
}

type coverageClass struct {
	Type  CodeableConcept `json:"type"`
	Value string          `json:"value"`
	Name  string          `json:"name,omitempty"`
}
