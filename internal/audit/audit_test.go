package audit

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var testObserver = Observer{Name: "interop", BaseURL: "https://interop.example/"}

// The whole AuditEvent of a search naming a Patient: BALP's basic shape, element by element.
func TestBuildSearchEvent(t *testing.T) {
	recorded := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	row, err := Build(Record{
		ID: "0190f1d2-0000-7000-8000-000000000001", Recorded: recorded, Tenant: "tenant-a",
		Subtype: InteractionSearchType, Action: Execute, Status: 200, Agent: "lab-client", SourceAddress: "192.0.2.7",
		Patients: []string{"Patient/123"}, Query: "Observation?patient=123&code=1234-5", RequestID: "req-1",
	}, testObserver)
	require.NoError(t, err)

	want := map[string]any{
		"resourceType": "AuditEvent",
		"id":           "0190f1d2-0000-7000-8000-000000000001",
		"type":         map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"},
		"subtype":      []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type", "display": "search-type"}},
		"action":       "E",
		"recorded":     "2026-03-01T09:00:00.123456Z",
		"outcome":      "0",
		"outcomeDesc":  "HTTP 200",
		"agent": []any{
			map[string]any{
				"type":      map[string]any{"coding": []any{map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153", "display": "Source Role ID"}}},
				"who":       map[string]any{"display": "lab-client", "identifier": map[string]any{"system": "urn:nhp:interop:client", "value": "lab-client"}},
				"requestor": true,
				"network":   map[string]any{"address": "192.0.2.7", "type": "2"},
			},
			map[string]any{
				"type":      map[string]any{"coding": []any{map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110152", "display": "Destination Role ID"}}},
				"who":       map[string]any{"display": "interop", "identifier": map[string]any{"system": "urn:ietf:rfc:3986", "value": "https://interop.example/"}},
				"requestor": false,
				"network":   map[string]any{"address": "interop.example", "type": "1"},
			},
		},
		"source": map[string]any{
			"site":     "tenant-a",
			"observer": map[string]any{"display": "interop", "identifier": map[string]any{"system": "urn:ietf:rfc:3986", "value": "https://interop.example/"}},
			"type":     []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}},
		},
		"entity": []any{
			map[string]any{
				"what": map[string]any{"reference": "Patient/123"},
				"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
				"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
			},
			map[string]any{
				"type":  map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
				"role":  map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
				"query": base64.StdEncoding.EncodeToString([]byte("Observation?patient=123&code=1234-5")),
			},
			map[string]any{
				"what": map[string]any{"identifier": map[string]any{"value": "req-1"}},
				"type": map[string]any{"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId", "display": "X-Request-Id"},
			},
		},
	}
	var got map[string]any
	require.NoError(t, json.Unmarshal(row.Event, &got))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("AuditEvent (-want +got):\n%s", diff)
	}

	wantRow := Row{ID: "0190f1d2-0000-7000-8000-000000000001", Tenant: "tenant-a", Recorded: recorded.UTC().Truncate(time.Microsecond),
		TypeCode: "rest", Subtype: "search-type", Action: Execute, Outcome: 0, HTTPStatus: 200, Agent: "lab-client",
		EntityRefs: []string{"Patient/123"}, PatientRefs: []string{"Patient/123"}, SourceAddress: "192.0.2.7", RequestID: "req-1"}
	row.Event = nil
	if diff := cmp.Diff(wantRow, row); diff != "" {
		t.Fatalf("row (-want +got):\n%s", diff)
	}
}

// Entities: FHIR references keep their version in the event and are indexed without it; the
// service's own objects are identifiers with their role; duplicates and junk are dropped.
func TestBuildEntities(t *testing.T) {
	row, err := Build(Record{
		ID: "x", Recorded: time.Unix(0, 0), Tenant: "t", Subtype: InteractionVRead, Action: Read, Status: 200,
		Entities: []string{
			"Observation/9/_history/2", "http://host/fhir/Observation/9/_history/2", "Observation/9",
			"Hl7Message/0190f1d2-0000-7000-8000-000000000001", "FhirRoutingRule/r1",
			"not a reference", "Observation/bad id", "lower/case",
		},
		Patients: []string{"Patient/p1", "https://host/fhir/Patient/p1/_history/3", "Group/g1", "Patient/"},
	}, testObserver)
	require.NoError(t, err)
	require.Equal(t, []string{"Patient/p1", "Observation/9", "Hl7Message/0190f1d2-0000-7000-8000-000000000001", "FhirRoutingRule/r1"}, row.EntityRefs)
	require.Equal(t, []string{"Patient/p1"}, row.PatientRefs)
	var ev struct {
		Entity []struct {
			What struct {
				Reference  string
				Identifier *struct{ System, Value string }
				Display    string
			}
			Role struct{ Code, Display string }
		}
	}
	require.NoError(t, json.Unmarshal(row.Event, &ev))
	require.Len(t, ev.Entity, 5)
	require.Equal(t, "Patient/p1", ev.Entity[0].What.Reference)
	require.Equal(t, "Observation/9/_history/2", ev.Entity[1].What.Reference)
	require.Equal(t, "Observation/9", ev.Entity[2].What.Reference)
	require.Equal(t, "urn:nhp:interop:Hl7Message", ev.Entity[3].What.Identifier.System)
	require.Equal(t, "Hl7Message/0190f1d2-0000-7000-8000-000000000001", ev.Entity[3].What.Display)
	require.Equal(t, "Routing Criteria", ev.Entity[4].Role.Display)
}

func TestBuildOtherTypesAndOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name                string
		rec                 Record
		typeCode, subCode   string
		outcome, httpStatus int16
		desc                string
	}{
		{"login", Record{Type: TypeUserAuthentication, Subtype: SubtypeLogin, Action: Execute, Status: 200}, "110114", "110122", 0, 200, "HTTP 200"},
		{"refused login", Record{Type: TypeUserAuthentication, Subtype: SubtypeLogin, Action: Execute, Status: 401}, "110114", "110122", 4, 401, "HTTP 401"},
		{"export file", Record{Type: TypeExport, Subtype: InteractionRead, Action: Read, Status: 200}, "110106", "read", 0, 200, "HTTP 200"},
		{"forbidden", Record{Subtype: InteractionRead, Action: Read, Status: 403}, "rest", "read", 4, 403, "HTTP 403"},
		{"owner failed", Record{Subtype: InteractionSearchType, Action: Execute, Status: 502}, "rest", "search-type", 8, 502, "HTTP 502"},
		{"no answer", Record{Subtype: InteractionRead, Action: Read}, "rest", "read", 12, 0, "no answer was given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rec.ID, tc.rec.Tenant, tc.rec.Recorded = "id", "t", time.Now()
			row, err := Build(tc.rec, testObserver)
			require.NoError(t, err)
			require.Equal(t, tc.typeCode, row.TypeCode)
			require.Equal(t, tc.outcome, row.Outcome)
			require.Equal(t, tc.httpStatus, row.HTTPStatus)
			var ev struct {
				Type        struct{ Code string }
				Subtype     []struct{ System, Code string }
				Outcome     string
				OutcomeDesc string
			}
			require.NoError(t, json.Unmarshal(row.Event, &ev))
			require.Equal(t, tc.typeCode, ev.Type.Code)
			require.Equal(t, tc.subCode, ev.Subtype[0].Code)
			require.Equal(t, tc.desc, ev.OutcomeDesc)
		})
	}
}

