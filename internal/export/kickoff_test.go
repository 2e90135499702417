package export

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func knownType(t string) bool {
	return slices.Contains([]string{"Patient", "Observation", "Condition", "MedicationRequest", "Encounter", "Practitioner"}, t)
}

// getKickoff is a GET kick-off with a raw (still percent-encoded) query string, decoded once
// as net/http does.
func getKickoff(t *testing.T, level Level, rawQuery string) KickoffInput {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	require.NoError(t, err)
	in := KickoffInput{Method: "GET", Level: level, Query: q, KnownType: knownType, Now: testNow}
	if level == LevelGroup {
		in.GroupID = "g1"
	}
	return in
}

func postKickoff(level Level, body string) KickoffInput {
	in := KickoffInput{Method: "POST", Level: level, Body: []byte(body), KnownType: knownType, Now: testNow}
	if level == LevelGroup {
		in.GroupID = "g1"
	}
	return in
}

func lenient(in KickoffInput) KickoffInput {
	in.Lenient = true
	return in
}

func sysReq(f func(*Request)) Request {
	r := Request{Level: LevelSystem, OutputFormat: OutputFormatNDJSON}
	if f != nil {
		f(&r)
	}
	return r
}

// wantErr describes an expected *ParamError.
type wantErr struct {
	param        string
	notSupported bool
	contains     string
}

