// Package audit builds the service's audit records: one FHIR R4 AuditEvent per access to PHI,
// in the shape of IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/):
// what kind of event (type, subtype, action), when (recorded), with what result (outcome,
// from the HTTP status), who asked (the client agent: token subject, network address, the
// requestor) and who answered (the server agent and source.observer), for which tenant
// (source.site), and what was touched (entity: the resource or object, the Patient whose
// record it is, the search query, the request id).
//
// A Record says what happened; Build turns it into the AuditEvent and the Row that
// gateway/auditlog writes (the event plus the columns /admin/audit-events filters on).
// Records hold references, ids and the query string, never bodies or other PHI values.
//
// Pure: no I/O, no HTTP, no SQL.
package audit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nhp/interop/internal/routing"
)

// Action is AuditEvent.action: what the agent did to the entities.
type Action string

// The actions (http://hl7.org/fhir/audit-event-action).
const (
	Create  Action = "C"
	Read    Action = "R"
	Update  Action = "U"
	Delete  Action = "D"
	Execute Action = "E"
)

// Valid reports whether a is one of the five actions.
func (a Action) Valid() bool {
	switch a {
	case Create, Read, Update, Delete, Execute:
		return true
	}
	return false
}

// Event types (AuditEvent.type) and the subtypes that go with the non-REST ones.
const (
	// TypeREST is audit-event-type "rest": a RESTful operation, whose subtype is the FHIR
	// interaction (read, search-type, create, …).
	TypeREST = "rest"
	// TypeUserAuthentication is DICOM 110114 User Authentication (a token issuance), with
	// subtype SubtypeLogin.
	TypeUserAuthentication = "110114"
	// TypeExport is DICOM 110106 Export: data leaves the system (Bulk Data $export kick-off and
	// file downloads), with the FHIR interaction as subtype.
	TypeExport = "110106"
	// SubtypeLogin is DICOM 110122 Login.
	SubtypeLogin = "110122"
)

// FHIR restful interactions (http://hl7.org/fhir/restful-interaction), the subtypes of REST
// and Export events.
const (
	InteractionRead           = "read"
	InteractionVRead          = "vread"
	InteractionUpdate         = "update"
	InteractionPatch          = "patch"
	InteractionDelete         = "delete"
	InteractionHistory        = "history"
	InteractionHistoryInst    = "history-instance"
	InteractionHistoryType    = "history-type"
	InteractionHistorySystem  = "history-system"
	InteractionCreate         = "create"
	InteractionSearch         = "search"
	InteractionSearchType     = "search-type"
	InteractionSearchSystem   = "search-system"
	InteractionCapabilities   = "capabilities"
	InteractionTransaction    = "transaction"
	InteractionBatch          = "batch"
	InteractionOperation      = "operation"
	restfulInteractionSystem  = "http://hl7.org/fhir/restful-interaction"
	auditEventTypeSystem      = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	dicomSystem               = "http://dicom.nema.org/resources/ontology/DCM"
	entityTypeSystem          = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	objectRoleSystem          = "http://terminology.hl7.org/CodeSystem/object-role"
	securitySourceTypeSystem  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	balpEntityTypeSystem      = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	uriSystem                 = "urn:ietf:rfc:3986"
	clientIdentifierSystem    = "urn:nhp:interop:client"
	objectIdentifierSystemPfx = "urn:nhp:interop:"
)

// ActionOf is the action of a FHIR interaction, as BALP assigns them: reads R, writes C/U/D,
// searches, history, batches, transactions and operations E.
func ActionOf(interaction string) Action {
	switch interaction {
	case InteractionRead, InteractionVRead, InteractionCapabilities:
		return Read
	case InteractionCreate:
		return Create
	case InteractionUpdate, InteractionPatch:
		return Update
	case InteractionDelete:
		return Delete
	}
	return Execute
}

// Outcome codes (AuditEvent.outcome).
const (
	OutcomeSuccess        int16 = 0
	OutcomeMinorFailure   int16 = 4
	OutcomeSeriousFailure int16 = 8
	OutcomeMajorFailure   int16 = 12
)

// OutcomeOf is the outcome of an answer with HTTP status: success below 400, a minor failure
// for a refusal of the request (4xx: invalid, unauthorised, forbidden, not found), a serious
// failure for the service's own (5xx), a major failure when no answer was given (status 0).
func OutcomeOf(status int) int16 {
	switch {
	case status <= 0:
		return OutcomeMajorFailure
	case status < 400:
		return OutcomeSuccess
	case status < 500:
		return OutcomeMinorFailure
	}
	return OutcomeSeriousFailure
}

