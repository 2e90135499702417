package auditlog

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/audit"
)

// Recorder takes audit records (Writer).
type Recorder interface {
	Record(ctx context.Context, r audit.Record) error
}

// Room is a part of the gateway whose requests a middleware records; it says how a route is
// read as an audit event.
type Room int

// The rooms that touch PHI.
const (
	// FHIR is /fhir: REST interactions, batches and transactions, $export kick-off, status
	// (when it hands out the manifest), cancellation and file downloads. The
	// CapabilityStatement and SMART discovery are not recorded.
	FHIR Room = iota
	// Admin is /admin: every request (the message log holds raw HL7, connectors hold
	// credentials, reading the audit trail is itself audited).
	Admin
	// Token is POST /auth/token: a User Authentication event per token issued or refused to a
	// known client.
	Token
)

// Detail is what a handler adds to the audit record of its request, beyond what its route
// and the caller's token say. Handlers reach it with Note.
type Detail struct {
	// Tenant and Agent name the caller of a route that has no bearer token (an export file's
	// signed URL, the token endpoint); a verified token's principal wins over them.
	Tenant, Agent string
	// Interaction replaces the route's (a POST /fhir is a batch or a transaction).
	Interaction string
	// Entities and Patients are added to what the route names: the resources a batch
	// touched, the Patient of a resource read or written.
	Entities, Patients []string
	// Query replaces the URL's query (a POST _search carries its parameters in the body).
	Query string
	// Skip leaves the request unrecorded (it touched no PHI).
	Skip bool
}

const detailKey = "auditlog.detail"

// Note is the audit detail of the request c, for its handler to fill in. Without the
// middleware (a room's own tests), it is a detail nobody reads.
func Note(c echo.Context) *Detail {
	if d, ok := c.Get(detailKey).(*Detail); ok {
		return d
	}
	return &Detail{}
}

// Active reports whether c is being recorded, for handlers to skip work (reading a body for
// its Patient) that only the record needs.
func Active(c echo.Context) bool {
	_, ok := c.Get(detailKey).(*Detail)
	return ok
}

// Middleware records each request of room with rec once its handler has answered (the error
// handler has run, so the status is final). A request refused before a tenant is known (no
// valid token, a forged export URL) is not recorded: it touched nothing. Recording blocks
// while rec's queue is full; a record that cannot be taken is logged at error level.
func Middleware(rec Recorder, room Room, logger *slog.Logger) echo.MiddlewareFunc {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			d := &Detail{}
			c.Set(detailKey, d)
			defer func() {
				// A handler that panics may have touched data before it did: the request is
				// recorded as failed (500), and the panic goes on to the recover middleware.
				if p := recover(); p != nil {
					c.Response().Status = http.StatusInternalServerError
					take(rec, room, c, d, logger)
					panic(p)
				}
			}()
			if err := next(c); err != nil {
				c.Error(err)
			}
			take(rec, room, c, d, logger)
			return nil
		}
	}
}

func take(rec Recorder, room Room, c echo.Context, d *Detail, logger *slog.Logger) {
	if d.Skip {
		return
	}
	r, ok := record(room, c, d)
	if !ok {
		return
	}
	if err := rec.Record(c.Request().Context(), r); err != nil {
		logger.Error("audit record not taken", "error", err, "tenant_id", r.Tenant, "route", c.Path(),
			"status", r.Status, "request_id", r.RequestID)
	}
}

