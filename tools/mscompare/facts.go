package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// resource is a decoded FHIR resource (numbers kept as json.Number).
type resource = map[string]any

// value is one side of a fact, normalised into comparable tokens.
type value []string

// matchMode says when two sides of a fact agree: matchAll when their token sets are equal,
// matchAny when they share a token, for tokens that are alternative codings or spellings of
// one thing (a CodeableConcept's codings, a unit's text and code).
type matchMode int

const (
	matchAll matchMode = iota
	matchAny
)

// Outcome is how one fact compares.
type Outcome int

// The outcomes, in report column order.
const (
	Agree Outcome = iota
	Differ
	MissingOurs
	MissingTheirs
)

// FactResult is one compared fact of one message.
type FactResult struct {
	Fact    string // e.g. "observation.value"
	Subject string // which resource, when a message has several of the type: "Observation 11273-0"
	Outcome Outcome
	Ours    string
	Theirs  string
}

// factOrder lists the facts in report order.
var factOrder = []string{
	"patient.identifier", "patient.name", "patient.birthDate", "patient.gender", "patient.address",
	"encounter.class", "encounter.period", "encounter.status",
	"observation.code", "observation.value", "observation.unit", "observation.referenceRange", "observation.interpretation",
	"immunization.vaccineCode", "immunization.date", "immunization.lot", "immunization.status",
}

// compareBundles compares the facts of our Bundle's resources with Microsoft's. ours and
// theirs hold the entry resources of each Bundle.
func compareBundles(ours, theirs []resource) []FactResult {
	var out []FactResult
	// add compares one fact, extracted by f from our and their resource (either may be nil).
	add := func(fact, subject string, mode matchMode, o, t resource, f func(resource) []string) {
		if r, ok := compareFact(fact, subject, mode, set(o, f), set(t, f)); ok {
			out = append(out, r)
		}
	}

	// One Patient and one Encounter per message: the first of each.
	if o, t := first(ours, "Patient"), first(theirs, "Patient"); o != nil || t != nil {
		add("patient.identifier", "", matchAll, o, t, identifiers)
		add("patient.name", "", matchAll, o, t, names)
		add("patient.birthDate", "", matchAll, o, t, dateField("birthDate"))
		add("patient.gender", "", matchAll, o, t, field("gender"))
		add("patient.address", "", matchAll, o, t, addresses)
	}
	if o, t := first(ours, "Encounter"), first(theirs, "Encounter"); o != nil || t != nil {
		add("encounter.class", "", matchAll, o, t, func(r resource) []string { return []string{codingKey(obj(r["class"]))} })
		add("encounter.period", "", matchAll, o, t, period)
		add("encounter.status", "", matchAll, o, t, field("status"))
	}

	// Several Observations and Immunizations: paired by a code they share.
	for _, p := range pairByCode(all(ours, "Observation"), all(theirs, "Observation"), "code") {
		s := "Observation " + p.label
		add("observation.code", s, matchAny, p.ours, p.theirs, codingsOf("code"))
		add("observation.value", s, matchAny, p.ours, p.theirs, observationValue)
		add("observation.unit", s, matchAny, p.ours, p.theirs, unit)
		add("observation.referenceRange", s, matchAny, p.ours, p.theirs, referenceRange)
		add("observation.interpretation", s, matchAll, p.ours, p.theirs, interpretation)
	}
	for _, p := range pairByCode(all(ours, "Immunization"), all(theirs, "Immunization"), "vaccineCode") {
		s := "Immunization " + p.label
		add("immunization.vaccineCode", s, matchAny, p.ours, p.theirs, codingsOf("vaccineCode"))
		add("immunization.date", s, matchAll, p.ours, p.theirs, dateField("occurrenceDateTime"))
		add("immunization.lot", s, matchAll, p.ours, p.theirs, field("lotNumber"))
		add("immunization.status", s, matchAll, p.ours, p.theirs, field("status"))
	}
	return out
}

// compareFact compares one fact's two sides; ok is false when both are absent (not counted).
func compareFact(fact, subject string, mode matchMode, ours, theirs value) (FactResult, bool) {
	r := FactResult{Fact: fact, Subject: subject, Ours: strings.Join(ours, "; "), Theirs: strings.Join(theirs, "; ")}
	switch {
	case len(ours) == 0 && len(theirs) == 0:
		return r, false
	case len(ours) == 0:
		r.Outcome = MissingOurs
	case len(theirs) == 0:
		r.Outcome = MissingTheirs
	case mode == matchAny && intersects(ours, theirs), mode == matchAll && r.Ours == r.Theirs:
		r.Outcome = Agree
	default:
		r.Outcome = Differ
	}
	return r, true
}

// --- fact extractors: each returns normalised tokens, empty when the fact is absent ---------

func field(name string) func(resource) []string {
	return func(r resource) []string { return []string{str(r[name])} }
}

func dateField(name string) func(resource) []string {
	return func(r resource) []string { return []string{normDateTime(str(r[name]))} }
}

func codingsOf(name string) func(resource) []string {
	return func(r resource) []string { return codings(r[name]) }
}

func identifiers(r resource) []string {
	var out []string
	for _, id := range arr(r["identifier"]) {
		out = append(out, str(obj(id)["value"])) // system-insensitive: issuers are spelt differently
	}
	return out
}

func names(r resource) []string {
	var out []string
	for _, n := range arr(r["name"]) {
		var given []string
		for _, g := range arr(obj(n)["given"]) {
			given = append(given, strings.TrimSpace(str(g)))
		}
		family, giv := strings.TrimSpace(str(obj(n)["family"])), strings.Join(given, " ")
		if family != "" || giv != "" {
			out = append(out, strings.ToLower(family+", "+giv))
		}
	}
	return out
}

