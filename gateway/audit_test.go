package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"gocloud.dev/blob"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/gateway/auditlog"
	"github.com/nhp/interop/gateway/fhirapi"
	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/audit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/blobstore"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

// The audit trail through the whole gateway on a real HTTP listener: every PHI access yields
// exactly one AuditEvent with the right action, outcome, entities, agent and tenant; a tenant
// reads only its own trail; the search filters and pages.

// auditServer is the gateway with the audit writer, served over HTTP.
type auditServer struct {
	t      *testing.T
	base   string
	pool   *db.Pool
	writer *auditlog.Writer
	signer auth.HS256
	bucket *blob.Bucket
}

// noTemporal serves $export routes that never reach Temporal (status, files).
type noTemporal struct{ client.Client }

func newAuditServer(t *testing.T) *auditServer {
	t.Helper()
	_, pool := dbtest.New(t)
	w := &auditlog.Writer{Pool: pool, Observer: audit.Observer{Name: "interop", BaseURL: apiBaseURL},
		Logger: slog.New(slog.DiscardHandler), FlushInterval: 10 * time.Millisecond}
	require.NoError(t, w.Start(context.Background()))
	bucket, err := blobstore.Open(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bucket.Close() })
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	signer := auth.HS256{Secret: apiSecret}
	reg := prometheus.NewRegistry()
	require.NoError(t, w.Register(reg))
	srv.Config.Handler = New(Deps{
		Pool: pool, Store: &store.Store{Pool: pool}, Auth: signer, DefaultOwner: routing.Builtin, BaseURL: base,
		Metrics: httpkit.NewMetrics(reg), Gatherer: reg, Logger: slog.New(slog.DiscardHandler), Audit: w,
		Temporal: noTemporal{}, TaskQueue: "test", Exports: fhirapi.ExportOptions{Bucket: bucket},
	})
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return &auditServer{t: t, base: base, pool: pool, writer: w, signer: signer, bucket: bucket}
}

func (s *auditServer) token(tenant, scope string) string {
	s.t.Helper()
	tok, err := s.signer.Issue("client-"+tenant, tenant, scope, time.Hour)
	require.NoError(s.t, err)
	return tok
}