// record reads the request as an audit record; false when it is not one to record.
func record(room Room, c echo.Context, d *Detail) (audit.Record, bool) {
	r := audit.Record{Type: audit.TypeREST, Status: c.Response().Status, RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
	p := httpkit.Principal(c)
	r.Tenant, r.Agent = p.Tenant, p.Subject
	if r.Tenant == "" {
		r.Tenant, r.Agent = d.Tenant, d.Agent
	}
	if r.Tenant == "" {
		return r, false
	}
	if host, _, err := net.SplitHostPort(c.Request().RemoteAddr); err == nil {
		r.SourceAddress = host
	} else {
		r.SourceAddress = c.Request().RemoteAddr
	}
	var ok bool
	switch room {
	case FHIR:
		ok = fhirRecord(c, &r)
	case Admin:
		ok = adminRecord(c, &r)
	case Token:
		r.Type, r.Subtype, r.Action = audit.TypeUserAuthentication, audit.SubtypeLogin, audit.Execute
		ok = true
	}
	if !ok {
		return r, false
	}
	if d.Interaction != "" {
		r.Subtype, r.Action = d.Interaction, audit.ActionOf(d.Interaction)
	}
	if d.Query != "" {
		r.Query = d.Query
	}
	r.Entities = append(r.Entities, d.Entities...)
	r.Patients = append(r.Patients, d.Patients...)
	// The Patients a FHIR search names are whose records it read. (An /admin/audit-events
	// search by patient reads the trail, not the record: it is not put in the Patient's trail.)
	if room == FHIR && r.Query != "" {
		typ, rawQuery, _ := strings.Cut(r.Query, "?")
		if q, err := url.ParseQuery(rawQuery); err == nil {
			r.Patients = append(r.Patients, audit.PatientsOfSearch(typ, q)...)
		}
	}
	return r, true
}

// fhirRecord reads a /fhir route: its interaction, what it names, its query.
func fhirRecord(c echo.Context, r *audit.Record) bool {
	req := c.Request()
	route := strings.TrimPrefix(c.Path(), "/fhir")
	typ, id := c.Param("type"), c.Param("id")
	// query names what a search, history or conditional interaction asked: its path and
	// parameters ("Observation?patient=123").
	query := func(prefix string) {
		r.Query = prefix
		if req.URL.RawQuery != "" {
			r.Query = prefix + "?" + req.URL.RawQuery
		}
	}
	interaction := ""
	switch route {
	case "/metadata", "/.well-known/smart-configuration":
		return false
	case "", "/":
		interaction = audit.InteractionBatch
	case "/_history":
		interaction = audit.InteractionHistorySystem
		query("_history")
	case "/:type/_history":
		interaction = audit.InteractionHistoryType
		query(typ + "/_history")
	case "/:type", "/:type/_search":
		switch req.Method {
		case http.MethodGet, http.MethodPost:
			interaction = audit.InteractionSearchType
			if route == "/:type" && req.Method == http.MethodPost {
				interaction = audit.InteractionCreate
			}
		case http.MethodPut:
			interaction = audit.InteractionUpdate // conditional
		case http.MethodDelete:
			interaction = audit.InteractionDelete // conditional
		case http.MethodPatch:
			interaction = audit.InteractionPatch
		default:
			return false
		}
		if interaction != audit.InteractionCreate {
			query(typ)
		}
	case "/:type/:id":
		switch req.Method {
		case http.MethodGet:
			interaction = audit.InteractionRead
		case http.MethodPut:
			interaction = audit.InteractionUpdate
		case http.MethodDelete:
			interaction = audit.InteractionDelete
		case http.MethodPatch:
			interaction = audit.InteractionPatch
		default:
			interaction = audit.InteractionOperation
		}
		r.Entities = append(r.Entities, typ+"/"+id)
	case "/:type/:id/_history":
		interaction = audit.InteractionHistoryInst
		r.Entities = append(r.Entities, typ+"/"+id)
		query(typ + "/" + id + "/_history")
	case "/:type/:id/_history/:vid":
		interaction = audit.InteractionVRead
		r.Entities = append(r.Entities, typ+"/"+id+"/_history/"+c.Param("vid"))
	case "/$export", "/Patient/$export", "/Group/:id/$export":
		r.Type, interaction = audit.TypeExport, audit.InteractionOperation
		if id != "" {
			r.Entities = append(r.Entities, "Group/"+id)
		}
		query(strings.TrimPrefix(req.URL.Path, "/fhir/"))
	case "/$export-status/:job":
		// A poll while the export runs hands out nothing; the manifest (the files' URLs) and a
		// cancellation are recorded.
		if req.Method == http.MethodGet && c.Response().Status != http.StatusOK {
			return false
		}
		r.Type, interaction = audit.TypeExport, audit.InteractionRead
		if req.Method == http.MethodDelete {
			interaction = audit.InteractionDelete
		}
		r.Entities = append(r.Entities, "BulkExportJob/"+c.Param("job"))
	case "/$export-file/:job/:file":
		r.Type, interaction = audit.TypeExport, audit.InteractionRead
		r.Entities = append(r.Entities, "BulkExportFile/"+c.Param("file"), "BulkExportJob/"+c.Param("job"))
	default:
		return false // no route: nothing was touched
	}
	if typ == "Patient" && id != "" {
		r.Patients = append(r.Patients, "Patient/"+id)
	}
	if loc := c.Response().Header().Get(echo.HeaderLocation); loc != "" && (interaction == audit.InteractionCreate || interaction == audit.InteractionUpdate) {
		r.Entities = append(r.Entities, loc)
		if ref, ok := audit.PatientRef(loc); ok {
			r.Patients = append(r.Patients, ref)
		}
	}
	r.Subtype, r.Action = interaction, audit.ActionOf(interaction)
	return true
}

// adminObjects name what each /admin collection holds, as entity types.
var adminObjects = map[string]string{
	"messages":      "Hl7Message",
	"backlog":       "Hl7Message",
	"connectors":    "InteropConnector",
	"routing-rules": "FhirRoutingRule",
	"clients":       "AuthClient",
	"events":        "DomainEvent",
	"audit-events":  "AuditEvent",
}

// adminRecord reads an /admin route: reads of one object, lists (searches), creates, updates,
// deletes, and actions (reprocess, activate…) as operations.
func adminRecord(c echo.Context, r *audit.Record) bool {
	req := c.Request()
	route := strings.TrimPrefix(c.Path(), "/admin/")
	parts := strings.Split(route, "/")
	object, ok := adminObjects[parts[0]]
	if !ok || strings.HasSuffix(route, "*") {
		return false
	}
	id := c.Param("id")
	if id == "" {
		id = c.Param("clientId")
	}
	if id != "" {
		r.Entities = append(r.Entities, object+"/"+id)
	}
	switch {
	case req.Method == http.MethodGet && id == "":
		r.Subtype = audit.InteractionSearchType
		r.Query = object
		if req.URL.RawQuery != "" {
			r.Query = object + "?" + req.URL.RawQuery
		}
	case req.Method == http.MethodGet:
		r.Subtype = audit.InteractionRead
	case req.Method == http.MethodPost && len(parts) == 1:
		r.Subtype = audit.InteractionCreate
	case req.Method == http.MethodPost:
		r.Subtype = audit.InteractionOperation
	case req.Method == http.MethodPut:
		r.Subtype = audit.InteractionUpdate
	case req.Method == http.MethodDelete:
		r.Subtype = audit.InteractionDelete
	default:
		return false
	}
	r.Action = audit.ActionOf(r.Subtype)
	if r.Subtype == audit.InteractionCreate {
		if loc := c.Response().Header().Get(echo.HeaderLocation); loc != "" {
			r.Entities = append(r.Entities, object+"/"+loc[strings.LastIndexByte(loc, '/')+1:])
		}
	}
	return true
}