func addresses(r resource) []string {
	var out []string
	for _, a := range arr(r["address"]) {
		m := obj(a)
		var parts []string
		for _, v := range append(arr(m["line"]), m["city"], m["state"], m["postalCode"], m["country"]) {
			if v := strings.TrimSpace(str(v)); v != "" {
				parts = append(parts, v)
			}
		}
		out = append(out, strings.ToLower(strings.Join(parts, ", ")))
	}
	return out
}

func period(r resource) []string {
	p := obj(r["period"])
	start, end := normDateTime(str(p["start"])), normDateTime(str(p["end"]))
	if start == "" && end == "" {
		return nil
	}
	return []string{start + " → " + end}
}

func observationValue(r resource) []string {
	switch {
	case r["valueQuantity"] != nil:
		return []string{number(obj(r["valueQuantity"])["value"])}
	case r["valueCodeableConcept"] != nil:
		return codings(r["valueCodeableConcept"])
	case r["valueDateTime"] != nil:
		return []string{normDateTime(str(r["valueDateTime"]))}
	}
	for _, k := range []string{"valueString", "valueInteger", "valueBoolean", "valueTime"} {
		if v, ok := r[k]; ok {
			return []string{strings.TrimSpace(str(v))}
		}
	}
	// Range, Ratio, Period, SampledData…: compared as their JSON. A resource has one value[x];
	// the keys are sorted anyway, so that the report is stable.
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "value") {
			b, _ := json.Marshal(r[k])
			return []string{string(b)}
		}
	}
	return nil
}

// unit is the quantity's unit text and its code: either may carry the v2 OBX-6 unit.
func unit(r resource) []string {
	q := obj(r["valueQuantity"])
	return []string{str(q["unit"]), str(q["code"])}
}

// referenceRange renders the first range as "low-high" and as its text without spaces, so
// that a structured range and the v2 text "70-80" agree.
func referenceRange(r resource) []string {
	rr := arr(r["referenceRange"])
	if len(rr) == 0 {
		return nil
	}
	m := obj(rr[0])
	var out []string
	if m["low"] != nil || m["high"] != nil {
		out = append(out, number(obj(m["low"])["value"])+"-"+number(obj(m["high"])["value"]))
	}
	return append(out, strings.ReplaceAll(str(m["text"]), " ", ""))
}

func interpretation(r resource) []string {
	var out []string
	for _, cc := range arr(r["interpretation"]) {
		out = append(out, codings(cc)...)
	}
	return out
}

// codings are a CodeableConcept's "system|code" tokens (or its text when it has no coding).
func codings(v any) []string {
	cc := obj(v)
	var out []string
	for _, c := range arr(cc["coding"]) {
		out = append(out, codingKey(obj(c)))
	}
	if len(out) == 0 && str(cc["text"]) != "" {
		out = append(out, "text:"+str(cc["text"]))
	}
	return out
}

func codingKey(c map[string]any) string {
	code := str(c["code"])
	if code == "" {
		return ""
	}
	// Systems are URIs, compared exactly but for a trailing "/" (http://unitsofmeasure.org/).
	return strings.TrimRight(str(c["system"]), "/") + "|" + code
}

// --- pairing ----------------------------------------------------------------------------------

type pair struct {
	label        string
	ours, theirs resource // either may be nil
}

// pairByCode pairs resources of the two sides that share a code (any coding's code, whatever
// its system, so that a system spelt differently still pairs and shows as a code difference),
// in document order; the rest stay unpaired and count as missing on the other side.
func pairByCode(ours, theirs []resource, field string) []pair {
	codes := func(r resource) []string {
		var out []string
		for _, k := range codings(r[field]) {
			_, code, _ := strings.Cut(k, "|")
			out = append(out, code)
		}
		return out
	}
	used := make([]bool, len(theirs))
	var out []pair
	for _, o := range ours {
		p := pair{ours: o, label: label(codes(o))}
		for j, t := range theirs {
			if !used[j] && intersects(codes(o), codes(t)) {
				used[j], p.theirs = true, t
				break
			}
		}
		out = append(out, p)
	}
	for j, t := range theirs {
		if !used[j] {
			out = append(out, pair{theirs: t, label: label(codes(t))})
		}
	}
	return out
}

func label(codes []string) string {
	if len(codes) == 0 {
		return "(no code)"
	}
	return codes[0]
}

// --- helpers ----------------------------------------------------------------------------------

// normDateTime normalises a FHIR date or dateTime: one with a UTC offset becomes the UTC
// instant, so that "+07:00" and "Z" spellings of one moment agree; partial dates stay as written.
func normDateTime(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return s
}

// number renders a JSON number canonically (4.060 and 4.06 agree).
func number(v any) string {
	s := str(v)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}

func first(rs []resource, typ string) resource {
	if a := all(rs, typ); len(a) > 0 {
		return a[0]
	}
	return nil
}

func all(rs []resource, typ string) []resource {
	var out []resource
	for _, r := range rs {
		if r["resourceType"] == typ {
			out = append(out, r)
		}
	}
	return out
}

// set applies f to r (absent → no tokens) and returns its non-empty tokens, sorted, unique.
func set(r resource, f func(resource) []string) value {
	if r == nil {
		return nil
	}
	seen := map[string]bool{}
	var out value
	for _, s := range f(r) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}
