package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nhp/interop/internal/fhir"
)

// paramKind is how a search parameter's values are indexed and matched.
type paramKind int

const (
	kindToken     paramKind = iota // system|code: identifiers, codes, codings, plain codes
	kindReference                  // Type/id of a Reference
	kindDate                       // [lo, hi) of a date, dateTime, instant or Period
)

// paramDef defines one search parameter of a resource type: where its values are in the
// resource (dotted element paths, arrays flattened at every step).
type paramDef struct {
	kind  paramKind
	paths []string
	// target, for references, restricts the indexed targets to one type (patient → Patient).
	target string
	// selective marks a parameter whose value names one entity, so that few resources match
	// it (identifier, patient, subject, encounter): a search with one is driven from the
	// parameter's search table (see compileWhere).
	selective bool
}

func token(paths ...string) paramDef { return paramDef{kind: kindToken, paths: paths} }
func date(paths ...string) paramDef  { return paramDef{kind: kindDate, paths: paths} }
func ref(paths ...string) paramDef   { return paramDef{kind: kindReference, paths: paths} }
func patientRef(path string) paramDef {
	return paramDef{kind: kindReference, paths: []string{path}, target: "Patient", selective: true}
}
func selective(d paramDef) paramDef { d.selective = true; return d }
func subjectParams() map[string]paramDef {
	return map[string]paramDef{"subject": selective(ref("subject")), "patient": patientRef("subject")}
}

// commonParams apply to every type: the store indexes identifier everywhere, since conditional
// writes key on it whatever the type.
var commonParams = map[string]paramDef{
	"identifier": selective(token("identifier")),
}

// typeParams are the per-type search parameters (FHIR R4 names and paths), beyond _id,
// _lastUpdated and the common ones. A type not listed has only those.
var typeParams = map[string]map[string]paramDef{
	"Patient": {
		"birthdate": date("birthDate"), "gender": token("gender"), "active": token("active"),
		"general-practitioner": ref("generalPractitioner"), "organization": ref("managingOrganization"),
	},
	"Observation": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("code"), "status": token("status"),
		"date":      date("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
		"encounter": selective(ref("encounter")),
	}),
	"Encounter": with(subjectParams(), map[string]paramDef{
		"date": date("period"), "status": token("status"), "class": token("class"), "type": token("type"),
	}),
	"Immunization": {
		"patient": patientRef("patient"), "date": date("occurrenceDateTime"), "status": token("status"),
		"vaccine-code": token("vaccineCode"),
	},
	"DiagnosticReport": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("code"), "status": token("status"),
		"date": date("effectiveDateTime", "effectivePeriod"), "encounter": selective(ref("encounter")),
	}),
	"Condition": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("code"), "clinical-status": token("clinicalStatus"),
		"date": date("onsetDateTime", "onsetPeriod"), "onset-date": date("onsetDateTime", "onsetPeriod"),
		"encounter": selective(ref("encounter")),
	}),
	"Procedure": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("code"), "status": token("status"),
		"date": date("performedDateTime", "performedPeriod"), "encounter": selective(ref("encounter")),
	}),
	"MedicationRequest": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("medicationCodeableConcept"), "status": token("status"),
		"intent": token("intent"), "authoredon": date("authoredOn"), "encounter": selective(ref("encounter")),
	}),
	"AllergyIntolerance": {
		"patient": patientRef("patient"), "code": token("code"), "clinical-status": token("clinicalStatus"),
		"category": token("category"), "date": date("recordedDate"),
	},
	"ServiceRequest": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "code": token("code"), "status": token("status"),
		"authored": date("authoredOn"), "encounter": selective(ref("encounter")),
	}),
	"DocumentReference": with(subjectParams(), map[string]paramDef{
		"category": token("category"), "type": token("type"), "status": token("status"), "date": date("date"),
	}),
	// The mapping writes RelatedPerson (NK1), Specimen (SPM) and Coverage (IN1) for a patient:
	// finding them by patient is what a client of its output does first.
	"RelatedPerson": {
		"patient": patientRef("patient"), "relationship": token("relationship"), "active": token("active"),
	},
	"Specimen": with(subjectParams(), map[string]paramDef{
		"type": token("type"), "status": token("status"), "accession": token("accessionIdentifier"),
		"collected": date("collection.collectedDateTime", "collection.collectedPeriod"),
	}),
	"Coverage": {
		// R4: patient and beneficiary are both Coverage.beneficiary (a Patient reference).
		"patient": patientRef("beneficiary"), "beneficiary": selective(ref("beneficiary")),
		"subscriber": ref("subscriber"), "payor": ref("payor"), "policy-holder": ref("policyHolder"),
		"status": token("status"), "type": token("type"),
	},
}

