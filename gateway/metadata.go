package gateway

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// servedTypes are the resource types the facade declares: what the HL7 v2 mappings produce.
var servedTypes = []string{
	"AllergyIntolerance", "Condition", "Coverage", "DiagnosticReport", "Encounter", "Immunization",
	"Location", "Observation", "Organization", "Patient", "Practitioner", "Procedure",
	"RelatedPerson", "ServiceRequest", "Specimen",
}

// metadata answers the CapabilityStatement. It is open: clients read it before they have a token.
func (h *handlers) metadata(c echo.Context) error {
	type param struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	type interaction struct {
		Code string `json:"code"`
	}
	type resource struct {
		Type              string        `json:"type"`
		Interaction       []interaction `json:"interaction"`
		ConditionalCreate bool          `json:"conditionalCreate"`
		SearchParam       []param       `json:"searchParam"`
	}
	resources := make([]resource, 0, len(servedTypes))
	for _, t := range servedTypes {
		resources = append(resources, resource{
			Type:              t,
			Interaction:       []interaction{{"read"}, {"search-type"}, {"create"}},
			ConditionalCreate: true,
			SearchParam:       []param{{"identifier", "token"}, {"_id", "token"}, {"_count", "number"}},
		})
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         time.Now().UTC().Format("2006-01-02"),
		"kind":         "instance",
		"publisher":    "Interop Service",
		"software":     map[string]string{"name": "interop"},
		"implementation": map[string]string{
			"description": "Interop Service FHIR R4 facade", "url": h.d.BaseURL + "/fhir",
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json"},
		"rest": []map[string]any{{
			"mode": "server",
			"security": map[string]any{
				"service": []map[string]any{{"coding": []map[string]string{{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
				}}}},
				"description": "Bearer JWT with claims tenant and scope (SMART v2 system scopes, e.g. system/Patient.rs).",
			},
			"resource": resources,
		}},
	}
	return fhirJSON(c, http.StatusOK, cs)
}
