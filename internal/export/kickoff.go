package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// OutputFormatNDJSON is the one output format this server writes; the IG's abbreviations
// application/ndjson and ndjson are accepted for it.
const OutputFormatNDJSON = "application/fhir+ndjson"

// KickoffInput is a $export kick-off request as the HTTP layer received it.
type KickoffInput struct {
	// Method is the HTTP method: "GET" or "POST".
	Method string
	// Level and GroupID come from the route: [base]/$export, [base]/Patient/$export or
	// [base]/Group/[id]/$export. GroupID is empty except at group level.
	Level   Level
	GroupID string
	// Query holds the URL query parameters, percent-decoded once (as url.ParseQuery does).
	// A POST must not have any: its parameters are in Body.
	Query url.Values
	// Body is the POST body, a FHIR Parameters resource in JSON; empty means no parameters.
	// It is not read for GET.
	Body []byte
	// Lenient is true when the request carried Prefer: handling=lenient: unsupported
	// parameters are then dropped and listed in Request.Ignored instead of refused.
	Lenient bool
	// KnownType reports whether a resource type is one this server can export. Restricting
	// patient and group level to the Patient compartment is left to the caller.
	KnownType func(string) bool
	// Now is the server's time at kick-off; a later _since is refused.
	Now time.Time
}

// ParamError is a kick-off the server refuses: the HTTP layer answers 400 with an
// OperationOutcome whose issue code is IssueCode() and whose text is Error().
type ParamError struct {
	// Param is the parameter at fault ("_since", "_typeFilter"…), or "" when the request as a
	// whole is (its method, its body).
	Param string
	// Reason says, for the client, what is wrong and how to fix it.
	Reason string
	// NotSupported is true when the request is well formed but asks for something this server
	// does not do (issue code "not-supported"); otherwise the request is invalid ("invalid").
	NotSupported bool
}

// Error is a sentence for the client; it names the parameter and never Go internals.
func (e *ParamError) Error() string {
	if e.Param == "" {
		return upperFirst(e.Reason) + "."
	}
	return "Parameter " + e.Param + ": " + e.Reason + "."
}

// IssueCode is the FHIR OperationOutcome issue.code for the error: "not-supported" or
// "invalid".
func (e *ParamError) IssueCode() string {
	if e.NotSupported {
		return "not-supported"
	}
	return "invalid"
}

func invalid(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

func notSupported(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...), NotSupported: true}
}

// Kick-off parameter names of the Bulk Data Access IG v2.0.0.
const (
	paramOutputFormat          = "_outputFormat"
	paramSince                 = "_since"
	paramType                  = "_type"
	paramTypeFilter            = "_typeFilter"
	paramElements              = "_elements"
	paramPatient               = "patient"
	paramIncludeAssociatedData = "includeAssociatedData"
)

// laterVersionParams are kick-off parameters of later Bulk Data versions (v3 ballots), which
// this v2.0.0 server does not support.
var laterVersionParams = map[string]bool{
	"_until":                true,
	"organizeOutputBy":      true,
	"allowPartialManifests": true,
}

// searchResultParams are FHIR R4's search result parameters: they shape a search's result
// page rather than select resources, and the IG forbids them in _typeFilter ("FHIR search
// response parameters such as _include and _sort SHALL NOT be used").
var searchResultParams = map[string]bool{
	"_include": true, "_revinclude": true, "_sort": true, "_count": true, "_elements": true,
	"_summary": true, "_total": true, "_contained": true, "_containedType": true,
}

// param is one occurrence of a kick-off parameter, from the query string or the body.
type param struct {
	name string
	// value is the string value: the query value, or the body's primitive value[x].
	value string
	// field is the body's value[x] key ("valueString", "valueReference", "part"…); "" for GET.
	field string
	// ref is the body's valueReference.reference.
	ref string
}

