package mapping

import "github.com/nhp/interop/internal/fhir"

// FHIR R4 shapes of the lab family (ORU, ORM): Observation, DiagnosticReport, ServiceRequest,
// Specimen. Field order follows the FHIR element order, so the JSON reads like the spec.

// Profiles of the lab family. Observation profiles depend on the observation's category and
// code (see observationProfiles), so Observation is not in baseProfiles.
const (
	ProfileUSCoreObservationLab    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"
	ProfileUSCoreClinicalResult    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-clinical-result"
	ProfileUSCoreVitalSigns        = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"
	ProfileUSCoreDiagnosticReportL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"
	// ProfileUSCoreDiagnosticReportN is US Core's DiagnosticReport for report and note
	// exchange, claimed by reports that are not (only) lab reports: see reportCategories.
	ProfileUSCoreDiagnosticReportN = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"
	ProfileUSCoreServiceRequest    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest"
	ProfileUSCoreSpecimen          = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-specimen"
)

func init() {
	// DiagnosticReport profiles depend on OBR-24 (lab or note): see reportCategories.
	baseProfiles["ServiceRequest"] = []string{ProfileUSCoreServiceRequest}
	baseProfiles["Specimen"] = []string{ProfileUSCoreSpecimen}
}

// Derived keys of the lab family (see keys.go for the rule they follow).
const (
	// SystemV2Order keys an order (ServiceRequest) and its report (DiagnosticReport):
	// "<number system>|<number>|<OBR-4 system>|<OBR-4 code>" with, for a child order,
	// "|<OBR-26.1 system>|<OBR-26.1 code>|<OBR-26.2>" (see orderKey: an order number is not
	// unique across the OBRs of one accession, the number with the service is); an order
	// with neither placer (ORC-2/OBR-2) nor filler (ORC-3/OBR-3) number: "<patient
	// system>|<patient id>|<OBR-4.1>|<OBR-7>".
	SystemV2Order = "https://interop.nhp.health/fhir/sid/v2-order"
	// SystemV2Observation keys an Observation: "<order key value>|<OBX-3 system>|<OBX-3
	// code>|<OBX-4 sub-id>", the identity of a result within its order, which a correction
	// (OBX-11 C) repeats. The order key is the SystemV2Order key of the DiagnosticReport
	// (filler first) in ORU and of the ServiceRequest in ORM. When two OBX of one order share code and sub-id
	// the later ones get "|#<OBX-1 set id>" appended.
	SystemV2Observation = "https://interop.nhp.health/fhir/sid/v2-observation"
	// SystemV2Specimen keys a Specimen: "<SPM-2 id system>|<SPM-2 id>|<SPM-4 system>|<SPM-4
	// code>" (one id, several types: several specimens), or without SPM-2 "<order key
	// system>|<order key value>|<SPM-1 set id>".
	SystemV2Specimen = "https://interop.nhp.health/fhir/sid/v2-specimen"
)

// ExtObservationValue is the R5 cross-version extension for Observation.value[x], which the
// IG uses for ED and RP values (an Attachment, which R4's value[x] cannot hold).
const ExtObservationValue = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value"

type observation struct {
	ResourceType      string            `json:"resourceType"`
	Meta              fhir.Meta         `json:"meta"`
	Extension         []labExtension    `json:"extension,omitempty"`
	Identifier        []Identifier      `json:"identifier"`
	BasedOn           []*Reference      `json:"basedOn,omitempty"`
	Status            string            `json:"status"`
	Category          []CodeableConcept `json:"category,omitempty"`
	Code              CodeableConcept   `json:"code"`
	Subject           *Reference        `json:"subject"`
	Encounter         *Reference        `json:"encounter,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime,omitempty"`
	EffectiveElement  *Element          `json:"_effectiveDateTime,omitempty"`
	Issued            string            `json:"issued,omitempty"`
	Performer         []*Reference      `json:"performer,omitempty"`
	obsValue
	DataAbsentReason *CodeableConcept  `json:"dataAbsentReason,omitempty"`
	Interpretation   []CodeableConcept `json:"interpretation,omitempty"`
	Note             []annotation      `json:"note,omitempty"`
	BodySite         *CodeableConcept  `json:"bodySite,omitempty"`
	Method           *CodeableConcept  `json:"method,omitempty"`
	Specimen         *Reference        `json:"specimen,omitempty"`
	ReferenceRange   []referenceRange  `json:"referenceRange,omitempty"`
	Component        []obsComponent    `json:"component,omitempty"`
}

// obsValue is Observation.value[x], shared with component.value[x]; at most one field is set.
type obsValue struct {
	ValueQuantity        *Quantity        `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueRange           *Range           `json:"valueRange,omitempty"`
	ValueRatio           *Ratio           `json:"valueRatio,omitempty"`
	ValueTime            string           `json:"valueTime,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValuePeriod          *Period          `json:"valuePeriod,omitempty"`
}