// What a record keeps is storable text: no NUL or control characters, valid UTF-8, bounded.
func TestBuildCleansText(t *testing.T) {
	row, err := Build(Record{ID: "id", Recorded: time.Now(), Tenant: "t", Action: Read, Status: 200,
		Agent: "cli\x00ent\xff\n" + strings.Repeat("é", 300), RequestID: strings.Repeat("r", 500), Query: "Patient?name=\x00x"}, testObserver)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(row.Agent, "client"))
	require.LessOrEqual(t, len(row.Agent), 256)
	require.Len(t, row.RequestID, 128)
	require.NotContains(t, string(row.Event), `\u0000`)
	require.True(t, json.Valid(row.Event))
}

func TestBuildRefusesIncompleteRecords(t *testing.T) {
	for name, r := range map[string]Record{
		"no id":     {Tenant: "t", Action: Read},
		"no tenant": {ID: "x", Action: Read},
		"no action": {ID: "x", Tenant: "t"},
		"bad":       {ID: "x", Tenant: "t", Action: "X"},
	} {
		_, err := Build(r, testObserver)
		require.Error(t, err, name)
	}
}

func TestActionOf(t *testing.T) {
	for in, want := range map[string]Action{
		InteractionRead: Read, InteractionVRead: Read, InteractionCreate: Create, InteractionUpdate: Update,
		InteractionPatch: Update, InteractionDelete: Delete, InteractionSearchType: Execute, InteractionHistoryInst: Execute,
		InteractionBatch: Execute, InteractionTransaction: Execute, InteractionOperation: Execute,
	} {
		require.Equal(t, want, ActionOf(in), in)
	}
}

