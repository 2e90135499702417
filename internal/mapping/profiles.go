package mapping

import (
	"time"

	"github.com/nhp/interop/internal/fhir"
)

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

// A resource claims a profile in meta.profile only when its content meets the profile: the
// elements the profile makes mandatory are present (a data-absent-reason counts only where the
// profile's constraints accept one) and its mandatory invariants hold. The families put every
// profile a resource of the type may meet in its meta; the Builder then drops, just before
// encoding, each one the finished resource does not meet (settleProfiles), so that a value a
// handler adds late still counts. tools/fhir-validate checks every claim of every golden
// resource with the published StructureDefinitions; the rules below are the subset of those
// the mapping's content can break.

// conformer is a resource that knows which profiles its content meets. A profile it does not
// know (a tenant's national profile) is kept: the tenant asked for it.
type conformer interface {
	meta() *fhir.Meta
	meets(profile string) bool
}

// settleProfiles drops from resource's meta.profile the profiles its content does not meet.
// Meta.Profile may be shared with other resources (Options.profiles returns the base slice),
// so it is never written through: the kept profiles are a capacity-capped subslice when they
// are contiguous (no allocation: the common cases, every claim met or the first one not),
// a copy otherwise.
func settleProfiles(resource any) {
	c, ok := resource.(conformer)
	if !ok {
		return
	}
	m := c.meta()
	first, last, gaps := -1, -1, false
	for i, p := range m.Profile {
		if !c.meets(p) {
			continue
		}
		if first < 0 {
			first = i
		} else if i != last+1 {
			gaps = true
		}
		last = i
	}
	switch {
	case first < 0:
		m.Profile = nil
	case !gaps:
		m.Profile = m.Profile[first : last+1 : last+1]
	default:
		kept := make([]string, 0, last+1-first)
		for _, p := range m.Profile[first : last+1] {
			if c.meets(p) {
				kept = append(kept, p)
			}
		}
		m.Profile = kept
	}
}

// identifiersComplete: us-core-patient, -practitioner and -encounter require system and
// value on every identifier (a data-absent-reason on the system counts: the element exists).
func identifiersComplete(ids []Identifier) bool {
	for i := range ids {
		if ids[i].Value == "" || ids[i].System == "" && ids[i].SystemElement == nil {
			return false
		}
	}
	return true
}

// absentOnly reports whether exts is only a data-absent-reason.
func absentOnly(exts []Extension) bool {
	return len(exts) == 1 && exts[0].URL == ExtDataAbsentReason
}

func (p *patient) meta() *fhir.Meta { return &p.Meta }

func (p *patient) meets(profile string) bool {
	switch profile {
	case ProfileUSCorePatient:
		// us-core-6: each name has a family or given name, or is data-absent.
		for i := range p.Name {
			n := &p.Name[i]
			if (n.Family != "" || len(n.Given) > 0) == absentOnly(n.Extension) {
				return false
			}
		}
		return len(p.Identifier) > 0 && identifiersComplete(p.Identifier) && len(p.Name) > 0 &&
			(p.Gender != "" || p.GenderElement != nil)
	case ProfileIPSPatient:
		// ips-pat-1: every name has a given or family name or a text; birthDate is required
		// (a data-absent-reason allowed).
		for i := range p.Name {
			if n := &p.Name[i]; n.Family == "" && len(n.Given) == 0 && n.Text == "" {
				return false
			}
		}
		return len(p.Name) > 0 && (p.BirthDate != "" || p.BirthDateElement != nil)
	}
	return true
}

func (p *practitioner) meta() *fhir.Meta { return &p.Meta }

func (p *practitioner) meets(profile string) bool {
	switch profile {
	case ProfileUSCorePractitioner:
		// identifier 1..* with system and value; name 1..* with family 1..1.
		for i := range p.Name {
			if p.Name[i].Family == "" {
				return false
			}
		}
		return len(p.Identifier) > 0 && identifiersComplete(p.Identifier) && len(p.Name) > 0
	case ProfileIPSPractitioner:
		return len(p.Name) > 0
	}
	return true
}