// Record is one audited event, as the gateway saw it.
type Record struct {
	// ID is the AuditEvent's id (a UUID), assigned once so that a retried write is recognised.
	ID string
	// Recorded is when the request was answered.
	Recorded time.Time
	// Tenant whose data was touched.
	Tenant string
	// Type is TypeREST, TypeUserAuthentication or TypeExport; Subtype its interaction (or
	// SubtypeLogin).
	Type, Subtype string
	Action        Action
	// Status is the HTTP status answered (0: none).
	Status int
	// Agent identifies the requesting client: the bearer token's subject, or the client id of
	// a token request.
	Agent string
	// SourceAddress is the client's network address (IP).
	SourceAddress string
	// Entities are the references of what was touched: FHIR references ("Observation/9",
	// "Observation/9/_history/2") or the service's own objects ("Hl7Message/<uuid>").
	Entities []string
	// Patients are the Patients whose record was touched ("Patient/123").
	Patients []string
	// Query is the search, as "Type?params" (or "?params" for a system-level one); "" when
	// the interaction was not a search.
	Query string
	// RequestID is the X-Request-Id of the request, correlating the event with logs.
	RequestID string
}

// Observer is the server that records events: the AuditEvent's source and server agent.
type Observer struct {
	// Name is the system's name ("interop").
	Name string
	// BaseURL is its public base URL.
	BaseURL string
}

// Row is a built record: the AuditEvent and the columns it is searched by. Its JSON field
// names are those of the audit_events table (gateway/auditlog writes batches of Rows as one
// JSON array), and a Row reads back from its JSON unchanged (the writer's spool).
type Row struct {
	ID            string          `json:"id"`
	Tenant        string          `json:"tenant_id"`
	Recorded      time.Time       `json:"recorded"`
	TypeCode      string          `json:"type_code"`
	Subtype       string          `json:"subtype"`
	Action        Action          `json:"action"`
	Outcome       int16           `json:"outcome"`
	HTTPStatus    int16           `json:"http_status"`
	Agent         string          `json:"agent"`
	EntityRefs    []string        `json:"entity_refs"`
	PatientRefs   []string        `json:"patient_refs"`
	SourceAddress string          `json:"source_address"`
	RequestID     string          `json:"request_id"`
	Event         json.RawMessage `json:"event"`
}

// Limits of what one record keeps: an agent, request id or address longer than the columns
// allow is cut; at most MaxEntities references (a 1,000-entry batch touches 1,000 resources,
// and its event names them all); a query of at most MaxQueryBytes.
const (
	MaxEntities   = 1000
	MaxQueryBytes = 8 << 10
	maxAgent      = 256
	maxRequestID  = 128
	maxAddress    = 64
)