// do sends a request with X-Request-Id requestID (so that its AuditEvent can be found) and
// returns the status, body and headers.
func (s *auditServer) do(method, path, token, requestID, contentType, body string) (int, []byte, http.Header) {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	if !strings.HasPrefix(path, "http") {
		path = s.base + path
	}
	req, err := http.NewRequest(method, path, r)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	if contentType == "" && body != "" {
		contentType = "application/fhir+json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, raw, resp.Header
}

// auditRow is an audit_events row and its AuditEvent.
type auditRow struct {
	tenant, typeCode, subtype, action, agent, address string
	outcome, status                                   int
	entities, patients                                []string
	event                                             map[string]any
}

// eventOf waits for the one AuditEvent of the request requestID.
func (s *auditServer) eventOf(requestID string) auditRow {
	s.t.Helper()
	require.Eventually(s.t, func() bool { return s.countOf(requestID) > 0 }, 10*time.Second, 10*time.Millisecond,
		"an AuditEvent for request %s", requestID)
	require.Equal(s.t, 1, s.countOf(requestID), "exactly one AuditEvent for request %s", requestID)
	var r auditRow
	var event []byte
	require.NoError(s.t, s.pool.QueryRow(context.Background(), `SELECT tenant_id, type_code, subtype, action, agent, source_address,
		outcome, http_status, entity_refs, patient_refs, event FROM audit_events WHERE request_id = $1`, requestID).Scan(
		&r.tenant, &r.typeCode, &r.subtype, &r.action, &r.agent, &r.address, &r.outcome, &r.status, &r.entities, &r.patients, &event))
	require.NoError(s.t, json.Unmarshal(event, &r.event))
	return r
}

func (s *auditServer) countOf(requestID string) int {
	var n int
	require.NoError(s.t, s.pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_events WHERE request_id = $1", requestID).Scan(&n))
	return n
}

// flush waits until everything recorded so far is written (Close drains; a new server is not
// needed afterwards in the tests that call it).
func (s *auditServer) flush() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(s.t, s.writer.Close(ctx))
}

func TestAuditEveryFHIRInteraction(t *testing.T) {
	t.Parallel()
	s := newAuditServer(t)
	tok := s.token(apiTenantA, apiRWScope)
	check := func(r auditRow, subtype, action string, outcome, status int) {
		t.Helper()
		require.Equal(t, apiTenantA, r.tenant)
		require.Equal(t, "client-"+apiTenantA, r.agent)
		require.Equal(t, "127.0.0.1", r.address)
		require.Equal(t, "rest", r.typeCode)
		require.Equal(t, subtype, r.subtype)
		require.Equal(t, action, r.action)
		require.Equal(t, outcome, r.outcome)
		require.Equal(t, status, r.status)
		require.Equal(t, action, r.event["action"])
		require.Equal(t, apiTenantA, r.event["source"].(map[string]any)["site"])
	}

	// create
	status, body, hdr := s.do(http.MethodPost, "/fhir/Patient", tok, "create-patient", "", apiPatient(apiMRN, "a1"))
	require.Equal(t, http.StatusCreated, status, string(body))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	pid := "Patient/" + created.ID
	require.Contains(t, hdr.Get("Location"), pid)
	r := s.eventOf("create-patient")
	check(r, "create", "C", 0, 201)
	require.Equal(t, []string{pid}, r.patients)
	require.Contains(t, r.entities, pid)
	require.NotContains(t, mustJSON(t, r.event), "Doe", "no PHI value in the record")

	// read
	status, _, _ = s.do(http.MethodGet, "/fhir/"+pid, tok, "read-patient", "", "")
	require.Equal(t, http.StatusOK, status)
	r = s.eventOf("read-patient")
	check(r, "read", "R", 0, 200)
	require.Equal(t, []string{pid}, r.patients)

	// create an Observation of that Patient: the Patient comes from the body.
	obs := `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"` + pid + `"}}`
	status, body, _ = s.do(http.MethodPost, "/fhir/Observation", tok, "create-obs", "", obs)
	require.Equal(t, http.StatusCreated, status, string(body))
	var o struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &o))
	oid := "Observation/" + o.ID
	r = s.eventOf("create-obs")
	check(r, "create", "C", 0, 201)
	require.Equal(t, []string{pid}, r.patients)
	require.ElementsMatch(t, []string{pid, oid}, r.entities)

	// read it: the Patient comes from the answer.
	status, _, _ = s.do(http.MethodGet, "/fhir/"+oid, tok, "read-obs", "", "")
	require.Equal(t, http.StatusOK, status)
	r = s.eventOf("read-obs")
	check(r, "read", "R", 0, 200)
	require.Equal(t, []string{pid}, r.patients)
	require.ElementsMatch(t, []string{pid, oid}, r.entities)

	// search: E, the query kept (base64) and its Patient.
	status, _, _ = s.do(http.MethodGet, "/fhir/Observation?patient="+created.ID+"&status=final", tok, "search-obs", "", "")
	require.Equal(t, http.StatusOK, status)
	r = s.eventOf("search-obs")
	check(r, "search-type", "E", 0, 200)
	require.Equal(t, []string{pid}, r.patients)
	require.Equal(t, "Observation?patient="+created.ID+"&status=final", queryOf(t, r.event))

	// POST _search: the form's parameters are the query.
	status, _, _ = s.do(http.MethodPost, "/fhir/Observation/_search", tok, "post-search", "application/x-www-form-urlencoded", "subject="+pid)
	require.Equal(t, http.StatusOK, status)
	r = s.eventOf("post-search")
	check(r, "search-type", "E", 0, 200)
	require.Equal(t, []string{pid}, r.patients)
	require.Equal(t, "Observation?subject="+url.QueryEscape(pid), queryOf(t, r.event))

	// update
	upd := `{"resourceType":"Observation","id":"` + o.ID + `","status":"amended","code":{"text":"x"},"subject":{"reference":"` + pid + `"}}`
	status, body, _ = s.do(http.MethodPut, "/fhir/"+oid, tok, "update-obs", "", upd)
	require.Equal(t, http.StatusOK, status, string(body))
	r = s.eventOf("update-obs")
	check(r, "update", "U", 0, 200)
	require.Equal(t, []string{pid}, r.patients)

	// vread
	status, _, _ = s.do(http.MethodGet, "/fhir/"+oid+"/_history/1", tok, "vread-obs", "", "")
	require.Equal(t, http.StatusOK, status)
	r = s.eventOf("vread-obs")
	check(r, "vread", "R", 0, 200)
	require.Contains(t, mustJSON(t, r.event), `"reference":"`+oid+`/_history/1"`)

	// delete
	status, _, _ = s.do(http.MethodDelete, "/fhir/"+oid, tok, "delete-obs", "", "")
	require.Equal(t, http.StatusNoContent, status)
	r = s.eventOf("delete-obs")
	check(r, "delete", "D", 0, 204)
	require.Contains(t, r.entities, oid)

	// 403: a token without read on Observation; a failed attempt is still one event.
	patientOnly := s.token(apiTenantA, "system/Patient.r")
	status, _, _ = s.do(http.MethodGet, "/fhir/"+oid, patientOnly, "forbidden-obs", "", "")
	require.Equal(t, http.StatusForbidden, status)
	r = s.eventOf("forbidden-obs")
	check(r, "read", "R", 4, 403)
	require.Equal(t, "HTTP 403", r.event["outcomeDesc"])

	// 404
	status, _, _ = s.do(http.MethodGet, "/fhir/Observation/does-not-exist", tok, "missing-obs", "", "")
	require.Equal(t, http.StatusNotFound, status)
	check(s.eventOf("missing-obs"), "read", "R", 4, 404)

	// a transaction: one event naming what its entries touched.
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:6c0e0b1c-6d0b-4a57-9d0c-1d1a2b3c4d5e",
		"resource":{"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"` + pid + `"}},
		"request":{"method":"POST","url":"Observation"}}]}`
	status, body, _ = s.do(http.MethodPost, "/fhir", tok, "transaction", "", tx)
	require.Equal(t, http.StatusOK, status, string(body))
	r = s.eventOf("transaction")
	check(r, "transaction", "E", 0, 200)
	require.Equal(t, []string{pid}, r.patients)
	require.Len(t, r.entities, 2, "the Patient and the Observation created: %v", r.entities)

	// Not PHI, not recorded: the CapabilityStatement, health, and requests refused before a
	// tenant is known.
	for _, c := range []struct{ path, token string }{{"/fhir/metadata", ""}, {"/healthz", ""}, {"/fhir/Patient", ""}, {"/fhir/Patient", "garbage"}} {
		id := "unrecorded-" + uuid.NewString()
		s.do(http.MethodGet, c.path, c.token, id, "", "")
		s.flushLater(id)
	}
}

// flushLater checks, once the writer is idle, that requestID left no record.
func (s *auditServer) flushLater(requestID string) {
	s.t.Helper()
	time.Sleep(50 * time.Millisecond) // several flush intervals
	require.Zero(s.t, s.countOf(requestID), "request %s is not recorded", requestID)
}

func queryOf(t *testing.T, event map[string]any) string {
	t.Helper()
	for _, e := range event["entity"].([]any) {
		if q, ok := e.(map[string]any)["query"].(string); ok {
			b, err := base64.StdEncoding.DecodeString(q)
			require.NoError(t, err)
			return string(b)
		}
	}
	t.Fatalf("no query entity in %v", event)
	return ""
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// An export file fetched by its signed URL (no token) is recorded for the export's tenant and
// requester; handing out the manifest is recorded too, polls while it runs are not.
func TestAuditExportDownload(t *testing.T) {
	t.Parallel()
	s := newAuditServer(t)
	ctx := context.Background()
	q := db.New(s.pool)
	params, err := json.Marshal(export.Request{Level: export.LevelGroup, GroupID: "g1", Types: []string{"Patient"}, OutputFormat: "application/fhir+ndjson"})
	require.NoError(t, err)
	job, err := q.BulkExportJobInsert(ctx, db.BulkExportJobInsertParams{
		TenantID: apiTenantA, Level: db.BulkExportLevelGroup, GroupKey: "g1", RequestURL: s.base + "/fhir/Group/g1/$export",
		Parameters: params, TransactionTime: time.Now().UTC(), WorkflowID: "BulkExport:g1", RequestedBy: "kickoff-client",
	})
	require.NoError(t, err)
	tok := s.token(apiTenantA, "system/Patient.r system/Group.r")
	status, _, _ := s.do(http.MethodGet, "/fhir/$export-status/"+job.ID.String(), tok, "poll-running", "", "")
	require.Equal(t, http.StatusAccepted, status)

	_, err = q.BulkExportJobStart(ctx, job.ID)
	require.NoError(t, err)
	key := job.ID.String() + "/Patient.ndjson"
	require.NoError(t, s.bucket.WriteAll(ctx, key, []byte(`{"resourceType":"Patient","id":"p1"}`+"\n"), nil))
	file, err := q.BulkExportFileInsert(ctx, db.BulkExportFileInsertParams{TenantID: apiTenantA, JobID: job.ID,
		Kind: "output", ResourceType: "Patient", BlobKey: key, Count: 1, SizeBytes: 37})
	require.NoError(t, err)
	exp := time.Now().Add(time.Hour)
	_, err = q.BulkExportJobComplete(ctx, db.BulkExportJobCompleteParams{ID: job.ID, ExpiresAt: &exp, Progress: "done"})
	require.NoError(t, err)

	status, body, _ := s.do(http.MethodGet, "/fhir/$export-status/"+job.ID.String(), tok, "manifest", "", "")
	require.Equal(t, http.StatusOK, status, string(body))
	var manifest struct {
		Output []struct{ URL string }
	}
	require.NoError(t, json.Unmarshal(body, &manifest))
	require.Len(t, manifest.Output, 1)
	r := s.eventOf("manifest")
	require.Equal(t, "110106", r.typeCode)
	require.Equal(t, "R", r.action)
	require.Equal(t, []string{"BulkExportJob/" + job.ID.String()}, r.entities)

	status, body, _ = s.do(http.MethodGet, manifest.Output[0].URL, "", "download", "", "")
	require.Equal(t, http.StatusOK, status, string(body))
	r = s.eventOf("download")
	require.Equal(t, apiTenantA, r.tenant)
	require.Equal(t, "kickoff-client", r.agent, "the URL is the credential: its export's requester")
	require.Equal(t, "110106", r.typeCode)
	require.Equal(t, "read", r.subtype)
	require.Equal(t, "R", r.action)
	require.Equal(t, 0, r.outcome)
	require.ElementsMatch(t, []string{"BulkExportFile/" + file.ID.String(), "BulkExportJob/" + job.ID.String(), "Group/g1"}, r.entities)

	// A forged URL names no tenant: refused, not recorded.
	forged := strings.Replace(manifest.Output[0].URL, "sig=", "sig=x", 1)
	status, _, _ = s.do(http.MethodGet, forged, "", "forged", "", "")
	require.Equal(t, http.StatusForbidden, status)
	s.flushLater("forged")
	s.flushLater("poll-running")
}

// The admin API is recorded, reading the trail included (once per request, never in a
// loop), and each tenant reads only its own trail.
func TestAuditTrailSearchIsTenantIsolated(t *testing.T) {
	t.Parallel()
	s := newAuditServer(t)
	admin := map[string]string{
		apiTenantA:         s.token(apiTenantA, auth.AdminScope+" "+apiRWScope),
		gatewaytestTenantB: s.token(gatewaytestTenantB, auth.AdminScope+" "+apiRWScope),
	}
	status, body, _ := s.do(http.MethodPost, "/fhir/Patient", admin[apiTenantA], "a-create", "", apiPatient(apiMRN, "iso"))
	require.Equal(t, http.StatusCreated, status, string(body))
	status, _, _ = s.do(http.MethodGet, "/fhir/Patient?identifier="+url.QueryEscape(apiMRN+"|iso"), admin[gatewaytestTenantB], "b-search", "", "")
	require.Equal(t, http.StatusOK, status)
	status, _, _ = s.do(http.MethodGet, "/admin/messages?status=dead_lettered", admin[apiTenantA], "a-messages", "", "")
	require.Equal(t, http.StatusOK, status)
	r := s.eventOf("a-messages")
	require.Equal(t, "search-type", r.subtype)
	require.Equal(t, "Hl7Message?status=dead_lettered", queryOf(t, r.event))
	s.eventOf("a-create")
	s.eventOf("b-search")

	// Admin scope is needed.
	status, _, _ = s.do(http.MethodGet, "/admin/audit-events", s.token(apiTenantA, apiRWScope), "a-no-admin", "", "")
	require.Equal(t, http.StatusForbidden, status)
	r = s.eventOf("a-no-admin")
	require.Equal(t, 4, r.outcome)
	require.Equal(t, []string{"search-type", "E"}, []string{r.subtype, r.action})

	// Tenant A sees its own events only, newest first, as a searchset Bundle.
	bundle := s.search(admin[apiTenantA], "", "a-read-1")
	ids := bundleRequestIDs(t, bundle)
	require.Equal(t, []string{"a-no-admin", "a-messages", "a-create"}, ids)
	require.NotContains(t, ids, "b-search")
	r = s.eventOf("a-read-1")
	require.Equal(t, []string{"search-type", "E"}, []string{r.subtype, r.action}, "reading the trail is itself recorded")
	require.Equal(t, "AuditEvent", queryOf(t, r.event))
	require.Equal(t, []string{"a-read-1", "a-no-admin", "a-messages", "a-create"}, bundleRequestIDs(t, s.search(admin[apiTenantA], "", "a-read-2")),
		"one record per read of the trail, no more")

	bIDs := bundleRequestIDs(t, s.search(admin[gatewaytestTenantB], "", "b-read"))
	require.Equal(t, []string{"b-search"}, bIDs)
	// Another tenant's event by id is not found.
	aEvent := s.eventOf("a-create").event["id"].(string)
	status, _, _ = s.do(http.MethodGet, "/admin/audit-events/"+aEvent, admin[gatewaytestTenantB], "", "", "")
	require.Equal(t, http.StatusNotFound, status)
	status, body, _ = s.do(http.MethodGet, "/admin/audit-events/"+aEvent, admin[apiTenantA], "", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"resourceType":"AuditEvent"`)
}