func with(a, b map[string]paramDef) map[string]paramDef {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// lookupParam returns the definition of name for typ.
func lookupParam(typ, name string) (paramDef, bool) {
	if d, ok := typeParams[typ][name]; ok {
		return d, true
	}
	d, ok := commonParams[name]
	return d, ok
}

// SearchParams lists the search parameters of typ with their FHIR types (token, reference,
// date), for a CapabilityStatement. _id, _lastUpdated and _summary (count only) are included.
func SearchParams(typ string) map[string]string {
	out := map[string]string{"_id": "token", "_lastUpdated": "date", "_summary": "token"}
	add := func(m map[string]paramDef) {
		for name, d := range m {
			out[name] = [...]string{"token", "reference", "date"}[d.kind]
		}
	}
	add(commonParams)
	add(typeParams[typ])
	return out
}

// IndexedTypes lists the types with type-specific search parameters, sorted. Every other
// valid type is stored and searchable by _id, _lastUpdated and identifier.
func IndexedTypes() []string {
	out := make([]string, 0, len(typeParams))
	for t := range typeParams {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// IncludeParams lists the reference parameters of typ that _include may follow.
func IncludeParams(typ string) []string {
	var out []string
	for name, d := range typeParams[typ] {
		if d.kind == kindReference {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

type tokenValue struct{ param, system, code string }
type refValue struct{ param, typ, id string }
type dateValue struct {
	param  string
	lo, hi time.Time
}

// searchIndex is what one resource version contributes to the search tables.
type searchIndex struct {
	tokens   []tokenValue
	refs     []refValue
	dates    []dateValue
	sortDate time.Time
}

// Bounds of stored dates: no date sorts first, an open Period end is the far future.
var (
	minDate = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// extractIndex computes the search index of a resource of typ. Values of unexpected shapes
// are skipped, not refused: the store keeps what it is sent, and indexes what it understands.
func extractIndex(typ string, body []byte) (searchIndex, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return searchIndex{}, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
	}
	idx := searchIndex{sortDate: minDate}
	index := func(name string, d paramDef) {
		for _, p := range d.paths {
			for _, v := range walk(doc, strings.Split(p, ".")) {
				switch d.kind {
				case kindToken:
					for _, t := range tokensOf(v) {
						t.param = name
						if !slices.Contains(idx.tokens, t) {
							idx.tokens = append(idx.tokens, t)
						}
					}
				case kindReference:
					if r, ok := referenceOf(v); ok && (d.target == "" || r.typ == d.target) {
						r.param = name
						if !slices.Contains(idx.refs, r) {
							idx.refs = append(idx.refs, r)
						}
					}
				case kindDate:
					if lo, hi, ok := dateOf(v); ok {
						idx.dates = append(idx.dates, dateValue{param: name, lo: lo, hi: hi})
						if name == "date" && (idx.sortDate.Equal(minDate) || lo.Before(idx.sortDate)) {
							idx.sortDate = lo
						}
					}
				}
			}
		}
	}
	for name, d := range commonParams {
		index(name, d)
	}
	for name, d := range typeParams[typ] {
		index(name, d)
	}
	return idx, nil
}

// walk returns the values at path under v, flattening arrays at every step.
func walk(v any, path []string) []any {
	switch t := v.(type) {
	case []any:
		var out []any
		for _, e := range t {
			out = append(out, walk(e, path)...)
		}
		return out
	case map[string]any:
		if len(path) == 0 {
			return []any{t}
		}
		child, ok := t[path[0]]
		if !ok {
			return nil
		}
		return walk(child, path[1:])
	default:
		if len(path) == 0 && v != nil {
			return []any{v}
		}
		return nil
	}
}

// tokensOf reads a token value: a code or boolean, a Coding, a CodeableConcept or an Identifier.
func tokensOf(v any) []tokenValue {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	switch t := v.(type) {
	case string:
		return []tokenValue{{code: t}}
	case bool:
		return []tokenValue{{code: fmt.Sprint(t)}}
	case map[string]any:
		var out []tokenValue
		if codings, ok := t["coding"].([]any); ok {
			for _, c := range codings {
				if cm, ok := c.(map[string]any); ok && str(cm, "code") != "" {
					out = append(out, tokenValue{system: str(cm, "system"), code: str(cm, "code")})
				}
			}
		}
		if v := str(t, "value"); v != "" {
			out = append(out, tokenValue{system: str(t, "system"), code: v})
		}
		if c := str(t, "code"); c != "" {
			out = append(out, tokenValue{system: str(t, "system"), code: c})
		}
		return out
	}
	return nil
}

func referenceOf(v any) (refValue, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return refValue{}, false
	}
	s, _ := m["reference"].(string)
	if s == "" || strings.HasPrefix(s, "#") {
		return refValue{}, false
	}
	typ, id := splitReference(s)
	return refValue{typ: typ, id: id}, id != ""
}

// splitReference reads "Patient/1", "https://x/fhir/Patient/1", "Patient/1/_history/2" as
// (Patient, 1), and anything else (a bare id, a urn:uuid) as ("", s).
func splitReference(s string) (typ, id string) {
	if i := strings.Index(s, "/_history/"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, "/")
	if n := len(parts); n >= 2 && fhir.ValidType(parts[n-2]) && fhir.ValidID(parts[n-1]) {
		return parts[n-2], parts[n-1]
	}
	return "", s
}

// dateOf reads a date, dateTime or instant string, or a Period, as a half-open range.
func dateOf(v any) (lo, hi time.Time, ok bool) {
	switch t := v.(type) {
	case string:
		lo, hi, err := parseDateRange(t)
		return lo, hi, err == nil
	case map[string]any:
		start, _ := t["start"].(string)
		end, _ := t["end"].(string)
		if start == "" && end == "" {
			return time.Time{}, time.Time{}, false
		}
		lo, hi = minDate, maxDate
		if start != "" {
			l, _, err := parseDateRange(start)
			if err != nil {
				return time.Time{}, time.Time{}, false
			}
			lo = l
		}
		if end != "" {
			_, h, err := parseDateRange(end)
			if err != nil {
				return time.Time{}, time.Time{}, false
			}
			hi = h
		}
		return lo, laterOf(hi, lo), true
	}
	return time.Time{}, time.Time{}, false
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// parseDateRange reads a FHIR date, dateTime or instant at its precision as the half-open
// range it spans: "2024" is [2024-01-01, 2025-01-01), "2024-03-01T10:00" a minute. A time
// without a zone is read as UTC.
func parseDateRange(s string) (lo, hi time.Time, err error) {
	fail := func() (time.Time, time.Time, error) {
		return time.Time{}, time.Time{}, fmt.Errorf("date %q: want YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]", s)
	}
	switch len(s) {
	case 4:
		t, err := time.Parse("2006", s)
		if err != nil {
			return fail()
		}
		return clampRange(t, t.AddDate(1, 0, 0))
	case 7:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return fail()
		}
		return clampRange(t, t.AddDate(0, 1, 0))
	case 10:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return fail()
		}
		return clampRange(t, t.AddDate(0, 0, 1))
	}
	if len(s) < 16 || s[10] != 'T' {
		return fail()
	}
	// A '+' of a zone offset arrives as a space when a client did not escape it in a URL.
	if len(s) > 16 && strings.Contains(s[16:], " ") {
		s = s[:16] + strings.Replace(s[16:], " ", "+", 1)
	}
	body, zone := s, ""
	if i := strings.IndexAny(s[16:], "Z+-"); i >= 0 {
		body, zone = s[:16+i], s[16+i:]
	}
	var layout string
	var prec time.Duration
	switch {
	case len(body) == 16:
		layout, prec = "2006-01-02T15:04", time.Minute
	case len(body) == 19:
		layout, prec = "2006-01-02T15:04:05", time.Second
	case len(body) > 20 && body[19] == '.' && len(body) <= 29:
		digits := len(body) - 20
		layout, prec = "2006-01-02T15:04:05."+strings.Repeat("9", digits), time.Second
		for range digits {
			prec /= 10
		}
	default:
		return fail()
	}
	if zone != "" {
		layout += "Z07:00"
	}
	t, err := time.Parse(layout, body+zone)
	if err != nil {
		return fail()
	}
	t = t.UTC()
	return clampRange(t, t.Add(max(prec, time.Microsecond)))
}

func clampRange(lo, hi time.Time) (time.Time, time.Time, error) {
	if lo.Before(minDate) || hi.After(maxDate.AddDate(0, 0, 1)) {
		return time.Time{}, time.Time{}, fmt.Errorf("date out of range")
	}
	return lo.UTC(), hi.UTC(), nil
}