// ParseKickoff validates a kick-off against the Bulk Data Access IG v2.0.0 and this server's
// support, and returns the request to run. A request the client must change yields a
// *ParamError; any other error is the caller's (a bad KickoffInput) and means a server fault.
func ParseKickoff(in KickoffInput) (Request, error) {
	if in.KnownType == nil {
		return Request{}, errors.New("parse kickoff: KnownType is nil")
	}
	if in.Now.IsZero() {
		return Request{}, errors.New("parse kickoff: Now is zero")
	}
	p := &parser{in: in, req: Request{Level: in.Level, OutputFormat: OutputFormatNDJSON}}
	switch in.Level {
	case LevelSystem, LevelPatient:
		if in.GroupID != "" {
			return Request{}, fmt.Errorf("parse kickoff: group id %q at %s level", in.GroupID, in.Level)
		}
	case LevelGroup:
		if !validID(in.GroupID) {
			return Request{}, invalid("", "the Group id in the URL, %s, is not a valid FHIR id", clip(in.GroupID))
		}
		p.req.GroupID = in.GroupID
	default:
		return Request{}, fmt.Errorf("parse kickoff: unknown level %q", in.Level)
	}

	var params []param
	switch in.Method {
	case "GET":
		p.get = true
		params = queryParams(in.Query)
	case "POST":
		if len(in.Query) > 0 {
			return Request{}, invalid("", "a POST kick-off takes its parameters from the Parameters resource in its body, not from the URL (Bulk Data IG: POST requests supply parameters using the FHIR Parameters resource); move %s into the body", strings.Join(clipAll(sortedKeys(in.Query)), ", "))
		}
		var err error
		if params, err = bodyParams(in.Body); err != nil {
			return Request{}, err
		}
	default:
		return Request{}, notSupported("", "a kick-off must be a GET or a POST, not %s", clip(in.Method))
	}
	p.byName = map[string][]param{}
	for _, x := range params {
		if _, seen := p.byName[x.name]; !seen {
			p.names = append(p.names, x.name)
		}
		p.byName[x.name] = append(p.byName[x.name], x)
	}

	for _, step := range []func() error{p.outputFormat, p.since, p.types, p.typeFilters, p.patients, p.others} {
		if err := step(); err != nil {
			return Request{}, err
		}
	}
	return p.req, nil
}

type parser struct {
	in     KickoffInput
	get    bool
	req    Request
	byName map[string][]param
	names  []string // in order of first appearance (GET: sorted)
}

// ignore drops what the request asked for when it is lenient, recording label in
// Request.Ignored, and refuses it otherwise.
func (p *parser) ignore(e *ParamError, label string) error {
	if !p.in.Lenient {
		return e
	}
	if !slices.Contains(p.req.Ignored, label) {
		p.req.Ignored = append(p.req.Ignored, label)
	}
	return nil
}

// stringValues returns the values of a parameter that takes a string, refusing a body parameter
// whose value[x] is of another type.
func (p *parser) stringValues(name string, fields ...string) ([]string, error) {
	var out []string
	for _, x := range p.byName[name] {
		if x.field != "" && !slices.Contains(fields, x.field) {
			return nil, invalid(name, "its value must be given as %s, not %s", strings.Join(fields, " or "), clip(x.field))
		}
		out = append(out, x.value)
	}
	return out, nil
}

func (p *parser) outputFormat() error {
	vals, err := p.stringValues(paramOutputFormat, "valueString", "valueCode")
	if err != nil || len(vals) == 0 {
		return err
	}
	if len(vals) > 1 {
		return invalid(paramOutputFormat, "it may be given only once")
	}
	switch v := strings.TrimSpace(vals[0]); strings.ToLower(v) {
	case OutputFormatNDJSON, "application/ndjson", "ndjson":
		return nil
	case "":
		return invalid(paramOutputFormat, "it is empty; leave it out to get the default, %s", OutputFormatNDJSON)
	default:
		return notSupported(paramOutputFormat, "%s is not supported; this server writes only %s (also accepted as application/ndjson or ndjson)", clip(v), OutputFormatNDJSON)
	}
}

func (p *parser) since() error {
	vals, err := p.stringValues(paramSince, "valueInstant", "valueDateTime", "valueString")
	if err != nil || len(vals) == 0 {
		return err
	}
	if len(vals) > 1 {
		return invalid(paramSince, "it may be given only once")
	}
	v := strings.TrimSpace(vals[0])
	if p.get {
		// An unencoded '+' of a UTC offset arrives as a space (form decoding); a space is
		// never valid in an instant, so this repair cannot change a valid value.
		v = spacedOffsetRE.ReplaceAllString(v, "$1+$2")
	}
	t, perr := parseInstant(v)
	if perr != nil {
		perr.Param = paramSince
		return perr
	}
	if t.After(p.in.Now) {
		return invalid(paramSince, "%s is in the future (server time %s); use the transactionTime of an earlier export, or an earlier instant", v, formatInstant(p.in.Now))
	}
	p.req.Since = t.UTC()
	return nil
}

