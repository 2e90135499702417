package mapping

import "time"

// US Core 6.1 and IPS profile URLs of the resources this package writes. Families add theirs
// to baseProfiles.
const (
	ProfileUSCorePatient       = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
	ProfileUSCoreEncounter     = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
	ProfileUSCoreRelatedPerson = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-relatedperson"
	ProfileUSCorePractitioner  = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"
	ProfileUSCoreOrganization  = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization"
	ProfileUSCoreLocation      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-location"
	ProfileUSCoreProvenance    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
	ProfileIPSPatient          = "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips"
	ProfileIPSPractitioner     = "http://hl7.org/fhir/uv/ips/StructureDefinition/Practitioner-uv-ips"
	ProfileIPSOrganization     = "http://hl7.org/fhir/uv/ips/StructureDefinition/Organization-uv-ips"
)

// baseProfiles are declared on every resource of the type, whatever the tenant. A resource
// type absent here gets no meta.profile from the base set.
var baseProfiles = map[string][]string{
	"Patient":       {ProfileUSCorePatient, ProfileIPSPatient},
	"Encounter":     {ProfileUSCoreEncounter},
	"RelatedPerson": {ProfileUSCoreRelatedPerson},
	"Practitioner":  {ProfileUSCorePractitioner, ProfileIPSPractitioner},
	"Organization":  {ProfileUSCoreOrganization, ProfileIPSOrganization},
	"Location":      {ProfileUSCoreLocation},
	"Provenance":    {ProfileUSCoreProvenance},
}

// ProfileSet is a tenant's national profile set (e.g. AFG-Core): profile URLs declared on top
// of the base ones, and the identifier systems of its national and local authorities.
type ProfileSet struct {
	// Name identifies the set in logs and notes, e.g. "AFG-Core".
	Name string
	// Profiles lists extra profile URLs per resource type.
	Profiles map[string][]string
	// NationalIdentifier maps the national person identifier's assigning authority to the
	// national system URI.
	NationalIdentifier NationalIdentifier
	// IdentifierSystems maps an assigning authority (HD namespace id or universal id) to the
	// identifier system URI to use instead of the default urn:oid:/urn:id: rules.
	IdentifierSystems map[string]string
}

// NationalIdentifier names the authority issuing the national person id and its system.
type NationalIdentifier struct {
	Authority string // CX-4 namespace id or universal id, e.g. "MOPH" or "2.16.4.1"
	System    string // e.g. "http://moph.gov.af/fhir/sid/nid"
}

// Options configures a Mapper. The zero value maps with the base (US Core/IPS) profiles.
type Options struct {
	// Profiles is the tenant's profile set; nil for none.
	Profiles *ProfileSet
	// Location is the zone of the sender's times that carry no UTC offset. Nil means unknown:
	// such times keep only their date (FHIR forbids a time without an offset).
	Location *time.Location
	// MessageResources adds MessageHeader and Provenance entries. They have no business
	// identifier in R4, so they are written with PUT Type/<name-based id>, which the
	// pipeline's conditional-only router refuses today; off until it accepts them.
	MessageResources bool
}

func (o *Options) profiles(typ string) []string {
	base := baseProfiles[typ]
	if o == nil || o.Profiles == nil || len(o.Profiles.Profiles[typ]) == 0 {
		return base
	}
	out := make([]string, 0, len(base)+len(o.Profiles.Profiles[typ]))
	return append(append(out, base...), o.Profiles.Profiles[typ]...)
}

// ids returns the tenant's identifier systems (nil-safe).
func (o *Options) ids() *ProfileSet {
	if o == nil {
		return nil
	}
	return o.Profiles
}
