package fhirapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/mapping"
	"github.com/nhp/interop/internal/routing"
)

// baseProfiles are the profiles the HL7 v2 mappings declare (US Core 6.1 and IPS), by type.
var baseProfiles = map[string][]string{
	"Patient":       {mapping.ProfileUSCorePatient, mapping.ProfileIPSPatient},
	"Encounter":     {mapping.ProfileUSCoreEncounter},
	"RelatedPerson": {mapping.ProfileUSCoreRelatedPerson},
	"Practitioner":  {mapping.ProfileUSCorePractitioner, mapping.ProfileIPSPractitioner},
	"Organization":  {mapping.ProfileUSCoreOrganization, mapping.ProfileIPSOrganization},
	"Location":      {mapping.ProfileUSCoreLocation},
	"Provenance":    {mapping.ProfileUSCoreProvenance},
}

// gatewayInteractions are the type interactions the gateway routes, whoever owns the type.
var gatewayInteractions = []string{"read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"}

// baseSearchParams are searchable on every type the built-in store holds, and forwarded for
// types owned elsewhere.
var baseSearchParams = []fhirserver.SearchParam{
	{Name: "_id", Type: "token"}, {Name: "_lastUpdated", Type: "date"}, {Name: "identifier", Type: "token"},
}

type capabilityResource struct {
	fhirserver.CapabilityResource
	SupportedProfile []string            `json:"supportedProfile,omitempty"`
	Documentation    string              `json:"documentation,omitempty"`
	Operation        []map[string]string `json:"operation,omitempty"`
}

// metadata answers the CapabilityStatement. It is open: clients read it before they have a
// token. With a valid token it describes the caller tenant's routing table; without one, the
// process default (every type the built-in store holds). It states what the built-in store
// can do, the types the routing table names, the US Core / IPS (and the tenant's national)
// profiles, batch and transaction, $export only when that route is served, and SMART
// security.
func (g *fhirGateway) metadata(c echo.Context) error {
	table := routing.Table{Default: g.d.DefaultOwner}
	tenant := ""
	if scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") && g.d.Auth != nil {
		if p, err := g.d.Auth.Verify(token); err == nil {
			if t, err := g.tables.get(c.Request().Context(), p.Tenant); err == nil {
				table, tenant = t, p.Tenant
			}
		}
	}
	store := fhirserver.Capabilities()
	byType := map[string]fhirserver.CapabilityResource{}
	for _, r := range store.Rest[0].Resource {
		byType[r.Type] = r
	}
	var types []string
	if table.Default != "" || hasAnyRule(table) {
		// A default owner serves every type: declare what the built-in store indexes.
		for t := range byType {
			types = append(types, t)
		}
	}
	for _, r := range table.Rules {
		if r.ResourceType != routing.AnyType && !slices.Contains(types, r.ResourceType) {
			types = append(types, r.ResourceType)
		}
	}
	exports := routeServed(c.Echo(), http.MethodGet, "/fhir/$export")
	if owner, err := table.Owner("Group", ""); exports && err == nil && owner == routing.Builtin && !slices.Contains(types, "Group") {
		types = append(types, "Group") // group-level $export reads its members from the store
	}
	slices.Sort(types)
	var national map[string][]string
	if tenant != "" && g.opts.Profiles != nil {
		national = g.opts.Profiles(tenant)
	}
	resources := make([]capabilityResource, 0, len(types))
	for _, t := range types {
		owners, err := table.Owners(t)
		if err != nil {
			continue
		}
		r, known := byType[t]
		if !known || owners[0] != routing.Builtin || len(owners) > 1 {
			// Owned elsewhere: what the gateway routes, and the parameters every owner takes.
			sp := baseSearchParams
			if known {
				sp = r.SearchParam
			}
			r = fhirserver.CapabilityResource{Type: t, Versioning: "versioned", ReadHistory: true, UpdateCreate: true,
				ConditionalCreate: true, ConditionalUpdate: true, SearchParam: sp}
		}
		r.Interaction = nil
		for _, code := range gatewayInteractions {
			r.Interaction = append(r.Interaction, fhirserver.Code{Code: code})
		}
		r.ConditionalDelete = "single" // routed to the one owner of the criteria; see conditionalDeleteOwner
		cr := capabilityResource{CapabilityResource: r}
		cr.SupportedProfile = append(slices.Clone(baseProfiles[t]), national[t]...)
		if table.IsSplit(t) {
			var cats []string
			for _, rule := range table.Rules {
				if rule.ResourceType == t {
					cats = append(cats, rule.Category)
				}
			}
			cr.Documentation = "Owned by category (" + strings.Join(cats, ", ") + "): a write routes by the resource's category; " +
				"a read by id asks every owner; a search without category merges every owner's results (_summary=count sums their totals; sortable by " +
				"_lastUpdated, _id, date, status, code, identifier, patient, subject, birthdate); its history merges every " +
				"owner's, newest first; a conditional delete must name one owner's category."
		}
		resources = append(resources, cr)
	}
	security := map[string]any{
		"cors": false,
		"service": []map[string]any{{"coding": []map[string]string{{
			"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
		}}}},
		"description": "Bearer JWT with claims tenant and scope (SMART v2 system scopes, e.g. system/Patient.rs, system/*.cruds), checked per interaction and resource type.",
	}
	if g.opts.TokenURL != "" {
		security["extension"] = []map[string]any{{
			"url":       "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
			"extension": []map[string]string{{"url": "token", "valueUri": g.opts.TokenURL}},
		}}
	}
	rest := map[string]any{
		"mode": "server",
		"documentation": "Search parameters a type's owner does not support are refused with 400 by default (Prefer: handling=strict). " +
			"With Prefer: handling=lenient they are ignored, reported in an OperationOutcome entry (search mode outcome), and left out of the self and next links. " +
			"Resources other than the matches of the searched type (_include) need read on their own type; without it they are left out, reported the same way (suppressed).",
		"security":    security,
		"resource":    resources,
		"interaction": []fhirserver.Code{{Code: "batch"}, {Code: "transaction"}, {Code: "history-system"}},
	}
	if exports {
		rest["operation"] = []map[string]string{{
			"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
		}}
		// The IG's patient- and group-level operations, on their resource types.
		for i, r := range resources {
			switch r.Type {
			case "Patient":
				resources[i].Operation = []map[string]string{{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}}
			case "Group":
				resources[i].Operation = []map[string]string{{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}}
			}
		}
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         time.Now().UTC().Format("2006-01-02"),
		"kind":         "instance",
		"publisher":    "Interop Service",
		"software":     map[string]string{"name": "interop"},
		"implementation": map[string]string{
			"description": "Interop Service FHIR R4 facade", "url": g.base,
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json"},
		"rest":        []map[string]any{rest},
	}
	if exports {
		cs["instantiates"] = []string{"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"}
	}
	res, err := jsonResult(http.StatusOK, cs)
	if err != nil {
		return err
	}
	return writeResult(c, res)
}

// hasAnyRule reports whether the table has a '*' rule (a tenant default owner).
func hasAnyRule(t routing.Table) bool {
	for _, r := range t.Rules {
		if r.ResourceType == routing.AnyType {
			return true
		}
	}
	return false
}

// routeServed reports whether e serves method on path.
func routeServed(e *echo.Echo, method, path string) bool {
	for _, r := range e.Routes() {
		if r.Method == method && r.Path == path {
			return true
		}
	}
	return false
}