func (p *parser) types() error {
	vals, err := p.stringValues(paramType, "valueString", "valueCode")
	if err != nil || len(vals) == 0 {
		return err
	}
	for _, v := range vals {
		// Repeated _type values count as one comma-delimited list (IG, kick-off request).
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			switch {
			case t == "":
				if err := p.ignore(invalid(paramType, "the list of resource types has an empty entry (a stray comma)"), paramType+" (empty entry)"); err != nil {
					return err
				}
			case !p.in.KnownType(t):
				// IG: an explicit request for types the server does not support SHOULD be an
				// error; with handling=lenient the server MAY process the request.
				if err := p.ignore(notSupported(paramType, "resource type %s is not one this server can export", clip(t)), paramType+" value "+clip(t)); err != nil {
					return err
				}
			case !slices.Contains(p.req.Types, t):
				p.req.Types = append(p.req.Types, t)
			}
		}
	}
	if len(p.req.Types) == 0 {
		// Dropping every type would turn the request into an export of all types.
		return notSupported(paramType, "none of the requested resource types can be exported; leave _type out to export every type")
	}
	return nil
}

func (p *parser) typeFilters() error {
	vals, err := p.stringValues(paramTypeFilter, "valueString")
	if err != nil || len(vals) == 0 {
		return err
	}
	filters := map[string][]string{}
	var broken []string // types with a filter that was dropped: all their filters go
	for _, v := range vals {
		// Repeated _typeFilter values count as one comma-delimited list (IG, _typeFilter).
		for _, f := range splitFilters(v) {
			var err error
			typ, query, ok := strings.Cut(f, "?")
			typ = strings.TrimSpace(typ)
			switch {
			case f == "":
				err = p.ignore(invalid(paramTypeFilter, "the list of queries has an empty entry (a stray comma)"), paramTypeFilter+" (empty entry)")
			case !ok || typ == "":
				hint := ""
				if strings.Contains(strings.ToUpper(f), "%3F") {
					hint = "; it looks percent-encoded once too often"
				}
				err = p.ignore(invalid(paramTypeFilter, "%s is not a query of the form ResourceType?search-parameters%s", clip(f), hint), paramTypeFilter+" (an entry not of the form ResourceType?search-parameters)")
			case !p.in.KnownType(typ):
				err = p.ignore(notSupported(paramTypeFilter, "it filters %s, which is not a resource type this server can export", clip(typ)), paramTypeFilter+" on "+clip(typ))
			case len(p.req.Types) > 0 && !slices.Contains(p.req.Types, typ):
				// _typeFilter narrows the types of _type; a filter on a type that is not
				// exported would do nothing, so it is most likely a mistake.
				err = p.ignore(invalid(paramTypeFilter, "it filters %s, which is not in _type; add %s to _type or remove the filter", typ, typ), paramTypeFilter+" on "+typ+" (not in _type)")
			default:
				q, reason := canonicalQuery(query)
				if reason != "" {
					broken = append(broken, typ)
					// Dropping one of a type's ORed queries would narrow the export; dropping
					// all of them only widens it, as a server ignoring _typeFilter may.
					err = p.ignore(invalid(paramTypeFilter, "the query on %s %s", typ, reason), fmt.Sprintf("%s on %s (an invalid query; all %s resources are exported unfiltered)", paramTypeFilter, typ, typ))
				} else if !slices.Contains(filters[typ], q) {
					filters[typ] = append(filters[typ], q)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	for _, typ := range broken {
		delete(filters, typ)
	}
	if len(filters) > 0 {
		p.req.TypeFilters = filters
	}
	return nil
}

func (p *parser) patients() error {
	refs := p.byName[paramPatient]
	if len(refs) == 0 {
		return nil
	}
	// Refused even when lenient: dropping patient would widen the export to every patient.
	if p.get {
		return invalid(paramPatient, "it is only valid in a POST kick-off, as a Parameters resource with valueReference {\"reference\": \"Patient/[id]\"} (Bulk Data IG)")
	}
	if p.in.Level == LevelSystem {
		return invalid(paramPatient, "it does not apply to a system-level export; use Patient/$export or Group/[id]/$export")
	}
	for _, x := range refs {
		if x.field != "valueReference" {
			return invalid(paramPatient, "its value must be a valueReference to a Patient, not %s", clip(x.field))
		}
		if x.ref == "" {
			return notSupported(paramPatient, "only literal references of the form Patient/[id] are supported")
		}
		id, ok := strings.CutPrefix(x.ref, "Patient/")
		if !ok || !validID(id) {
			return invalid(paramPatient, "%s is not a reference of the form Patient/[id]", clip(x.ref))
		}
		if !slices.Contains(p.req.Patients, id) {
			p.req.Patients = append(p.req.Patients, id)
		}
	}
	return nil
}

// others refuses, or with handling=lenient ignores, every parameter this server does not
// support: the IG's experimental _elements and includeAssociatedData, later versions'
// parameters, and unknown ones.
func (p *parser) others() error {
	for _, name := range p.names {
		var e *ParamError
		switch {
		case name == paramOutputFormat, name == paramSince, name == paramType, name == paramTypeFilter, name == paramPatient:
			continue
		case name == paramElements:
			e = notSupported(name, "this server does not support _elements and returns whole resources; resubmit without it, or with Prefer: handling=lenient to have it ignored")
		case name == paramIncludeAssociatedData:
			e = notSupported(name, "this server does not support includeAssociatedData; resubmit without it, or with Prefer: handling=lenient to have it ignored")
		case laterVersionParams[name]:
			e = notSupported(name, "it belongs to a later version of the Bulk Data IG than the v2.0.0 this server implements; resubmit without it, or with Prefer: handling=lenient to have it ignored")
		default:
			e = notSupported(paramLabel(name), "it is not a $export parameter this server knows; resubmit without it, or with Prefer: handling=lenient to have it ignored")
		}
		if err := p.ignore(e, e.Param); err != nil {
			return err
		}
	}
	return nil
}

// queryParams lists the query parameters by name, so that errors and Ignored come out in
// the same order for the same request.
func queryParams(q url.Values) []param {
	var out []param
	for _, name := range sortedKeys(q) {
		for _, v := range q[name] {
			out = append(out, param{name: name, value: v})
		}
	}
	return out
}

// bodyParams reads the parameters of a Parameters resource, in order.
func bodyParams(body []byte) ([]param, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if !json.Valid(body) {
		return nil, invalid("", "the request body is not valid JSON; a POST kick-off carries a FHIR Parameters resource (application/fhir+json)")
	}
	var res struct {
		ResourceType      string                       `json:"resourceType"`
		Parameter         []map[string]json.RawMessage `json:"parameter"`
		ModifierExtension json.RawMessage              `json:"modifierExtension"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, invalid("", "the request body is not a valid FHIR Parameters resource: %s has the wrong JSON type", clip(te.Field))
		}
		return nil, invalid("", "the request body must be a JSON object, a FHIR Parameters resource")
	}
	if res.ResourceType != "Parameters" {
		return nil, invalid("", "the request body must be a FHIR Parameters resource (resourceType \"Parameters\"), not %s", clip(res.ResourceType))
	}
	if present(res.ModifierExtension) {
		return nil, notSupported("", "the Parameters resource has a modifierExtension, which this server does not understand")
	}
	out := make([]param, 0, len(res.Parameter))
	for i, raw := range res.Parameter {
		n := i + 1
		var name string
		if err := json.Unmarshal(raw["name"], &name); err != nil || name == "" {
			return nil, invalid("", "parameter %d of the Parameters resource has no name", n)
		}
		pname := paramLabel(name)
		if present(raw["modifierExtension"]) {
			return nil, notSupported(pname, "it has a modifierExtension, which this server does not understand")
		}
		var kinds []string
		for k, v := range raw {
			isValue := strings.HasPrefix(k, "value") && len(k) > len("value")
			if (isValue || k == "resource" || k == "part") && present(v) {
				kinds = append(kinds, k)
			}
		}
		switch {
		case len(kinds) == 0:
			return nil, invalid(pname, "it has no value (parameter %d of the Parameters resource)", n)
		case len(kinds) > 1:
			sort.Strings(kinds)
			return nil, invalid(pname, "it has more than one value (%s); a parameter has exactly one of value[x], resource or part", strings.Join(kinds, ", "))
		}
		x := param{name: name, field: kinds[0]}
		v := raw[x.field]
		switch {
		case x.field == "valueReference":
			var ref struct {
				Reference string `json:"reference"`
			}
			if err := json.Unmarshal(v, &ref); err != nil {
				return nil, invalid(pname, "its valueReference is not a FHIR Reference")
			}
			x.ref = ref.Reference
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &x.value); err != nil {
				return nil, invalid(pname, "its %s is not a valid JSON string", x.field)
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// present reports whether a JSON member is there and not null.
func present(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && !bytes.Equal(v, []byte("null"))
}

// filterStart is what follows a comma that separates two _typeFilter queries: a resource
// type and '?'.
var filterStart = regexp.MustCompile(`^\s*[A-Z][A-Za-z]*\?`)

// splitFilters splits a _typeFilter value into its queries. The IG joins URL-encoded
// queries with ',', so after the one decoding of the URL a comma inside a query (FHIR's OR,
// "code=a,b") looks like a separator; a comma separates queries only when a query
// ("Type?") follows it.
func splitFilters(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] == ',' && filterStart.MatchString(v[i+1:]) {
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// canonicalQuery checks one _typeFilter query (the part after "Type?", itself a URL query)
// and returns it re-encoded so that url.ParseQuery yields exactly its parameters; reason
// says what is wrong otherwise. Components are decoded with '+' kept as '+' (RFC 3986),
// since a once-encoded "+01:00" offset is far likelier than a '+' meant as a space.
func canonicalQuery(q string) (canonical, reason string) {
	var parts []string
	for _, seg := range strings.Split(q, "&") {
		if strings.TrimSpace(seg) == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		key, err1 := url.PathUnescape(k)
		val, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return "", "is not a valid URL query (a '%' not followed by two hex digits)"
		}
		if key == "" {
			return "", "has a search parameter without a name"
		}
		base, _, _ := strings.Cut(key, ":")
		if searchResultParams[base] {
			return "", fmt.Sprintf("uses %s, which a _typeFilter must not (Bulk Data IG: FHIR search response parameters such as _include and _sort SHALL NOT be used)", clip(key))
		}
		parts = append(parts, url.QueryEscape(key)+"="+url.QueryEscape(val))
	}
	if len(parts) == 0 {
		return "", "has no search parameters"
	}
	return strings.Join(parts, "&"), ""
}

var (
	// instantRE is FHIR R4's instant: a full date-time with seconds and a zone.
	instantRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
	// zonelessRE is a date-time that lacks only its zone.
	zonelessRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$`)
	// partialDateRE is a FHIR date (year, year-month or full date) without a time.
	partialDateRE = regexp.MustCompile(`^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$`)
	// spacedOffsetRE is an instant whose '+' offset sign was form-decoded into a space.
	spacedOffsetRE = regexp.MustCompile(`^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+) ([0-9]{2}:[0-9]{2})$`)
)

// parseInstant parses a FHIR instant; the error's Param is left for the caller.
func parseInstant(v string) (time.Time, *ParamError) {
	const example = "e.g. 2024-01-02T03:04:05Z or 2024-01-02T04:04:05+01:00"
	switch {
	case v == "":
		return time.Time{}, invalid("", "it is empty; a FHIR instant is required (%s)", example)
	case zonelessRE.MatchString(v):
		return time.Time{}, invalid("", "%s has no timezone; a FHIR instant needs one (%s)", clip(v), example)
	case partialDateRE.MatchString(v):
		return time.Time{}, invalid("", "%s is a date; a FHIR instant needs a time with seconds and a timezone (%s)", clip(v), example)
	case !instantRE.MatchString(v):
		return time.Time{}, invalid("", "%s is not a FHIR instant (%s)", clip(v), example)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalid("", "%s is not a valid point in time (%s)", clip(v), example)
	}
	return t, nil
}

// formatInstant writes t as a FHIR instant in UTC, keeping its full precision.
func formatInstant(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// idRE is a FHIR logical id.
var idRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func validID(s string) bool { return idRE.MatchString(s) }

// clip quotes client input for a message: escaped, and cut to a readable length.
func clip(s string) string {
	const limit = 64
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// nameRE is what a parameter name looks like: shown as is; anything else is quoted.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$`)

// paramLabel is a client-given parameter name for ParamError.Param and Request.Ignored.
func paramLabel(name string) string {
	if nameRE.MatchString(name) {
		return name
	}
	return clip(name)
}

func clipAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clip(s)
	}
	return out
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}
