package mapping

import (
	"net/url"
	"strings"
)

// v2-0203 identifier types.
const systemV20203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

// HDSystem maps an HD (assigning authority, facility) to an identifier system URI: its
// universal id as urn:oid: when ISO, as is when a URI, urn:uuid: when a UUID, else the
// namespace id as urn:id:<namespace>. ids, when not nil, overrides by namespace or universal
// id first (tenants' national and local systems). "" when the HD is empty.
func HDSystem(hd parts, ids *ProfileSet) string {
	ns, uid, uidType := hd.Get(1), hd.Get(2), strings.ToUpper(hd.Get(3))
	if s := ids.identifierSystem(ns, uid); s != "" {
		return s
	}
	switch {
	case uid != "" && uidType == "ISO":
		return "urn:oid:" + uid
	case uid != "" && (uidType == "URI" || strings.Contains(uid, "://")):
		return uid
	case uid != "" && uidType == "UUID":
		return "urn:uuid:" + strings.ToLower(uid)
	case ns != "":
		return urnID(ns)
	}
	return ""
}

// urnID makes urn:id:<name> of a local name, percent-encoding what a URI cannot hold
// ("HOMERTON UNIVER" → urn:id:HOMERTON%20UNIVER). "" for "".
func urnID(name string) string {
	if name == "" {
		return ""
	}
	return "urn:id:" + url.PathEscape(name)
}

// CX maps a CX (extended composite id) to an Identifier per the IG's CX[Identifier]: CX-1
// value, CX-4 system (HDSystem), CX-5 type (v2-0203; MR also makes use "usual"), CX-7/CX-8
// period. ok is false when CX-1 is empty: an identifier without a value identifies nothing.
func CX(v Value, ids *ProfileSet) (id Identifier, ok bool) {
	// Senders pad empty fields with a space; FHIR forbids whitespace-only strings.
	id.Value = strings.TrimSpace(v.Get(1))
	if id.Value == "" {
		return Identifier{}, false
	}
	id.System = HDSystem(v.Sub(4), ids)
	if id.System == "" {
		id.SystemElement = AbsentElement()
	}
	if code := v.Get(5); code != "" {
		id.Type = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: code}}}
		if code == "MR" {
			id.Use = "usual"
		}
	}
	id.Period = period(DateTime(v.Get(7), nil), DateTime(v.Get(8), nil))
	return id, true
}

// EI maps an entity identifier (EI, and the EIP halves) to an Identifier: EI-1 value, system
// from EI-2..EI-4 read as an HD (namespace, universal id, its type).
func EI(v Value, ids *ProfileSet) (id Identifier, ok bool) {
	id.Value = strings.TrimSpace(v.Get(1))
	if id.Value == "" {
		return Identifier{}, false
	}
	id.System = HDSystem(shifted{v, 1}, ids)
	return id, true
}

// HD maps an HD to an Identifier whose value is the universal id (or the namespace when there
// is none), as the IG's HD[Identifier] does.
func HD(v Value, ids *ProfileSet) (id Identifier, ok bool) {
	ns, uid, uidType := v.Get(1), v.Get(2), strings.ToUpper(v.Get(3))
	switch {
	case uid != "" && uidType == "ISO":
		return Identifier{System: "urn:ietf:rfc:3986", Value: "urn:oid:" + uid}, true
	case uid != "":
		return Identifier{System: "urn:ietf:rfc:3986", Value: uid}, true
	case ns != "":
		return Identifier{System: HDSystem(v, ids), Value: ns}, true
	}
	return Identifier{}, false
}

// shifted reads the parts of a value from offset+1 on: the HD embedded in EI-2..EI-4.
type shifted struct {
	v   Value
	off int
}

func (s shifted) Get(n int) string { return s.v.Get(n + s.off) }

// parts is what HDSystem needs: numbered string parts.
type parts interface{ Get(n int) string }

func (p *ProfileSet) identifierSystem(ns, uid string) string {
	if p == nil {
		return ""
	}
	if p.NationalIdentifier.System != "" && p.NationalIdentifier.Authority != "" &&
		(ns == p.NationalIdentifier.Authority || uid == p.NationalIdentifier.Authority) {
		return p.NationalIdentifier.System
	}
	if s, ok := p.IdentifierSystems[uid]; ok && uid != "" {
		return s
	}
	if s, ok := p.IdentifierSystems[ns]; ok && ns != "" {
		return s
	}
	return ""
}
