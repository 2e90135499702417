package mapping

import "github.com/nhp/interop/internal/fhir"

// FHIR R4 shapes of the document family (MDM): DocumentReference.

// ProfileUSCoreDocumentReference is US Core 6.1's DocumentReference. It is claimed only by a
// DocumentReference whose every attachment carries its data or a URL (us-core-6): a
// notification without content does not meet it. See documentMeta.
const ProfileUSCoreDocumentReference = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"

// SystemV2Document keys a document without TXA-12 (unique document number) and TXA-16 (unique
// file name): "<patient system>|<patient id>|<TXA-2.1 document type>|<TXA-6 origination
// time as written>", which every message about the document repeats; without TXA-6 the last
// part is "MSH-10:<message control id>", which only a resend of the message repeats.
const SystemV2Document = "https://interop.nhp.health/fhir/sid/v2-document"

type documentReference struct {
	ResourceType     string            `json:"resourceType"`
	Meta             fhir.Meta         `json:"meta"`
	MasterIdentifier *Identifier       `json:"masterIdentifier,omitempty"`
	Identifier       []Identifier      `json:"identifier"`
	Status           string            `json:"status"`
	StatusElement    *Element          `json:"_status,omitempty"`
	DocStatus        string            `json:"docStatus,omitempty"`
	Type             *CodeableConcept  `json:"type"`
	Category         []CodeableConcept `json:"category"`
	Subject          *Reference        `json:"subject"`
	Date             string            `json:"date,omitempty"`
	Author           []*Reference      `json:"author,omitempty"`
	Authenticator    *Reference        `json:"authenticator,omitempty"`
	RelatesTo        []docRelatesTo    `json:"relatesTo,omitempty"`
	Description      string            `json:"description,omitempty"`
	SecurityLabel    []CodeableConcept `json:"securityLabel,omitempty"`
	Content          []docContent      `json:"content"`
	Context          *docContext       `json:"context,omitempty"`
}

type docRelatesTo struct {
	Code   string    `json:"code"`
	Target Reference `json:"target"`
}

type docContent struct {
	Attachment docAttachment `json:"attachment"`
}

// docAttachment is an Attachment that may carry a data-absent-reason (a notification that
// announces a document without its content).
type docAttachment struct {
	Extension   []Extension `json:"extension,omitempty"`
	ContentType string      `json:"contentType,omitempty"`
	Data        string      `json:"data,omitempty"`
	URL         string      `json:"url,omitempty"`
}

type docContext struct {
	Encounter []*Reference `json:"encounter,omitempty"`
	Related   []*Reference `json:"related,omitempty"`
}