func (v *obsValue) isSet() bool {
	return v.ValueQuantity != nil || v.ValueCodeableConcept != nil || v.ValueString != "" || v.ValueRange != nil ||
		v.ValueRatio != nil || v.ValueTime != "" || v.ValueDateTime != "" || v.ValuePeriod != nil
}

// obsComponent is an Observation.component: one repetition of a repeating OBX-5.
type obsComponent struct {
	Code CodeableConcept `json:"code"`
	obsValue
	DataAbsentReason *CodeableConcept `json:"dataAbsentReason,omitempty"`
}

type referenceRange struct {
	Low  *Quantity `json:"low,omitempty"`
	High *Quantity `json:"high,omitempty"`
	Text string    `json:"text,omitempty"`
}

type annotation struct {
	AuthorReference *Reference `json:"authorReference,omitempty"`
	Time            string     `json:"time,omitempty"`
	Text            string     `json:"text"`
}

// labExtension is an extension whose value is an Attachment (types.go's Extension has none).
type labExtension struct {
	URL             string         `json:"url"`
	ValueAttachment *labAttachment `json:"valueAttachment,omitempty"`
}

// labAttachment is an Attachment with url, which RP (reference pointer) values need.
type labAttachment struct {
	ContentType string `json:"contentType,omitempty"`
	Data        string `json:"data,omitempty"`
	URL         string `json:"url,omitempty"`
	Title       string `json:"title,omitempty"`
}

type diagnosticReport struct {
	ResourceType       string            `json:"resourceType"`
	Meta               fhir.Meta         `json:"meta"`
	Identifier         []Identifier      `json:"identifier"`
	BasedOn            []*Reference      `json:"basedOn,omitempty"`
	Status             string            `json:"status"`
	Category           []CodeableConcept `json:"category"`
	Code               CodeableConcept   `json:"code"`
	Subject            *Reference        `json:"subject"`
	Encounter          *Reference        `json:"encounter,omitempty"`
	EffectiveDateTime  string            `json:"effectiveDateTime,omitempty"`
	EffectiveElement   *Element          `json:"_effectiveDateTime,omitempty"`
	Issued             string            `json:"issued,omitempty"`
	IssuedElement      *Element          `json:"_issued,omitempty"`
	Performer          []*Reference      `json:"performer,omitempty"`
	ResultsInterpreter []*Reference      `json:"resultsInterpreter,omitempty"`
	Specimen           []*Reference      `json:"specimen,omitempty"`
	Result             []*Reference      `json:"result,omitempty"`
	PresentedForm      []labAttachment   `json:"presentedForm,omitempty"`
}

type serviceRequest struct {
	ResourceType       string            `json:"resourceType"`
	Meta               fhir.Meta         `json:"meta"`
	Identifier         []Identifier      `json:"identifier"`
	BasedOn            []*Reference      `json:"basedOn,omitempty"`
	Requisition        *Identifier       `json:"requisition,omitempty"`
	Status             string            `json:"status"`
	Intent             string            `json:"intent"`
	Category           []CodeableConcept `json:"category,omitempty"`
	Priority           string            `json:"priority,omitempty"`
	Code               CodeableConcept   `json:"code"`
	Subject            *Reference        `json:"subject"`
	Encounter          *Reference        `json:"encounter,omitempty"`
	OccurrenceDateTime string            `json:"occurrenceDateTime,omitempty"`
	AuthoredOn         string            `json:"authoredOn,omitempty"`
	Requester          *Reference        `json:"requester,omitempty"`
	ReasonCode         []CodeableConcept `json:"reasonCode,omitempty"`
	SupportingInfo     []*Reference      `json:"supportingInfo,omitempty"`
	Specimen           []*Reference      `json:"specimen,omitempty"`
	Note               []annotation      `json:"note,omitempty"`
}

type specimen struct {
	ResourceType        string            `json:"resourceType"`
	Meta                fhir.Meta         `json:"meta"`
	Identifier          []Identifier      `json:"identifier"`
	AccessionIdentifier *Identifier       `json:"accessionIdentifier,omitempty"`
	Type                *CodeableConcept  `json:"type"`
	Subject             *Reference        `json:"subject"`
	ReceivedTime        string            `json:"receivedTime,omitempty"`
	Request             []*Reference      `json:"request,omitempty"`
	Collection          *specimenCollect  `json:"collection,omitempty"`
	Condition           []CodeableConcept `json:"condition,omitempty"`
	Note                []annotation      `json:"note,omitempty"`
}

type specimenCollect struct {
	CollectedDateTime string           `json:"collectedDateTime,omitempty"`
	CollectedPeriod   *Period          `json:"collectedPeriod,omitempty"`
	Quantity          *Quantity        `json:"quantity,omitempty"`
	Method            *CodeableConcept `json:"method,omitempty"`
	BodySite          *CodeableConcept `json:"bodySite,omitempty"`
}