func TestParseKickoff(t *testing.T) {
	t.Parallel()
	since := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v.UTC()
	}
	for _, tc := range []struct {
		name string
		in   KickoffInput
		want Request
		err  *wantErr
	}{
		// Level and route.
		{name: "system, no parameters", in: getKickoff(t, LevelSystem, ""), want: sysReq(nil)},
		{name: "patient level", in: getKickoff(t, LevelPatient, ""), want: Request{Level: LevelPatient, OutputFormat: OutputFormatNDJSON}},
		{name: "group level", in: getKickoff(t, LevelGroup, ""), want: Request{Level: LevelGroup, GroupID: "g1", OutputFormat: OutputFormatNDJSON}},
		{
			name: "group id not a FHIR id",
			in:   KickoffInput{Method: "GET", Level: LevelGroup, GroupID: "a b", KnownType: knownType, Now: testNow},
			err:  &wantErr{contains: "not a valid FHIR id"},
		},
		{
			name: "method other than GET or POST",
			in:   KickoffInput{Method: "PUT", Level: LevelSystem, KnownType: knownType, Now: testNow},
			err:  &wantErr{notSupported: true, contains: "GET or a POST"},
		},

		// _outputFormat: the full type and the IG's two abbreviations.
		{name: "_outputFormat full", in: getKickoff(t, LevelSystem, "_outputFormat=application%2Ffhir%2Bndjson"), want: sysReq(nil)},
		{name: "_outputFormat application/ndjson", in: getKickoff(t, LevelSystem, "_outputFormat=application/ndjson"), want: sysReq(nil)},
		{name: "_outputFormat ndjson", in: getKickoff(t, LevelSystem, "_outputFormat=ndjson"), want: sysReq(nil)},
		{name: "_outputFormat is case-insensitive", in: getKickoff(t, LevelSystem, "_outputFormat=Application/FHIR%2BNDJSON"), want: sysReq(nil)},
		{
			name: "_outputFormat unencoded plus arrives as a space",
			in:   getKickoff(t, LevelSystem, "_outputFormat=application/fhir+ndjson"),
			err:  &wantErr{param: "_outputFormat", notSupported: true, contains: "application/fhir ndjson"},
		},
		{
			name: "_outputFormat other format",
			in:   getKickoff(t, LevelSystem, "_outputFormat=text/csv"),
			err:  &wantErr{param: "_outputFormat", notSupported: true, contains: `"text/csv" is not supported`},
		},
		{
			name: "_outputFormat other format even when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_outputFormat=application/fhir%2Bjson")),
			err:  &wantErr{param: "_outputFormat", notSupported: true},
		},
		{name: "_outputFormat empty", in: getKickoff(t, LevelSystem, "_outputFormat="), err: &wantErr{param: "_outputFormat", contains: "empty"}},
		{name: "_outputFormat twice", in: getKickoff(t, LevelSystem, "_outputFormat=ndjson&_outputFormat=ndjson"), err: &wantErr{param: "_outputFormat", contains: "only once"}},

		// _since: a FHIR instant, with a zone, not in the future.
		{
			name: "_since UTC",
			in:   getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05Z"),
			want: sysReq(func(r *Request) { r.Since = since("2024-01-02T03:04:05Z") }),
		},
		{
			name: "_since offset, encoded plus, fraction; normalised to UTC",
			in:   getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05.123456%2B01:00"),
			want: sysReq(func(r *Request) { r.Since = since("2024-01-02T02:04:05.123456Z") }),
		},
		{
			name: "_since unencoded plus (decoded to a space) is repaired",
			in:   getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05+01:00"),
			want: sysReq(func(r *Request) { r.Since = since("2024-01-02T02:04:05Z") }),
		},
		{
			name: "_since negative offset",
			in:   getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05-05:00"),
			want: sysReq(func(r *Request) { r.Since = since("2024-01-02T08:04:05Z") }),
		},
		{
			name: "_since equal to now",
			in:   getKickoff(t, LevelSystem, "_since=2024-06-01T12:00:00Z"),
			want: sysReq(func(r *Request) { r.Since = testNow }),
		},
		{name: "_since without zone", in: getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05"), err: &wantErr{param: "_since", contains: "has no timezone"}},
		{name: "_since without seconds or zone", in: getKickoff(t, LevelSystem, "_since=2024-01-02T03:04"), err: &wantErr{param: "_since", contains: "has no timezone"}},
		{name: "_since a date", in: getKickoff(t, LevelSystem, "_since=2024-01-02"), err: &wantErr{param: "_since", contains: "is a date"}},
		{name: "_since a year", in: getKickoff(t, LevelSystem, "_since=2024"), err: &wantErr{param: "_since", contains: "is a date"}},
		{name: "_since lowercase t and z", in: getKickoff(t, LevelSystem, "_since=2024-01-02t03:04:05z"), err: &wantErr{param: "_since", contains: "not a FHIR instant"}},
		{name: "_since month 13", in: getKickoff(t, LevelSystem, "_since=2024-13-02T03:04:05Z"), err: &wantErr{param: "_since", contains: "not a FHIR instant"}},
		{name: "_since February 30", in: getKickoff(t, LevelSystem, "_since=2024-02-30T03:04:05Z"), err: &wantErr{param: "_since", contains: "not a valid point in time"}},
		{name: "_since offset beyond 14:00", in: getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05%2B15:00"), err: &wantErr{param: "_since", contains: "not a FHIR instant"}},
		{name: "_since garbage", in: getKickoff(t, LevelSystem, "_since=yesterday"), err: &wantErr{param: "_since", contains: `"yesterday" is not a FHIR instant`}},
		{name: "_since empty", in: getKickoff(t, LevelSystem, "_since="), err: &wantErr{param: "_since", contains: "empty"}},
		{name: "_since in the future", in: getKickoff(t, LevelSystem, "_since=2024-06-01T12:00:01Z"), err: &wantErr{param: "_since", contains: "in the future"}},
		{name: "_since in the future through its offset", in: getKickoff(t, LevelSystem, "_since=2024-06-01T11:30:00-01:00"), err: &wantErr{param: "_since", contains: "in the future"}},
		{name: "_since in the future even when lenient", in: lenient(getKickoff(t, LevelSystem, "_since=2030-01-01T00:00:00Z")), err: &wantErr{param: "_since", contains: "in the future"}},
		{name: "_since twice", in: getKickoff(t, LevelSystem, "_since=2024-01-02T03:04:05Z&_since=2024-01-03T03:04:05Z"), err: &wantErr{param: "_since", contains: "only once"}},

		// _type: comma-delimited and repeatable, known types only.
		{
			name: "_type list",
			in:   getKickoff(t, LevelSystem, "_type=Patient,Observation"),
			want: sysReq(func(r *Request) { r.Types = []string{"Patient", "Observation"} }),
		},
		{
			name: "_type repeated, with spaces and duplicates, in request order",
			in:   getKickoff(t, LevelSystem, "_type=Observation&_type=%20Patient%20,Observation&_type=Condition"),
			want: sysReq(func(r *Request) { r.Types = []string{"Observation", "Patient", "Condition"} }),
		},
		{
			name: "_type unknown type",
			in:   getKickoff(t, LevelSystem, "_type=Patient,Foo"),
			err:  &wantErr{param: "_type", notSupported: true, contains: `resource type "Foo" is not one this server can export`},
		},
		{
			name: "_type unknown type dropped when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_type=Foo,Patient,Foo")),
			want: sysReq(func(r *Request) { r.Types = []string{"Patient"}; r.Ignored = []string{`_type value "Foo"`} }),
		},
		{
			name: "_type of only unknown types refused even when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_type=Foo,Bar")),
			err:  &wantErr{param: "_type", notSupported: true, contains: "none of the requested resource types"},
		},
		{name: "_type empty", in: getKickoff(t, LevelSystem, "_type="), err: &wantErr{param: "_type", contains: "empty entry"}},
		{name: "_type stray comma", in: getKickoff(t, LevelSystem, "_type=Patient,,Observation"), err: &wantErr{param: "_type", contains: "empty entry"}},
		{
			name: "_type stray comma dropped when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_type=Patient,")),
			want: sysReq(func(r *Request) { r.Types = []string{"Patient"}; r.Ignored = []string{"_type (empty entry)"} }),
		},
		{name: "_type is case-sensitive", in: getKickoff(t, LevelSystem, "_type=patient"), err: &wantErr{param: "_type", notSupported: true}},

		// _typeFilter.
		{
			name: "_typeFilter: the IG's example",
			in: getKickoff(t, LevelSystem, "_type=MedicationRequest,Condition&_typeFilter="+
				"MedicationRequest%3Fstatus%3Dactive,MedicationRequest%3Fstatus%3Dcompleted%26date%3Dgt2018-07-01T00%3A00%3A00Z"),
			want: sysReq(func(r *Request) {
				r.Types = []string{"MedicationRequest", "Condition"}
				r.TypeFilters = map[string][]string{"MedicationRequest": {"status=active", "status=completed&date=gt2018-07-01T00%3A00%3A00Z"}}
			}),
		},
		{
			name: "_typeFilter repeated parameters are ORed like a comma list",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fstatus%3Dfinal&_typeFilter=Observation%3Fcategory%3Dlaboratory,Condition%3Fclinical-status%3Dactive"),
			want: sysReq(func(r *Request) {
				r.TypeFilters = map[string][]string{"Observation": {"status=final", "category=laboratory"}, "Condition": {"clinical-status=active"}}
			}),
		},
		{
			name: "_typeFilter duplicates collapse",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fstatus%3Dfinal,Observation%3Fstatus%3Dfinal"),
			want: sysReq(func(r *Request) { r.TypeFilters = map[string][]string{"Observation": {"status=final"}} }),
		},
		{
			name: "_typeFilter: a once-encoded comma inside a query is FHIR's OR, not a separator",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fcode%3Dhttp%3A%2F%2Floinc.org%7C1%2Chttp%3A%2F%2Floinc.org%7C2,Condition%3Fcode%3Dx"),
			want: sysReq(func(r *Request) {
				r.TypeFilters = map[string][]string{
					"Observation": {"code=" + url.QueryEscape("http://loinc.org|1,http://loinc.org|2")},
					"Condition":   {"code=x"},
				}
			}),
		},
		{
			name: "_typeFilter: a twice-encoded & and = stay inside the value",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fnote%3Da%2526b%253Dc"),
			want: sysReq(func(r *Request) { r.TypeFilters = map[string][]string{"Observation": {"note=a%26b%3Dc"}} }),
		},
		{
			name: "_typeFilter: a once-encoded + of an offset stays a +",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fdate%3Dgt2020-01-01T00%3A00%3A00%2B01%3A00"),
			want: sysReq(func(r *Request) {
				r.TypeFilters = map[string][]string{"Observation": {"date=gt2020-01-01T00%3A00%3A00%2B01%3A00"}}
			}),
		},
		{
			name: "_typeFilter with modifiers and chained parameters",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fcode%3Atext%3Dglucose%26subject.name%3DX"),
			want: sysReq(func(r *Request) {
				r.TypeFilters = map[string][]string{"Observation": {"code%3Atext=glucose&subject.name=X"}}
			}),
		},
		{
			name: "_typeFilter without _type filters its type, other types stay whole",
			in:   getKickoff(t, LevelPatient, "_typeFilter=Observation%3Fstatus%3Dfinal"),
			want: Request{Level: LevelPatient, OutputFormat: OutputFormatNDJSON, TypeFilters: map[string][]string{"Observation": {"status=final"}}},
		},
		{
			name: "_typeFilter on a type not in _type",
			in:   getKickoff(t, LevelSystem, "_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal"),
			err:  &wantErr{param: "_typeFilter", contains: "which is not in _type"},
		},
		{
			name: "_typeFilter on a type not in _type dropped when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal")),
			want: sysReq(func(r *Request) {
				r.Types = []string{"Patient"}
				r.Ignored = []string{"_typeFilter on Observation (not in _type)"}
			}),
		},
		{
			name: "_typeFilter on an unknown type",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Foo%3Fx%3Dy"),
			err:  &wantErr{param: "_typeFilter", notSupported: true, contains: `filters "Foo"`},
		},
		{
			name: "_typeFilter on a type dropped from _type when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_type=Patient,Foo&_typeFilter=Foo%3Fx%3Dy")),
			want: sysReq(func(r *Request) {
				r.Types = []string{"Patient"}
				r.Ignored = []string{`_type value "Foo"`, `_typeFilter on "Foo"`}
			}),
		},
		{
			name: "_typeFilter not Type?query",
			in:   getKickoff(t, LevelSystem, "_typeFilter=status%3Dfinal"),
			err:  &wantErr{param: "_typeFilter", contains: "not a query of the form ResourceType?search-parameters"},
		},
		{
			name: "_typeFilter encoded once too often",
			in:   getKickoff(t, LevelSystem, "_typeFilter=Observation%253Fstatus%253Dfinal"),
			err:  &wantErr{param: "_typeFilter", contains: "percent-encoded once too often"},
		},
		{name: "_typeFilter without a query", in: getKickoff(t, LevelSystem, "_typeFilter=Observation%3F"), err: &wantErr{param: "_typeFilter", contains: "has no search parameters"}},
		{name: "_typeFilter without a type", in: getKickoff(t, LevelSystem, "_typeFilter=%3Fstatus%3Dfinal"), err: &wantErr{param: "_typeFilter", contains: "not a query of the form"}},
		{name: "_typeFilter empty", in: getKickoff(t, LevelSystem, "_typeFilter="), err: &wantErr{param: "_typeFilter", contains: "empty entry"}},
		{name: "_typeFilter parameter without a name", in: getKickoff(t, LevelSystem, "_typeFilter=Observation%3F%3Dfinal"), err: &wantErr{param: "_typeFilter", contains: "without a name"}},
		{name: "_typeFilter bad percent-encoding", in: getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fcode%3D%25zz"), err: &wantErr{param: "_typeFilter", contains: "not a valid URL query"}},
		{
			name: "_typeFilter: an invalid query drops all of its type's queries when lenient",
			in:   lenient(getKickoff(t, LevelSystem, "_typeFilter=Observation%3Fstatus%3Dfinal,Observation%3Fcode%3Dx%26_sort%3Ddate,Condition%3Fcode%3Dy")),
			want: sysReq(func(r *Request) {
				r.TypeFilters = map[string][]string{"Condition": {"code=y"}}
				r.Ignored = []string{"_typeFilter on Observation (an invalid query; all Observation resources are exported unfiltered)"}
			}),
		},
		{
			name: "_typeFilter: a valid query after an invalid one of its type is dropped too",
			in:   lenient(getKickoff(t, LevelSystem, "_typeFilter=Observation%3F_count%3D5,Observation%3Fstatus%3Dfinal")),
			want: sysReq(func(r *Request) {
				r.Ignored = []string{"_typeFilter on Observation (an invalid query; all Observation resources are exported unfiltered)"}
			}),
		},

		// patient: POST only, patient and group level only.
		{
			name: "patient in a GET",
			in:   getKickoff(t, LevelPatient, "patient=Patient/1"),
			err:  &wantErr{param: "patient", contains: "only valid in a POST"},
		},
		{
			name: "patient in a GET refused even when lenient",
			in:   lenient(getKickoff(t, LevelGroup, "patient=Patient/1")),
			err:  &wantErr{param: "patient", contains: "only valid in a POST"},
		},

		// Parameters this server does not support.
		{name: "_elements", in: getKickoff(t, LevelSystem, "_elements=id"), err: &wantErr{param: "_elements", notSupported: true, contains: "does not support _elements"}},
		{name: "includeAssociatedData", in: getKickoff(t, LevelSystem, "includeAssociatedData=LatestProvenanceResources"), err: &wantErr{param: "includeAssociatedData", notSupported: true}},
		{name: "_until (a later IG version)", in: getKickoff(t, LevelSystem, "_until=2024-01-01T00:00:00Z"), err: &wantErr{param: "_until", notSupported: true, contains: "later version"}},
		{name: "organizeOutputBy (a later IG version)", in: getKickoff(t, LevelSystem, "organizeOutputBy=Patient"), err: &wantErr{param: "organizeOutputBy", notSupported: true, contains: "later version"}},
		{name: "allowPartialManifests (a later IG version)", in: getKickoff(t, LevelSystem, "allowPartialManifests=true"), err: &wantErr{param: "allowPartialManifests", notSupported: true, contains: "later version"}},
		{name: "unknown parameter", in: getKickoff(t, LevelSystem, "_typo=1"), err: &wantErr{param: "_typo", notSupported: true, contains: "not a $export parameter"}},
		{name: "odd parameter names are quoted", in: getKickoff(t, LevelSystem, "a%20b=1"), err: &wantErr{param: `"a b"`, notSupported: true}},
		{name: "parameter names are case-sensitive", in: getKickoff(t, LevelSystem, "_Type=Patient"), err: &wantErr{param: "_Type", notSupported: true}},
		{
			name: "unsupported parameters dropped when lenient, in name order",
			in:   lenient(getKickoff(t, LevelGroup, "organizeOutputBy=Patient&_elements=id&zzz=1&includeAssociatedData=x&_until=2024-01-01T00:00:00Z&_type=Patient&allowPartialManifests=true")),
			want: Request{
				Level: LevelGroup, GroupID: "g1", OutputFormat: OutputFormatNDJSON, Types: []string{"Patient"},
				Ignored: []string{"_elements", "_until", "allowPartialManifests", "includeAssociatedData", "organizeOutputBy", "zzz"},
			},
		},

		// POST: the parameters are in a Parameters resource.
		{name: "POST with an empty body", in: postKickoff(LevelSystem, ""), want: sysReq(nil)},
		{name: "POST with no parameter", in: postKickoff(LevelSystem, `{"resourceType":"Parameters"}`), want: sysReq(nil)},
		{
			name: "POST with every supported parameter",
			in: postKickoff(LevelGroup, `{"resourceType":"Parameters","id":"x","parameter":[
				{"name":"_outputFormat","valueString":"ndjson"},
				{"name":"_since","valueInstant":"2024-01-02T03:04:05.5+02:00"},
				{"name":"_type","valueString":"Patient,Observation"},
				{"name":"_type","valueCode":"Condition"},
				{"name":"_typeFilter","valueString":"Observation?status=final,Observation?code=http://loinc.org|1,http://loinc.org|2"},
				{"name":"_typeFilter","valueString":"Condition?onset-date=ge2020-01-01T00:00:00+01:00"},
				{"name":"patient","valueReference":{"reference":"Patient/123"}},
				{"name":"patient","valueReference":{"reference":"Patient/456"}},
				{"name":"patient","valueReference":{"reference":"Patient/123"}}
			]}`),
			want: Request{
				Level: LevelGroup, GroupID: "g1", OutputFormat: OutputFormatNDJSON,
				Types: []string{"Patient", "Observation", "Condition"},
				Since: since("2024-01-02T01:04:05.5Z"),
				TypeFilters: map[string][]string{
					"Observation": {"status=final", "code=" + url.QueryEscape("http://loinc.org|1,http://loinc.org|2")},
					"Condition":   {"onset-date=ge2020-01-01T00%3A00%3A00%2B01%3A00"},
				},
				Patients: []string{"123", "456"},
			},
		},
		{
			name: "POST _since as valueDateTime",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_since","valueDateTime":"2024-01-02T03:04:05Z"}]}`),
			want: sysReq(func(r *Request) { r.Since = since("2024-01-02T03:04:05Z") }),
		},
		{
			name: "POST _since: no space repair in JSON",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2024-01-02T03:04:05 01:00"}]}`),
			err:  &wantErr{param: "_since", contains: "not a FHIR instant"},
		},
		{
			name: "POST _since without zone",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_since","valueString":"2024-01-02T03:04:05"}]}`),
			err:  &wantErr{param: "_since", contains: "has no timezone"},
		},
		{
			name: "POST _type of the wrong value type",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_type","valueInteger":3}]}`),
			err:  &wantErr{param: "_type", contains: `valueString or valueCode, not "valueInteger"`},
		},
		{
			name: "POST _typeFilter as part",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_typeFilter","part":[{"name":"x","valueString":"y"}]}]}`),
			err:  &wantErr{param: "_typeFilter", contains: "valueString"},
		},
		{
			name: "POST patient at patient level",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/a-1.b"}}]}`),
			want: Request{Level: LevelPatient, OutputFormat: OutputFormatNDJSON, Patients: []string{"a-1.b"}},
		},
		{
			name: "POST patient at system level",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`),
			err:  &wantErr{param: "patient", contains: "does not apply to a system-level export"},
		},
		{
			name: "POST patient at system level refused even when lenient",
			in:   lenient(postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`)),
			err:  &wantErr{param: "patient"},
		},
		{
			name: "POST patient as a string",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueString":"Patient/1"}]}`),
			err:  &wantErr{param: "patient", contains: "must be a valueReference"},
		},
		{
			name: "POST patient by identifier",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"identifier":{"system":"s","value":"v"}}}]}`),
			err:  &wantErr{param: "patient", notSupported: true, contains: "literal references"},
		},
		{
			name: "POST patient referencing another type",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Practitioner/1"}}]}`),
			err:  &wantErr{param: "patient", contains: "not a reference of the form Patient/[id]"},
		},
		{
			name: "POST patient absolute reference",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"https://other.example/fhir/Patient/1"}}]}`),
			err:  &wantErr{param: "patient", contains: "not a reference of the form Patient/[id]"},
		},
		{
			name: "POST patient versioned reference",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1/_history/2"}}]}`),
			err:  &wantErr{param: "patient", contains: "not a reference of the form Patient/[id]"},
		},
		{
			name: "POST valueReference not an object",
			in:   postKickoff(LevelPatient, `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":"Patient/1"}]}`),
			err:  &wantErr{param: "patient", contains: "not a FHIR Reference"},
		},
		{
			name: "POST with query parameters",
			in: func() KickoffInput {
				in := postKickoff(LevelSystem, `{"resourceType":"Parameters"}`)
				in.Query = url.Values{"_type": {"Patient"}}
				return in
			}(),
			err: &wantErr{contains: `move "_type" into the body`},
		},
		{name: "POST body not JSON", in: postKickoff(LevelSystem, `{"resourceType":"Parameters",`), err: &wantErr{contains: "not valid JSON"}},
		{name: "POST body a JSON array", in: postKickoff(LevelSystem, `[]`), err: &wantErr{contains: "must be a JSON object"}},
		{name: "POST body another resource", in: postKickoff(LevelSystem, `{"resourceType":"Patient"}`), err: &wantErr{contains: `not "Patient"`}},
		{name: "POST body without resourceType", in: postKickoff(LevelSystem, `{"parameter":[]}`), err: &wantErr{contains: "must be a FHIR Parameters resource"}},
		{name: "POST body null", in: postKickoff(LevelSystem, `null`), err: &wantErr{contains: "must be a FHIR Parameters resource"}},
		{name: "POST parameter not an array", in: postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":{"name":"_type"}}`), err: &wantErr{contains: "wrong JSON type"}},
		{name: "POST parameter without a name", in: postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"valueString":"Patient"}]}`), err: &wantErr{contains: "Parameter 1 of the Parameters resource has no name"}},
		{name: "POST parameter null", in: postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[null]}`), err: &wantErr{contains: "has no name"}},
		{name: "POST parameter without a value", in: postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_type"}]}`), err: &wantErr{param: "_type", contains: "has no value"}},
		{name: "POST parameter with a null value", in: postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":null}]}`), err: &wantErr{param: "_since", contains: "has no value"}},
		{
			name: "POST unknown parameter without a value refused even when lenient",
			in:   lenient(postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"foo"}]}`)),
			err:  &wantErr{param: "foo", contains: "has no value"},
		},
		{
			name: "POST parameter with two values",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient","valueCode":"Patient"}]}`),
			err:  &wantErr{param: "_type", contains: "more than one value (valueCode, valueString)"},
		},
		{
			name: "POST modifierExtension",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","modifierExtension":[{"url":"x","valueBoolean":true}]}`),
			err:  &wantErr{notSupported: true, contains: "modifierExtension"},
		},
		{
			name: "POST parameter modifierExtension",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient","modifierExtension":[{"url":"x"}]}]}`),
			err:  &wantErr{param: "_type", notSupported: true, contains: "modifierExtension"},
		},
		{
			name: "POST unsupported parameters dropped when lenient, in body order",
			in: lenient(postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[
				{"name":"zzz","part":[{"name":"a","valueString":"b"}]},
				{"name":"_elements","valueString":"id"},
				{"name":"includeAssociatedData","valueCode":"LatestProvenanceResources"}
			]}`)),
			want: sysReq(func(r *Request) { r.Ignored = []string{"zzz", "_elements", "includeAssociatedData"} }),
		},
		{
			name: "POST _typeFilter percent-encoded (as in a URL)",
			in:   postKickoff(LevelSystem, `{"resourceType":"Parameters","parameter":[{"name":"_typeFilter","valueString":"Observation%3Fstatus%3Dfinal"}]}`),
			err:  &wantErr{param: "_typeFilter", contains: "percent-encoded once too often"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKickoff(tc.in)
			if tc.err == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			var pe *ParamError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.err.param, pe.Param, "param of %q", err)
			require.Equal(t, tc.err.notSupported, pe.NotSupported, "issue code of %q", err)
			require.Contains(t, pe.Error(), tc.err.contains)
			requireClientMessage(t, pe.Error())
			require.Equal(t, Request{}, got)
		})
	}
}

// requireClientMessage checks that a message reads as a sentence and leaks no Go internals.
func requireClientMessage(t *testing.T, msg string) {
	t.Helper()
	require.True(t, strings.HasSuffix(msg, "."), "%q ends with a period", msg)
	require.Equal(t, strings.ToUpper(msg[:1]), msg[:1], "%q starts with a capital", msg)
	for _, internal := range []string{"json:", "unmarshal", "Unmarshal", "strconv", "parsing time", "invalid character", "runtime", "<nil>", "%!"} {
		require.NotContains(t, msg, internal)
	}
}

func TestParseKickoffCallerErrors(t *testing.T) {
	t.Parallel()
	base := KickoffInput{Method: "GET", Level: LevelSystem, KnownType: knownType, Now: testNow}
	for name, mutate := range map[string]func(*KickoffInput){
		"nil KnownType":            func(in *KickoffInput) { in.KnownType = nil },
		"zero Now":                 func(in *KickoffInput) { in.Now = time.Time{} },
		"unknown level":            func(in *KickoffInput) { in.Level = "tenant" },
		"group id at system level": func(in *KickoffInput) { in.GroupID = "g1" },
		"group id at patient level": func(in *KickoffInput) {
			in.Level, in.GroupID = LevelPatient, "g1"
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := base
			mutate(&in)
			_, err := ParseKickoff(in)
			require.Error(t, err)
			var pe *ParamError
			require.False(t, errors.As(err, &pe), "a caller's mistake is not the client's: %v", err)
		})
	}
}

// TestParseKickoffFirstError pins which error a request with several wins, so that the same
// request always gets the same answer.
func TestParseKickoffFirstError(t *testing.T) {
	t.Parallel()
	in := getKickoff(t, LevelSystem, "zzz=1&_elements=id&_type=Foo&_since=bad&_outputFormat=csv")
	for range 20 {
		_, err := ParseKickoff(in)
		var pe *ParamError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "_outputFormat", pe.Param)
	}
	in = getKickoff(t, LevelSystem, "zzz=1&_elements=id&aaa=2")
	for range 20 {
		_, err := ParseKickoff(in)
		var pe *ParamError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "_elements", pe.Param)
	}
}

// TestTypeFiltersParseBack checks the contract of Request.TypeFilters: url.ParseQuery of a
// stored query yields the search parameters as the client meant them.
func TestTypeFiltersParseBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rawQuery string
		want           url.Values
	}{
		{"plain", "_typeFilter=Observation%3Fstatus%3Dfinal%26category%3Dlaboratory", url.Values{"status": {"final"}, "category": {"laboratory"}}},
		{"OR list", "_typeFilter=Observation%3Fcode%3Da%2Cb", url.Values{"code": {"a,b"}}},
		{"escaped comma", "_typeFilter=Observation%3Fcode%3Da%5C%2Cb", url.Values{"code": {`a\,b`}}},
		{"offset", "_typeFilter=Observation%3Fdate%3Dge2020-01-01T00%3A00%3A00%2B01%3A00", url.Values{"date": {"ge2020-01-01T00:00:00+01:00"}}},
		{"twice-encoded plus", "_typeFilter=Observation%3Fdate%3Dge2020-01-01T00%3A00%3A00%252B01%3A00", url.Values{"date": {"ge2020-01-01T00:00:00+01:00"}}},
		{"space", "_typeFilter=Patient%3Fname%3DJohn%2520Smith", url.Values{"name": {"John Smith"}}},
		{"ampersand in a value", "_typeFilter=Observation%3Fnote%3Da%2526b", url.Values{"note": {"a&b"}}},
		{"no value", "_typeFilter=Observation%3Fstatus", url.Values{"status": {""}}},
		{"stray ampersands", "_typeFilter=Observation%3F%26status%3Dfinal%26%26", url.Values{"status": {"final"}}},
		{"repeated parameter", "_typeFilter=Observation%3Fdate%3Dge2020%26date%3Dlt2021", url.Values{"date": {"ge2020", "lt2021"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := ParseKickoff(getKickoff(t, LevelSystem, tc.rawQuery))
			require.NoError(t, err)
			qs := append(req.TypeFilters["Observation"], req.TypeFilters["Patient"]...)
			require.Len(t, qs, 1)
			got, err := url.ParseQuery(qs[0])
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestTypeFilterForbiddenParams covers every FHIR search result parameter, with modifiers.
func TestTypeFilterForbiddenParams(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"_include", "_revinclude", "_sort", "_count", "_elements", "_summary", "_total", "_contained", "_containedType", "_include:iterate", "_revinclude:iterate"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			raw := "_typeFilter=" + url.QueryEscape("Observation?status=final&"+p+"=x")
			_, err := ParseKickoff(getKickoff(t, LevelSystem, raw))
			var pe *ParamError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "_typeFilter", pe.Param)
			require.False(t, pe.NotSupported)
			require.Contains(t, pe.Error(), "uses \""+p+"\"")
			require.Contains(t, pe.Error(), "SHALL NOT be used")
		})
	}
	// _id, _lastUpdated and friends select resources: allowed.
	req, err := ParseKickoff(getKickoff(t, LevelSystem, "_typeFilter="+url.QueryEscape("Observation?_lastUpdated=gt2020&_id=1&_tag=x")))
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"Observation": {"_lastUpdated=gt2020&_id=1&_tag=x"}}, req.TypeFilters)
}

func TestSplitFilters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"A?x=1", []string{"A?x=1"}},
		{"A?x=1,B?y=2", []string{"A?x=1", "B?y=2"}},
		{"A?x=1, B?y=2", []string{"A?x=1", "B?y=2"}},
		{"A?x=1,2,B?y=2,3", []string{"A?x=1,2", "B?y=2,3"}},
		{"A?x=1,b?y=2", []string{"A?x=1,b?y=2"}},
		{",A?x=1", []string{"", "A?x=1"}},
		{"A?x=1,", []string{"A?x=1,"}},
		{"", []string{""}},
	} {
		require.Equal(t, tc.want, splitFilters(tc.in), tc.in)
	}
}

func TestParamError(t *testing.T) {
	t.Parallel()
	e := &ParamError{Param: "_since", Reason: "it is empty"}
	require.Equal(t, "Parameter _since: it is empty.", e.Error())
	require.Equal(t, "invalid", e.IssueCode())
	e = &ParamError{Reason: "a kick-off must be a GET or a POST", NotSupported: true}
	require.Equal(t, "A kick-off must be a GET or a POST.", e.Error())
	require.Equal(t, "not-supported", e.IssueCode())
}

// TestRequestJSON checks that a parsed request survives the JSON it is stored as.
func TestRequestJSON(t *testing.T) {
	t.Parallel()
	req, err := ParseKickoff(lenient(getKickoff(t, LevelGroup, "_since=2024-01-02T03:04:05.123456789%2B01:00&_type=Observation,Foo&_typeFilter=Observation%3Fcode%3Da%2Cb")))
	require.NoError(t, err)
	b, err := json.Marshal(req)
	require.NoError(t, err)
	var back Request
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, req, back)
	require.True(t, back.Since.Equal(time.Date(2024, 1, 2, 2, 4, 5, 123456789, time.UTC)))
}

func TestClip(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"abc"`, clip("abc"))
	require.Equal(t, `"a\nb"`, clip("a\nb"))
	long := clip(strings.Repeat("é", 100))
	require.Equal(t, `"`+strings.Repeat("é", 64)+`…"`, long)
}
