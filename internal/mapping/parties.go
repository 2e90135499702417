package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/fhir"
)

// Practitioner, Organization and Location are shared: conditional creates keyed on their
// identifier, one entry per key per Bundle, placed before the resources that reference them.
// A party v2 gives no identifier for is referenced by display only — it cannot be keyed, and
// an unkeyed create would duplicate it on every message.

type practitioner struct {
	ResourceType string       `json:"resourceType"`
	Meta         fhir.Meta    `json:"meta"`
	Identifier   []Identifier `json:"identifier"`
	Name         []HumanName  `json:"name,omitempty"`
}

type organization struct {
	ResourceType string       `json:"resourceType"`
	Meta         fhir.Meta    `json:"meta"`
	Identifier   []Identifier `json:"identifier"`
	Active       *bool        `json:"active,omitempty"`
	Name         string       `json:"name,omitempty"`
}

type location struct {
	ResourceType string           `json:"resourceType"`
	Meta         fhir.Meta        `json:"meta"`
	Identifier   []Identifier     `json:"identifier"`
	Name         string           `json:"name,omitempty"`
	Description  string           `json:"description,omitempty"`
	Mode         string           `json:"mode,omitempty"`
	PhysicalType *CodeableConcept `json:"physicalType,omitempty"`
	PartOf       *Reference       `json:"partOf,omitempty"`
}

// XCN maps an extended composite id and name (XCN[Practitioner]) to a Practitioner entry and
// returns the reference; nil when the XCN is empty. XCN-1 with XCN-9 (assigning authority)
// and XCN-13 (type) is the key.
func (b *Builder) XCN(v Value) *Reference {
	name, hasName := personName(v, 1)
	if hasName {
		name.Use = nameUses[v.Get(10)]
	}
	id := Identifier{Value: v.Get(1)}
	if id.Value == "" {
		if !hasName {
			return nil
		}
		return &Reference{Display: displayName(name)}
	}
	id.System = HDSystem(v.Sub(9), b.Opts.ids())
	if code := v.Get(13); code != "" {
		id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: code}}}
	}
	p := practitioner{ResourceType: "Practitioner", Meta: b.Meta("Practitioner"), Identifier: []Identifier{id}}
	if hasName {
		p.Name = []HumanName{name}
	} else {
		// US Core Practitioner requires a name.
		p.Name = []HumanName{{Extension: Absent()}}
	}
	ref := b.Shared("Practitioner", Identifier{System: id.System, Value: id.Value}, &p)
	if hasName {
		ref.Display = displayName(name)
	}
	return ref
}

// XON maps an extended composite name and id for organizations (XON[Organization]); the id is
// XON-10, else XON-3, with XON-6 the assigning authority. Nil when empty.
func (b *Builder) XON(v Value) *Reference {
	name := v.Get(1)
	id := Identifier{Value: v.Get(10)}
	if id.Value == "" {
		id.Value = v.Get(3)
	}
	if id.Value == "" {
		if name == "" {
			return nil
		}
		return &Reference{Display: name}
	}
	id.System = HDSystem(v.Sub(6), b.Opts.ids())
	if code := v.Get(7); code != "" {
		id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: code}}}
	}
	return b.organization(id, name)
}

// HDOrganization maps an HD (a sending facility, an assigning authority) to an Organization.
func (b *Builder) HDOrganization(v Value) *Reference {
	id, ok := HD(v, b.Opts.ids())
	if !ok {
		return nil
	}
	return b.organization(id, v.Get(1))
}

func (b *Builder) organization(id Identifier, name string) *Reference {
	o := organization{ResourceType: "Organization", Meta: b.Meta("Organization"), Identifier: []Identifier{id}, Name: name}
	if name == "" {
		o.Name = id.Value
	}
	// US Core Organization requires active; an organization that issues messages is active.
	o.Active = boolPtr(true)
	ref := b.Shared("Organization", Identifier{System: id.System, Value: id.Value}, &o)
	ref.Display = o.Name
	return ref
}

// plLevels are PL's location components from the most specific: bed, room, point of care,
// floor, building, facility; with their location-physical-type codes.
var plLevels = [...]struct {
	part int
	code string
}{{3, "bd"}, {2, "ro"}, {1, "wa"}, {8, "lvl"}, {7, "bu"}, {4, "si"}}

// PL maps a person location to a Location for its most specific level (bed, else room, …):
// its identifier is PL-10 when given, else the location's path as the sender names it
// ("facility/building/floor/point of care/room/bed") under SystemV2Location — a derived key
// that is the same in every message naming the same place. Nil when the PL is empty.
func (b *Builder) PL(v Value) *Reference {
	var path []string
	for i := len(plLevels) - 1; i >= 0; i-- {
		if s := v.Sub(plLevels[i].part).Get(1); s != "" {
			path = append(path, s)
		}
	}
	if len(path) == 0 {
		return nil
	}
	loc := location{ResourceType: "Location", Meta: b.Meta("Location"), Mode: "instance", Description: v.Get(9)}
	for _, l := range plLevels {
		if s := v.Sub(l.part).Get(1); s != "" {
			loc.Name = s
			loc.PhysicalType = &CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/location-physical-type", Code: l.code}}}
			break
		}
	}
	key := Identifier{System: SystemV2Location, Value: strings.Join(path, "/")}
	if id, ok := EI(v.Sub(10), b.Opts.ids()); ok {
		key = id
	}
	loc.Identifier = []Identifier{key}
	ref := b.Shared("Location", Identifier{System: key.System, Value: key.Value}, &loc)
	ref.Display = strings.Join(path, "/")
	return ref
}

func displayName(n HumanName) string {
	parts := append(append(append([]string{}, n.Prefix...), n.Given...), n.Family)
	return strings.TrimSpace(strings.Join(nonEmpty(append(parts, n.Suffix...)...), " "))
}
