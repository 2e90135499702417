package audit

import (
	"encoding/json"
	"net/url"
	"strings"
)

// patientSearchParams are the search parameters that name a Patient (the compartment's
// links of the types the service stores: subject, patient, and Coverage's beneficiary).
// subject may name a Group too, so its bare ids count only with the :Patient modifier.
var patientSearchParams = []string{"patient", "subject", "beneficiary"}

// PatientsOfSearch are the Patients a search of typ (or of every type: typ "") names in its
// parameters: patient=123, patient=Patient/123, subject=Patient/123, subject:Patient=123,
// beneficiary=…; for typ Patient, also _id=… (comma-separated values are each a Patient).
func PatientsOfSearch(typ string, q url.Values) []string {
	var out []string
	add := func(ref string) {
		if r, ok := PatientRef(ref); ok && !contains(out, r) {
			out = append(out, r)
		}
	}
	for key, values := range q {
		name, modifier, _ := strings.Cut(key, ":")
		for _, v := range values {
			for _, one := range strings.Split(v, ",") {
				one = strings.TrimSpace(one)
				if one == "" {
					continue
				}
				switch {
				case typ == "Patient" && (name == "_id" || name == "id") && modifier == "":
					add("Patient/" + one)
				case contains(patientSearchParams, name) && (modifier == "" || modifier == "Patient"):
					if strings.Contains(one, "/") {
						add(one)
					} else if name == "patient" || modifier == "Patient" {
						add("Patient/" + one)
					}
				}
			}
		}
	}
	return out
}

// PatientsOfResource are the Patients a resource (JSON) belongs to: itself when it is a
// Patient with an id, else the Patient its subject, patient or beneficiary references. Only
// those elements are read; a body that is not a resource names none.
func PatientsOfResource(body []byte) []string {
	var r struct {
		ResourceType string                      `json:"resourceType"`
		ID           string                      `json:"id"`
		Subject      *struct{ Reference string } `json:"subject"`
		Patient      *struct{ Reference string } `json:"patient"`
		Beneficiary  *struct{ Reference string } `json:"beneficiary"`
	}
	if len(body) == 0 || json.Unmarshal(body, &r) != nil {
		return nil
	}
	if r.ResourceType == "Patient" {
		if ref, ok := PatientRef("Patient/" + r.ID); ok {
			return []string{ref}
		}
		return nil
	}
	var out []string
	for _, link := range []*struct{ Reference string }{r.Subject, r.Patient, r.Beneficiary} {
		if link == nil {
			continue
		}
		if ref, ok := PatientRef(link.Reference); ok && !contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