// Build makes the AuditEvent of r, observed by o, and its Row.
func Build(r Record, o Observer) (Row, error) {
	if r.ID == "" {
		return Row{}, errors.New("audit: record without id")
	}
	if r.Tenant == "" {
		return Row{}, errors.New("audit: record without tenant")
	}
	if !r.Action.Valid() {
		return Row{}, fmt.Errorf("audit: action %q", r.Action)
	}
	if r.Type == "" {
		r.Type = TypeREST
	}
	status := r.Status
	if status < 100 || status > 599 {
		status = 0
	}
	row := Row{
		ID: r.ID, Tenant: clean(r.Tenant, 64), Recorded: r.Recorded.UTC().Truncate(time.Microsecond), TypeCode: r.Type, Subtype: clean(r.Subtype, 64),
		Action: r.Action, Outcome: OutcomeOf(status), HTTPStatus: int16(status), //nolint:gosec // 0 or 100..599
		Agent: clean(r.Agent, maxAgent), SourceAddress: clean(r.SourceAddress, maxAddress), RequestID: clean(r.RequestID, maxRequestID),
		EntityRefs: []string{}, PatientRefs: []string{},
	}
	var entities []entity
	for _, p := range r.Patients {
		ref, ok := PatientRef(p)
		if !ok || slices.Contains(row.PatientRefs, ref) || len(row.PatientRefs) >= MaxEntities {
			continue
		}
		row.PatientRefs = append(row.PatientRefs, ref)
		row.EntityRefs = append(row.EntityRefs, ref)
		entities = append(entities, patientEntity(ref))
	}
	seen := make(map[string]bool, len(r.Entities))
	for _, e := range r.Entities {
		typ, id, version, ok := splitRef(e)
		if !ok || len(entities) >= MaxEntities || seen[typ+"/"+id+"/"+version] {
			continue
		}
		seen[typ+"/"+id+"/"+version] = true
		ref := typ + "/" + id
		if !slices.Contains(row.EntityRefs, ref) {
			row.EntityRefs = append(row.EntityRefs, ref)
		}
		entities = append(entities, dataEntity(typ, id, version))
	}
	if r.Query != "" {
		q := r.Query
		if len(q) > MaxQueryBytes {
			q = q[:MaxQueryBytes]
		}
		entities = append(entities, entity{
			Type:  newCoding(entityTypeSystem, "2", "System Object"),
			Role:  &coding{System: objectRoleSystem, Code: "24", Display: "Query"},
			Query: base64.StdEncoding.EncodeToString([]byte(strings.ToValidUTF8(q, "\uFFFD"))),
		})
	}
	if row.RequestID != "" {
		entities = append(entities, entity{
			What: &reference{Identifier: &identifier{Value: row.RequestID}},
			Type: newCoding(balpEntityTypeSystem, "XrequestId", "X-Request-Id"),
		})
	}
	ev := event{
		ResourceType: "AuditEvent", ID: row.ID,
		Type: eventType(r.Type), Action: string(r.Action),
		Recorded: row.Recorded.Format(time.RFC3339Nano), Outcome: strconv.Itoa(int(row.Outcome)),
		Source: source{
			Site:     row.Tenant,
			Observer: reference{Display: o.Name, Identifier: &identifier{System: uriSystem, Value: o.BaseURL}},
			Type:     []coding{newCoding(securitySourceTypeSystem, "4", "Application Server")},
		},
		Entity: entities,
	}
	if status > 0 {
		ev.OutcomeDesc = "HTTP " + strconv.Itoa(status)
	} else {
		ev.OutcomeDesc = "no answer was given"
	}
	if st := subtype(r.Type, row.Subtype); st != nil {
		ev.Subtype = []coding{*st}
	}
	client := agent{
		Type:      concept(newCoding(dicomSystem, "110153", "Source Role ID")),
		Who:       &reference{Display: row.Agent, Identifier: &identifier{System: clientIdentifierSystem, Value: row.Agent}},
		Requestor: true,
	}
	if row.Agent == "" {
		client.Who = &reference{Display: "unidentified client"}
	}
	if row.SourceAddress != "" {
		client.Network = &network{Address: row.SourceAddress, Type: "2"}
	}
	server := agent{
		Type:      concept(newCoding(dicomSystem, "110152", "Destination Role ID")),
		Who:       &reference{Display: o.Name, Identifier: &identifier{System: uriSystem, Value: o.BaseURL}},
		Requestor: false,
	}
	if host := hostOf(o.BaseURL); host != "" {
		server.Network = &network{Address: host, Type: "1"}
	}
	ev.Agent = []agent{client, server}
	b, err := json.Marshal(ev)
	if err != nil {
		return Row{}, fmt.Errorf("audit: marshal event: %w", err)
	}
	row.Event = b
	return row, nil
}

