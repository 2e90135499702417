package mapping

// FHIR R4 datatypes as the mapping writes them. Field order is JSON output order, so Bundles are
// byte-stable; every optional element is omitempty so absent v2 data never becomes an empty
// FHIR element.

// Identifier is a FHIR Identifier.
type Identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *CodeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	// SystemElement marks a system v2 did not give (no assigning authority): US Core
	// requires one and we do not guess it.
	SystemElement *Element   `json:"_system,omitempty"`
	Value         string     `json:"value,omitempty"`
	Period        *Period    `json:"period,omitempty"`
	Assigner      *Reference `json:"assigner,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Extension []Extension `json:"extension,omitempty"`
	Coding    []Coding    `json:"coding,omitempty"`
	Text      string      `json:"text,omitempty"`
}

// Coding is a FHIR Coding. Extension carries data-absent-reason when a required code is missing.
type Coding struct {
	Extension []Extension `json:"extension,omitempty"`
	System    string      `json:"system,omitempty"`
	Version   string      `json:"version,omitempty"`
	Code      string      `json:"code,omitempty"`
	Display   string      `json:"display,omitempty"`
}

// HumanName is a FHIR HumanName.
type HumanName struct {
	Extension []Extension `json:"extension,omitempty"`
	Use       string      `json:"use,omitempty"`
	Text      string      `json:"text,omitempty"`
	Family    string      `json:"family,omitempty"`
	Given     []string    `json:"given,omitempty"`
	Prefix    []string    `json:"prefix,omitempty"`
	Suffix    []string    `json:"suffix,omitempty"`
	Period    *Period     `json:"period,omitempty"`
}

// Address is a FHIR Address.
type Address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Text       string   `json:"text,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
	Period     *Period  `json:"period,omitempty"`
}

// ContactPoint is a FHIR ContactPoint.
type ContactPoint struct {
	Extension []Extension `json:"extension,omitempty"`
	System    string      `json:"system,omitempty"`
	Value     string      `json:"value,omitempty"`
	Use       string      `json:"use,omitempty"`
	Rank      int         `json:"rank,omitempty"`
	Period    *Period     `json:"period,omitempty"`
}

// Reference is a FHIR Reference; within a Bundle Reference is a urn:uuid fullUrl.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Period is a FHIR Period of dateTime strings.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is a FHIR Quantity. Value is kept as the sender's decimal text (json.Number) so
// that precision ("7.10") survives.
type Quantity struct {
	Value      Decimal `json:"value,omitempty"`
	Comparator string  `json:"comparator,omitempty"`
	Unit       string  `json:"unit,omitempty"`
	System     string  `json:"system,omitempty"`
	Code       string  `json:"code,omitempty"`
}

// Range is a FHIR Range.
type Range struct {
	Low  *Quantity `json:"low,omitempty"`
	High *Quantity `json:"high,omitempty"`
}

// Ratio is a FHIR Ratio.
type Ratio struct {
	Numerator   *Quantity `json:"numerator,omitempty"`
	Denominator *Quantity `json:"denominator,omitempty"`
}

// Attachment is a FHIR Attachment.
type Attachment struct {
	ContentType string `json:"contentType,omitempty"`
	Data        string `json:"data,omitempty"`
	Title       string `json:"title,omitempty"`
}

// Extension is a FHIR extension with the value types the mapping writes.
type Extension struct {
	URL                  string           `json:"url"`
	Extension            []Extension      `json:"extension,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
	ValueCoding          *Coding          `json:"valueCoding,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueAddress         *Address         `json:"valueAddress,omitempty"`
	ValueReference       *Reference       `json:"valueReference,omitempty"`
}

// Element is the extension holder of a FHIR primitive ("_gender": {"extension": […]}).
type Element struct {
	Extension []Extension `json:"extension,omitempty"`
}

// ExtDataAbsentReason is the core extension marking a required element v2 did not supply.
const ExtDataAbsentReason = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

// Absent returns a data-absent-reason extension with reason "unknown": the source did not say,
// which is all a v2 message lets us claim.
func Absent() []Extension {
	return []Extension{{URL: ExtDataAbsentReason, ValueCode: "unknown"}}
}

// AbsentElement is Absent for a primitive's "_element".
func AbsentElement() *Element { return &Element{Extension: Absent()} }

func boolPtr(v bool) *bool { return &v }
