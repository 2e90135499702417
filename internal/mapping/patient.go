package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

type patient struct {
	ResourceType string       `json:"resourceType"`
	Meta         fhir.Meta    `json:"meta"`
	Identifier   []identifier `json:"identifier"`
	Name         []humanName  `json:"name,omitempty"`
	Gender       string       `json:"gender,omitempty"`
	BirthDate    string       `json:"birthDate,omitempty"`
}

type identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *codeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type humanName struct {
	Use    string   `json:"use,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
}

// v2 table 0001 (administrative sex) → FHIR administrative-gender: the V2-to-FHIR IG ConceptMap
// AdministrativeSex (N "not applicable" is "other", not "unknown").
var genders = map[string]string{"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}

// v2 table 0200 (name type) → FHIR name-use: the V2-to-FHIR IG ConceptMap NameType. Codes it
// leaves unmapped (A assigned/alias, B birth, C adopted, …) get no use rather than a guess.
var nameUses = map[string]string{
	"L": "official", "R": "official", "D": "usual", "M": "maiden", "N": "nickname",
	"MSK": "anonymous", "BAD": "old", "NAV": "temp", "TEMP": "temp",
}

const maxRepetitions = 100

func (b *builder) patient() error {
	m := b.msg
	p := patient{ResourceType: "Patient", Meta: b.meta(ProfileUSCorePatient)}
	for r := 1; r <= maxRepetitions; r++ {
		value, ok := m.Lookup(fmt.Sprintf("PID-3(%d).1", r))
		if !ok {
			break
		}
		if value == "" {
			continue
		}
		p.Identifier = append(p.Identifier, cxIdentifier(m, "PID-3("+strconv.Itoa(r)+")", value))
	}
	if len(p.Identifier) == 0 {
		return fmt.Errorf("%w: PID-3 has no identifier value", ErrUnmappable)
	}
	for r := 1; r <= maxRepetitions; r++ {
		base := "PID-5(" + strconv.Itoa(r) + ")"
		if _, ok := m.Lookup(base); !ok {
			break
		}
		n := humanName{Family: m.Get(base + ".1.1"), Use: nameUses[m.Get(base+".7")]}
		n.Given = nonEmpty(m.Get(base+".2"), m.Get(base+".3"))
		n.Suffix = nonEmpty(m.Get(base + ".4"))
		n.Prefix = nonEmpty(m.Get(base + ".5"))
		if n.Family != "" || len(n.Given) > 0 {
			p.Name = append(p.Name, n)
		}
	}
	p.Gender = genders[strings.ToUpper(m.Get("PID-8"))]
	if dob := m.Get("PID-7.1"); dob != "" {
		t, prec, err := hl7v2.ParseTime(dob)
		if err != nil {
			return fmt.Errorf("%w: PID-7 birth date %q: %v", ErrUnmappable, dob, err)
		}
		p.BirthDate = fhirDate(t, prec)
	}
	key := primaryIdentifier(p.Identifier)
	return b.addUpdate("Patient", p, fhir.Identifier{System: key.System, Value: key.Value})
}

// cxIdentifier maps a CX (PID-3 repetition at base). The system comes from the assigning
// authority (CX-4): its universal id as urn:oid: when ISO, as is when a URI, else the
// namespace id as urn:id:<namespace>. Tenants' national systems come with the mapping issue.
func cxIdentifier(m *hl7v2.Message, base, value string) identifier {
	id := identifier{Value: value}
	ns, uid, uidType := m.Get(base+".4.1"), m.Get(base+".4.2"), strings.ToUpper(m.Get(base+".4.3"))
	switch {
	case uid != "" && uidType == "ISO":
		id.System = "urn:oid:" + uid
	case uid != "" && (uidType == "URI" || strings.Contains(uid, "://")):
		id.System = uid
	case ns != "":
		id.System = "urn:id:" + ns
	}
	if code := m.Get(base + ".5"); code != "" {
		id.Type = &codeableConcept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0203", Code: code}}}
		if code == "MR" {
			id.Use = "usual"
		}
	}
	return id
}

// primaryIdentifier picks the conditional key: the first medical record number, else the first.
func primaryIdentifier(ids []identifier) identifier {
	for _, id := range ids {
		if id.Type != nil && len(id.Type.Coding) > 0 && id.Type.Coding[0].Code == "MR" {
			return id
		}
	}
	return ids[0]
}

func fhirDate(t time.Time, p hl7v2.Precision) string {
	switch {
	case p <= hl7v2.PrecisionYear:
		return t.Format("2006")
	case p == hl7v2.PrecisionMonth:
		return t.Format("2006-01")
	default:
		return t.Format("2006-01-02")
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