// gatewaytestTenantB is the second tenant of the shared fixtures.
const gatewaytestTenantB = "tenant-b"

// search reads the audit trail with query, as request requestID, and returns the Bundle.
func (s *auditServer) search(token, query, requestID string) map[string]any {
	s.t.Helper()
	path := "/admin/audit-events"
	if query != "" {
		path += "?" + query
	}
	if !strings.Contains(query, "_cursor") {
		// Wait for everything before this search to be written (the search is newest first).
		time.Sleep(60 * time.Millisecond)
	}
	status, body, hdr := s.do(http.MethodGet, path, token, requestID, "", "")
	require.Equal(s.t, http.StatusOK, status, string(body))
	require.True(s.t, strings.HasPrefix(hdr.Get("Content-Type"), "application/fhir+json"))
	var b map[string]any
	require.NoError(s.t, json.Unmarshal(body, &b))
	require.Equal(s.t, "Bundle", b["resourceType"])
	require.Equal(s.t, "searchset", b["type"])
	if requestID != "" {
		s.eventOf(requestID)
	}
	return b
}

// bundleRequestIDs are the X-Request-Ids of a Bundle's AuditEvents, in order.
func bundleRequestIDs(t *testing.T, b map[string]any) []string {
	t.Helper()
	var ids []string
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		ev := e.(map[string]any)["resource"].(map[string]any)
		require.Equal(t, "AuditEvent", ev["resourceType"])
		for _, ent := range ev["entity"].([]any) {
			m := ent.(map[string]any)
			if m["type"].(map[string]any)["code"] == "XrequestId" {
				ids = append(ids, m["what"].(map[string]any)["identifier"].(map[string]any)["value"].(string))
			}
		}
	}
	return ids
}