// The AuditEvent's JSON (R4), the elements BALP's basic shape uses.
type event struct {
	ResourceType string   `json:"resourceType"`
	ID           string   `json:"id"`
	Type         coding   `json:"type"`
	Subtype      []coding `json:"subtype,omitempty"`
	Action       string   `json:"action"`
	Recorded     string   `json:"recorded"`
	Outcome      string   `json:"outcome"`
	OutcomeDesc  string   `json:"outcomeDesc,omitempty"`
	Agent        []agent  `json:"agent"`
	Source       source   `json:"source"`
	Entity       []entity `json:"entity,omitempty"`
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

func newCoding(system, code, display string) coding {
	return coding{System: system, Code: code, Display: display}
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
}

func concept(c coding) *codeableConcept { return &codeableConcept{Coding: []coding{c}} }

type identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type network struct {
	Address string `json:"address"`
	// Type is 1 machine name, 2 IP address (audit-event-network-type).
	Type string `json:"type"`
}

type agent struct {
	Type      *codeableConcept `json:"type,omitempty"`
	Who       *reference       `json:"who,omitempty"`
	Requestor bool             `json:"requestor"`
	Network   *network         `json:"network,omitempty"`
}

type source struct {
	Site     string    `json:"site,omitempty"`
	Observer reference `json:"observer"`
	Type     []coding  `json:"type,omitempty"`
}

type entity struct {
	What  *reference `json:"what,omitempty"`
	Type  coding     `json:"type"`
	Role  *coding    `json:"role,omitempty"`
	Query string     `json:"query,omitempty"`
}

func eventType(t string) coding {
	switch t {
	case TypeUserAuthentication:
		return newCoding(dicomSystem, t, "User Authentication")
	case TypeExport:
		return newCoding(dicomSystem, t, "Export")
	}
	return newCoding(auditEventTypeSystem, TypeREST, "Restful Operation")
}

func subtype(typ, st string) *coding {
	switch {
	case st == "":
		return nil
	case typ == TypeUserAuthentication && st == SubtypeLogin:
		c := newCoding(dicomSystem, SubtypeLogin, "Login")
		return &c
	}
	c := newCoding(restfulInteractionSystem, st, st)
	return &c
}

func patientEntity(ref string) entity {
	return entity{
		What: &reference{Reference: ref},
		Type: newCoding(entityTypeSystem, "1", "Person"),
		Role: &coding{System: objectRoleSystem, Code: "1", Display: "Patient"},
	}
}

// objectRoles are the object-role of the service's own objects that the admin API and the
// export touch; a FHIR resource is a Domain Resource.
var objectRoles = map[string]coding{
	"FhirRoutingRule":  newCoding(objectRoleSystem, "23", "Routing Criteria"),
	"AuthClient":       newCoding(objectRoleSystem, "13", "Security Resource"),
	"BulkExportJob":    newCoding(objectRoleSystem, "20", "Job"),
	"BulkExportFile":   newCoding(objectRoleSystem, "3", "Report"),
	"InteropConnector": newCoding(objectRoleSystem, "16", "Data Destination"),
}

func dataEntity(typ, id, version string) entity {
	if routing.IsResourceType(typ) {
		ref := typ + "/" + id
		if version != "" {
			ref += "/_history/" + version
		}
		return entity{
			What: &reference{Reference: ref},
			Type: newCoding(entityTypeSystem, "2", "System Object"),
			Role: &coding{System: objectRoleSystem, Code: "4", Display: "Domain Resource"},
		}
	}
	role, ok := objectRoles[typ]
	if !ok {
		role = newCoding(objectRoleSystem, "4", "Domain Resource")
	}
	return entity{
		What: &reference{Identifier: &identifier{System: objectIdentifierSystemPfx + typ, Value: id}, Display: typ + "/" + id},
		Type: newCoding(entityTypeSystem, "2", "System Object"),
		Role: &role,
	}
}

// splitRef reads "Type/id" or "Type/id/_history/vid" (a relative reference, or the tail of an
// absolute one). Type is a FHIR resource type or one of the service's object names (an
// upper-case letter then letters); id and vid are FHIR ids, or UUIDs.
func splitRef(s string) (typ, id, version string, ok bool) {
	parts := strings.Split(strings.TrimRight(s, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		version = parts[n-1]
		parts = parts[:n-2]
		if !validID(version) {
			return "", "", "", false
		}
	}
	n := len(parts)
	if n < 2 {
		return "", "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	if !validTypeName(typ) {
		return "", "", "", false
	}
	if routing.IsResourceType(typ) && !validID(id) || !validObjectID(id) {
		return "", "", "", false
	}
	return typ, id, version, true
}

// validObjectID is the id of one of the service's own objects: a UUID, or a SMART client id
// ([A-Za-z0-9._~-]{1,128}).
func validObjectID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// PatientRef reads a reference to a Patient ("Patient/123", "Patient/123/_history/2", an
// absolute URL ending so) as "Patient/123".
func PatientRef(s string) (string, bool) {
	typ, id, _, ok := splitRef(s)
	if !ok || typ != "Patient" {
		return "", false
	}
	return "Patient/" + id, true
}

func validTypeName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validID is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// clean makes s storable text of at most n bytes: valid UTF-8 without control characters (a
// NUL would be refused by PostgreSQL, and the record must never be refused).
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func hostOf(baseURL string) string {
	_, rest, ok := strings.Cut(baseURL, "://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	return clean(host, 253)
}