func (o *organization) meta() *fhir.Meta { return &o.Meta }

func (o *organization) meets(profile string) bool {
	switch profile {
	case ProfileUSCoreOrganization:
		return o.Active != nil && o.Name != ""
	case ProfileIPSOrganization:
		return o.Name != ""
	}
	return true
}

func (l *location) meta() *fhir.Meta { return &l.Meta }

func (l *location) meets(profile string) bool {
	return profile != ProfileUSCoreLocation || l.Name != ""
}

func (e *encounter) meta() *fhir.Meta { return &e.Meta }

func (e *encounter) meets(profile string) bool {
	return profile != ProfileUSCoreEncounter ||
		identifiersComplete(e.Identifier) && e.Class.Code != "" && len(e.Type) > 0 && e.Subject != nil
}

func (r *relatedPerson) meta() *fhir.Meta { return &r.Meta }

func (r *relatedPerson) meets(profile string) bool {
	return profile != ProfileUSCoreRelatedPerson || (r.Active != nil || r.ActiveElement != nil) && r.Patient != nil
}

func (c *coverage) meta() *fhir.Meta { return &c.Meta }

func (c *coverage) meets(profile string) bool {
	if profile != ProfileUSCoreCoverage {
		return true
	}
	// us-core-15: a member id, as subscriberId or as an identifier of type MB.
	member := c.SubscriberID != ""
	for i := range c.Identifier {
		if t := c.Identifier[i].Type; t != nil {
			for _, cd := range t.Coding {
				member = member || cd.System == systemV20203 && cd.Code == "MB"
			}
		}
	}
	return member && c.Relationship != nil && c.Beneficiary != nil && len(c.Payor) > 0
}

func (s *specimen) meta() *fhir.Meta { return &s.Meta }

func (s *specimen) meets(profile string) bool {
	return profile != ProfileUSCoreSpecimen || s.Type != nil
}

// reportedStatus: the statuses for which US Core reports and results require an effective
// time and (reports) an issued instant (us-core-8, us-core-9).
func reportedStatus(status string) bool {
	switch status {
	case "partial", "preliminary", "final", "amended", "corrected", "appended":
		return true
	}
	return false
}

func (d *diagnosticReport) meta() *fhir.Meta { return &d.Meta }

func (d *diagnosticReport) meets(profile string) bool {
	if profile != ProfileUSCoreDiagnosticReportL {
		return true
	}
	if reportedStatus(d.Status) && (d.Issued == "" || d.EffectiveDateTime == "" && d.EffectiveElement == nil) {
		return false
	}
	return len(d.Category) > 0 && d.Subject != nil && d.Status != ""
}

func (o *observation) meta() *fhir.Meta { return &o.Meta }

func (o *observation) meets(profile string) bool {
	switch profile {
	case ProfileUSCoreObservationLab, ProfileUSCoreClinicalResult, ProfileUSCoreVitalSigns:
		return len(o.Category) > 0 && o.Subject != nil && o.Status != ""
	}
	return true
}

func (p *procedure) meta() *fhir.Meta { return &p.Meta }

func (p *procedure) meets(profile string) bool {
	if profile != ProfileUSCoreProcedure {
		return true
	}
	// us-core-7: a completed or in-progress procedure has a performed time.
	if (p.Status == "completed" || p.Status == "in-progress") && p.PerformedDateTime == "" && p.PerformedElement == nil {
		return false
	}
	return p.Subject != nil && p.Status != ""
}

func (im *immunization) meta() *fhir.Meta { return &im.Meta }

func (im *immunization) meets(profile string) bool {
	switch profile {
	case ProfileUSCoreImmunization, ProfileIPSImmunization:
		// occurrence[x] 1..1 (a data-absent-reason counts), patient 1..1.
		return im.Patient != nil && im.Status != "" && (im.OccurrenceDateTime != "" || im.OccurrenceElement != nil)
	}
	return true
}