func TestPatientsOfSearch(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		query string
		want  []string
	}{
		{"Observation", "patient=123", []string{"Patient/123"}},
		{"Observation", "patient=Patient/123,Patient/456", []string{"Patient/123", "Patient/456"}},
		{"Observation", "subject=Patient/7&code=x", []string{"Patient/7"}},
		{"Observation", "subject=7", nil}, // a bare subject may be a Group
		{"Observation", "subject:Patient=7", []string{"Patient/7"}},
		{"Observation", "subject=Group/1", nil},
		{"Observation", "patient=https://other/fhir/Patient/9", []string{"Patient/9"}},
		{"Coverage", "beneficiary=Patient/c1", []string{"Patient/c1"}},
		{"Patient", "_id=a,b", []string{"Patient/a", "Patient/b"}},
		{"Observation", "_id=a", nil},
		{"Observation", "patient:missing=true", nil},
		{"Observation", "code=1234", nil},
	} {
		q, err := url.ParseQuery(tc.query)
		require.NoError(t, err)
		got := PatientsOfSearch(tc.typ, q)
		require.ElementsMatch(t, tc.want, got, "%s?%s", tc.typ, tc.query)
	}
}

func TestPatientsOfResource(t *testing.T) {
	for body, want := range map[string][]string{
		`{"resourceType":"Patient","id":"p1","name":[{"family":"Doe"}]}`:                {"Patient/p1"},
		`{"resourceType":"Patient","name":[{"family":"Doe"}]}`:                          nil,
		`{"resourceType":"Observation","subject":{"reference":"Patient/p2"}}`:           {"Patient/p2"},
		`{"resourceType":"Observation","subject":{"reference":"Group/g"}}`:              nil,
		`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/p3"}}`:    {"Patient/p3"},
		`{"resourceType":"Coverage","beneficiary":{"reference":"http://x/Patient/p4"}}`: {"Patient/p4"},
		`{"resourceType":"OperationOutcome","issue":[]}`:                                nil,
		`not json`: nil,
	} {
		require.Equal(t, want, PatientsOfResource([]byte(body)), body)
	}
}

func TestParseSearch(t *testing.T) {
	q := func(s string) url.Values {
		v, err := url.ParseQuery(s)
		require.NoError(t, err)
		return v
	}
	s, err := ParseSearch(q("patient=123&agent=lab&entity=Observation/9/_history/2&action=C,U&outcome=4,8&_count=10&_cursor=abc" +
		"&date=ge2026-03-01&date=lt2026-03-02T12:00:00Z"))
	require.NoError(t, err)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	before := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	want := Search{Agent: "lab", Entity: "Observation/9", Patient: "Patient/123", Actions: []Action{Create, Update},
		Outcomes: []int16{4, 8}, From: &from, Before: &before, Count: 10, Cursor: "abc"}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}

	// eq is the whole precision; gt starts after it; le ends with it.
	s, err = ParseSearch(q("date=2026-03"))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), *s.From)
	require.Equal(t, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), *s.Before)
	s, err = ParseSearch(q("date=gt2026-03-01&date=le2026-03-05T10:00%2B01:00"))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), *s.From)
	require.Equal(t, time.Date(2026, 3, 5, 9, 1, 0, 0, time.UTC), *s.Before)
	s, err = ParseSearch(url.Values{})
	require.NoError(t, err)
	require.Equal(t, DefaultCount, s.Count)

	for _, bad := range []string{"name=x", "action=X", "outcome=3", "date=yesterday", "date=xx2026", "_count=0", "_count=1001",
		"entity=nope", "patient=Group/1", "agent=a&agent=b"} {
		_, err := ParseSearch(q(bad))
		require.Error(t, err, bad)
	}
}