func nextLink(b map[string]any) string {
	links, _ := b["link"].([]any)
	for _, l := range links {
		if m := l.(map[string]any); m["relation"] == "next" {
			return m["url"].(string)
		}
	}
	return ""
}

func TestAuditTrailSearchFilters(t *testing.T) {
	t.Parallel()
	s := newAuditServer(t)
	rw := s.token(apiTenantA, apiRWScope)
	other, err := s.signer.Issue("other-client", apiTenantA, "system/Patient.r", time.Hour)
	require.NoError(t, err)
	adminTok := s.token(apiTenantA, auth.AdminScope)

	status, body, _ := s.do(http.MethodPost, "/fhir/Patient", rw, "f-create", "", apiPatient(apiMRN, "f1"))
	require.Equal(t, http.StatusCreated, status, string(body))
	var p struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &p))
	status, body, _ = s.do(http.MethodPost, "/fhir/Observation", rw, "f-obs", "",
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+p.ID+`"}}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	var o struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &o))
	s.do(http.MethodGet, "/fhir/Observation/"+o.ID, other, "f-forbidden", "", "")
	s.do(http.MethodGet, "/fhir/Patient/"+p.ID, other, "f-read", "", "")
	s.do(http.MethodGet, "/fhir/Observation?patient="+p.ID, rw, "f-search", "", "")
	for _, id := range []string{"f-create", "f-obs", "f-forbidden", "f-read", "f-search"} {
		s.eventOf(id)
	}
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	s.do(http.MethodDelete, "/fhir/Observation/"+o.ID, rw, "f-delete", "", "")
	s.eventOf("f-delete")
	fhirOnly := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			if strings.HasPrefix(id, "f-") {
				out = append(out, id)
			}
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		// A delete carries no body: it names the Patient only when it deletes the Patient.
		{"patient=Patient/" + p.ID, []string{"f-search", "f-read", "f-obs", "f-create"}},
		{"patient=" + p.ID + "&action=C", []string{"f-obs", "f-create"}},
		{"agent=other-client", []string{"f-read", "f-forbidden"}},
		{"entity=Observation/" + o.ID, []string{"f-delete", "f-forbidden", "f-obs"}},
		{"action=R,D", []string{"f-delete", "f-read", "f-forbidden"}},
		{"outcome=4", []string{"f-forbidden"}},
		{"outcome=0&action=E", []string{"f-search"}},
		{"date=ge" + url.QueryEscape(mid.Format(time.RFC3339Nano)), []string{"f-delete"}},
		{"date=lt" + url.QueryEscape(mid.Format(time.RFC3339Nano)) + "&action=R", []string{"f-read", "f-forbidden"}},
		{"date=" + mid.Format("2006-01-02") + "&agent=other-client", []string{"f-read", "f-forbidden"}},
		{"date=lt2000-01-01", nil},
	} {
		got := fhirOnly(bundleRequestIDs(t, s.search(adminTok, c.query, "")))
		require.Equal(t, c.want, got, c.query)
	}

	// Paging: _count with next links walks the whole trail once, newest first.
	var paged []string
	b := s.search(adminTok, "_count=2&patient="+p.ID, "")
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		paged = append(paged, bundleRequestIDs(t, b)...)
		next := nextLink(b)
		if next == "" {
			break
		}
		require.Contains(t, next, "_count=2")
		require.Contains(t, next, "patient=")
		status, body, _ := s.do(http.MethodGet, next, adminTok, "", "", "")
		require.Equal(t, http.StatusOK, status, string(body))
		b = nil
		require.NoError(t, json.Unmarshal(body, &b))
	}
	require.Equal(t, []string{"f-search", "f-read", "f-obs", "f-create"}, paged)

	// Bad parameters are 400 OperationOutcomes.
	for _, bad := range []string{"name=x", "action=Z", "outcome=2", "date=soon", "_count=0", "_cursor=%%%", "entity=x"} {
		status, body, _ := s.do(http.MethodGet, "/admin/audit-events?"+bad, adminTok, "", "", "")
		require.Equal(t, http.StatusBadRequest, status, bad)
		require.Contains(t, string(body), "OperationOutcome", bad)
	}
	s.flush()
}
