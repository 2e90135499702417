package mapping

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TenantConfig is the mapping configuration of one tenant as operators write it: the national
// profile set and the zone of its senders' clocks.
type TenantConfig struct {
	ProfileSet
	// TimeZone is an IANA zone name (e.g. "Asia/Kabul") for v2 times that carry no offset.
	TimeZone string `json:"timeZone,omitempty"`
}

// Tenants maps tenant ids to their Mappers; tenants it does not name map with the base
// profiles. It is immutable once loaded.
type Tenants struct {
	mappers map[string]*Mapper
}

// AnyTenant is the key of the configuration that applies to tenants the file does not name
// (e.g. the zone of every sender of a national deployment).
const AnyTenant = "*"

// ForTenant returns the Mapper of tenant: its own, else the AnyTenant one, else the default.
func (t *Tenants) ForTenant(tenant string) *Mapper {
	if t != nil {
		if m, ok := t.mappers[tenant]; ok {
			return m
		}
		if m, ok := t.mappers[AnyTenant]; ok {
			return m
		}
	}
	return defaultMapper
}

// LoadTenants reads a JSON object of tenant id → TenantConfig, e.g.
//
//	{"moph-af": {"name": "AFG-Core", "timeZone": "Asia/Kabul",
//	  "profiles": {"Patient": ["http://moph.gov.af/fhir/StructureDefinition/afg-patient"]},
//	  "nationalIdentifier": {"authority": "MOPH", "system": "http://moph.gov.af/fhir/sid/nid"}}}
//
// The key "*" (AnyTenant) configures every tenant not named. Unknown fields, bad zones and relative URLs are errors: a typo must stop the service at
// start, not silently map without the national profile.
func LoadTenants(r io.Reader) (*Tenants, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var raw map[string]TenantConfig
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("mapping tenants: %w", err)
	}
	t := &Tenants{mappers: make(map[string]*Mapper, len(raw))}
	for tenant, cfg := range raw {
		opts, err := cfg.options()
		if err != nil {
			return nil, fmt.Errorf("mapping tenants: tenant %q: %w", tenant, err)
		}
		t.mappers[tenant] = New(opts)
	}
	return t, nil
}

func (c TenantConfig) options() (Options, error) {
	var opts Options
	if c.TimeZone != "" {
		loc, err := LoadZone(c.TimeZone)
		if err != nil {
			return opts, fmt.Errorf("timeZone: %w", err)
		}
		opts.Location = loc
	}
	for typ, urls := range c.Profiles {
		for _, u := range urls {
			if err := absoluteURL(u); err != nil {
				return opts, fmt.Errorf("profiles.%s: %w", typ, err)
			}
		}
	}
	if n := c.NationalIdentifier; n != (NationalIdentifier{}) {
		if n.Authority == "" {
			return opts, fmt.Errorf("nationalIdentifier: authority is empty")
		}
		if err := absoluteURL(n.System); err != nil {
			return opts, fmt.Errorf("nationalIdentifier.system: %w", err)
		}
	}
	for auth, sys := range c.IdentifierSystems {
		if err := absoluteURL(sys); err != nil {
			return opts, fmt.Errorf("identifierSystems.%s: %w", auth, err)
		}
	}
	set := c.ProfileSet
	opts.Profiles = &set
	return opts, nil
}

// zones caches LoadZone: time.LoadLocation reads the zone database on every call, and the Map
// step asks for its connector's zone once per message. Only valid names are kept, so it holds
// at most the few hundred IANA zones.
var zones sync.Map // string → *time.Location

// LoadZone returns the IANA time zone name (e.g. "Asia/Kabul", "UTC") for v2 times without a
// UTC offset: the tenant's timeZone, a connector's settings.timeZone, `hl7 map --tz`. "" and
// "Local" are refused: the zone is a fact of the sender, not of the server mapping it.
func LoadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone name (e.g. \"Asia/Kabul\")", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name (e.g. \"Asia/Kabul\"): %w", name, err)
	}
	zones.Store(name, loc)
	return loc, nil
}

func absoluteURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || strings.ContainsAny(s, " \t") {
		return fmt.Errorf("%q is not an absolute URI", s)
	}
	return nil
}

// NationalProfiles returns the national profiles tenant's resources are mapped to, by resource
// type (nil for none), for its CapabilityStatement.
func (t *Tenants) NationalProfiles(tenant string) map[string][]string {
	m := t.ForTenant(tenant)
	if m.opts.Profiles == nil {
		return nil
	}
	return m.opts.Profiles.Profiles
}
