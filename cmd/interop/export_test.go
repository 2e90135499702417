package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
)

// exportClient is a plain HTTP client of the Bulk Data IG flow, as a registry's would be.
type exportClient struct {
	t     *testing.T
	base  string
	token string
	// diagnose, when set, says what the service knows of a job that did not complete.
	diagnose func(job string) string
}

type exportManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int64  `json:"count"`
	} `json:"output"`
	Deleted []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int64  `json:"count"`
	} `json:"deleted"`
	Error []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"error"`
}

func (c exportClient) do(method, u string, body []byte, header map[string]string) (*http.Response, string) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	require.NoError(c.t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/fhir+json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, string(b)
}

// kickoff starts an export and returns its status URL.
func (c exportClient) kickoff(path string) string {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, c.base+path, nil, map[string]string{"Prefer": "respond-async"})
	require.Equal(c.t, http.StatusAccepted, resp.StatusCode, "kick-off %s: %s", path, body)
	loc := resp.Header.Get("Content-Location")
	require.True(c.t, strings.HasPrefix(loc, c.base+"/fhir/"), "absolute Content-Location: %q", loc)
	return loc
}

// wait polls the status URL as the IG says (honouring Retry-After) until the manifest.
func (c exportClient) wait(status string) exportManifest {
	c.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		resp, body := c.do(http.MethodGet, status, nil, nil)
		switch resp.StatusCode {
		case http.StatusAccepted:
			p := resp.Header.Get("X-Progress")
			require.NotEmpty(c.t, p)
			require.Less(c.t, len(p), 100, "X-Progress is under 100 characters")
			require.NotEmpty(c.t, resp.Header.Get("Retry-After"))
			time.Sleep(200 * time.Millisecond) // faster than Retry-After: the test is impatient
		case http.StatusOK:
			require.Equal(c.t, "application/json", strings.Split(resp.Header.Get("Content-Type"), ";")[0])
			exp, err := http.ParseTime(resp.Header.Get("Expires"))
			require.NoError(c.t, err, "Expires header")
			require.True(c.t, exp.After(time.Now()))
			var m exportManifest
			require.NoError(c.t, json.Unmarshal([]byte(body), &m), body)
			return m
		default:
			c.t.Fatalf("status %s: %d %s", status, resp.StatusCode, body)
		}
	}
	var why string
	if c.diagnose != nil {
		why = c.diagnose(jobIDOf(status))
	}
	c.t.Fatalf("export %s did not complete\n%s", status, why)
	return exportManifest{}
}

// download fetches a file without a token (requiresAccessToken is false) and returns its
// resources, checking each line.
func (c exportClient) download(u, typ string) []map[string]any {
	c.t.Helper()
	resp, err := http.Get(u)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, http.StatusOK, resp.StatusCode)
	require.Equal(c.t, "application/fhir+ndjson", resp.Header.Get("Content-Type"))
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var r map[string]any
		require.NoError(c.t, json.Unmarshal(sc.Bytes(), &r), "every line parses")
		require.Equal(c.t, typ, r["resourceType"])
		out = append(out, r)
	}
	require.NoError(c.t, sc.Err())
	return out
}

// exported downloads every output file of m and returns the ids per type.
func (c exportClient) exported(m exportManifest) map[string][]string {
	c.t.Helper()
	out := map[string][]string{}
	for _, o := range m.Output {
		rs := c.download(o.URL, o.Type)
		require.EqualValues(c.t, o.Count, len(rs), "count of %s", o.URL)
		for _, r := range rs {
			out[o.Type] = append(out[o.Type], r["id"].(string))
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

func (c exportClient) put(typ, id, body string) {
	c.t.Helper()
	resp, b := c.do(http.MethodPut, c.base+"/fhir/"+typ+"/"+id, []byte(body), map[string]string{"Content-Type": "application/fhir+json"})
	require.Less(c.t, resp.StatusCode, 300, "PUT %s/%s: %s", typ, id, b)
}

// seedPatients inserts n Patients and, for each, one Observation, in one statement each: the
// export tests are about reading, so the store's write path is not what they wait for.
func seedPatients(t *testing.T, pool *db.Pool, tenant string, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
SELECT $1, 'Patient', 'bulk-' || i, 1, now() - interval '1 hour', jsonb_build_object('resourceType', 'Patient', 'id', 'bulk-' || i,
  'meta', jsonb_build_object('versionId', '1'), 'name', jsonb_build_array(jsonb_build_object('family', 'Bulk', 'given', jsonb_build_array('P' || i)))), true
FROM generate_series(1, $2::int) i`, tenant, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
SELECT $1, 'Observation', 'bulk-obs-' || i, 1, now() - interval '1 hour', jsonb_build_object('resourceType', 'Observation', 'id', 'bulk-obs-' || i,
  'status', 'final', 'code', jsonb_build_object('text', 'heart rate'), 'subject', jsonb_build_object('reference', 'Patient/bulk-' || i),
  'valueQuantity', jsonb_build_object('value', i % 200, 'unit', '/min')), true
FROM generate_series(1, $2::int) i`, tenant, n)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO fhir_search_refs (tenant_id, resource_type, id, param, target_type, target_id)
SELECT $1, 'Observation', 'bulk-obs-' || i, p, 'Patient', 'bulk-' || i FROM generate_series(1, $2::int) i, unnest(ARRAY['subject', 'patient']) p`, tenant, n)
	require.NoError(t, err)
}

// TestBulkExportEndToEnd follows the Bulk Data IG flow with a plain HTTP client against
// `interop dev`: kick-off, polls, manifest, downloads; _type, _since, _typeFilter, Patient
// and Group level; 429 for a second export of a group; DELETE then 404; tampered and expired
// URLs; expiry deleting the files; and tenant isolation throughout.
func TestBulkExportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server")
	}
	cfg, serviceURL := devTestConfig(t, "export")
	cfg.ExportRetention = 30 * time.Second
	base := "http://" + cfg.HTTPAddr
	startDev(t, cfg)
	waitReady(t, base)

	secret, err := auth.DevSecret(cfg.DataDir)
	require.NoError(t, err)
	issue := func(tenant, scope string) string {
		tok, err := auth.HS256{Secret: secret}.Issue("export-test", tenant, scope, time.Hour)
		require.NoError(t, err)
		return tok
	}
	pool, err := db.Open(context.Background(), serviceURL)
	require.NoError(t, err)
	defer pool.Close()
	tc, err := client.Dial(client.Options{HostPort: cfg.Temporal.EmbeddedFrontendAddr, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	defer tc.Close()
	a := exportClient{t: t, base: base, token: issue("default", "system/*.cruds"), diagnose: exportDiagnosis(pool, tc)}
	b := exportClient{t: t, base: base, token: issue("tenant-b", "system/*.cruds")}

	seedPatients(t, pool, "default", 3000)
	a.put("Patient", "alice", `{"resourceType":"Patient","id":"alice","name":[{"family":"Alice"}]}`)
	a.put("Observation", "alice-lab", `{"resourceType":"Observation","id":"alice-lab","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"Hb"},"subject":{"reference":"Patient/alice"}}`)
	a.put("Group", "cohort", `{"resourceType":"Group","id":"cohort","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/alice"}},{"entity":{"reference":"Patient/bulk-7"}}]}`)
	b.put("Patient", "bob", `{"resourceType":"Patient","id":"bob","name":[{"family":"Bob"}]}`)

	// The CapabilityStatement declares the IG's three operations.
	_, cs := exportClient{t: t, base: base}.do(http.MethodGet, base+"/fhir/metadata", nil, nil)
	for _, want := range []string{"CapabilityStatement/bulk-data", "OperationDefinition/export", "OperationDefinition/patient-export", "OperationDefinition/group-export"} {
		require.Contains(t, cs, want)
	}

	// System level, two types; a second kick-off while it runs is refused with 429.
	status := a.kickoff("/fhir/$export?_type=Patient,Observation")
	resp, body := a.do(http.MethodGet, base+"/fhir/$export?_type=Patient", nil, map[string]string{"Prefer": "respond-async"})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Contains(t, body, "OperationOutcome")
	// Another tenant cannot see the job, nor start one that conflicts with it.
	resp, _ = b.do(http.MethodGet, status, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = b.do(http.MethodDelete, status, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	m := a.wait(status)
	if *recordExportHistory {
		writeHistory(t, tc, "bulk-export/default/$system", "bulk_export_v0_completed")
	}
	require.False(t, m.RequiresAccessToken)
	require.Contains(t, m.Request, "/fhir/$export?_type=Patient,Observation")
	_, err = time.Parse(time.RFC3339, m.TransactionTime)
	require.NoError(t, err)
	got := a.exported(m)
	require.Len(t, got["Patient"], 3001)
	require.Len(t, got["Observation"], 3001)
	require.Contains(t, got["Patient"], "alice")
	require.NotContains(t, got["Patient"], "bob", "tenant-b's Patient leaked into tenant default's export")

	// A tampered URL and another file's signature are refused.
	u := m.Output[0].URL
	resp, body = a.do(http.MethodGet, strings.Replace(u, "sig=", "sig=A", 1), nil, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	require.Contains(t, body, "OperationOutcome")
	if len(m.Output) > 1 {
		other, _ := url.Parse(m.Output[1].URL)
		this, _ := url.Parse(u)
		this.RawQuery = other.RawQuery
		resp, _ = a.do(http.MethodGet, this.String(), nil, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	}

	// _since: only what changed after it. _typeFilter: what matches.
	since := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	a.put("Patient", "carol", `{"resourceType":"Patient","id":"carol","name":[{"family":"Carol"}]}`)
	resp, _ = a.do(http.MethodDelete, base+"/fhir/Patient/bulk-9", nil, nil)
	require.Less(t, resp.StatusCode, 300)
	sm := a.wait(a.kickoff("/fhir/$export?_type=Patient&_since=" + url.QueryEscape(since.Format(time.RFC3339Nano))))
	require.Equal(t, map[string][]string{"Patient": {"carol"}}, a.exported(sm))
	require.Len(t, sm.Deleted, 1)
	require.EqualValues(t, 1, sm.Deleted[0].Count)
	require.Contains(t, a.download(sm.Deleted[0].URL, "Bundle")[0]["entry"].([]any)[0].(map[string]any)["request"].(map[string]any)["url"], "Patient/bulk-9")

	fm := a.wait(a.kickoff("/fhir/$export?_type=Observation&_typeFilter=" + url.QueryEscape("Observation?category=laboratory")))
	require.Equal(t, map[string][]string{"Observation": {"alice-lab"}}, a.exported(fm))

	// POST with a Parameters body, and a lenient request whose unsupported parameter is
	// reported in the error file.
	params := `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"},{"name":"patient","valueReference":{"reference":"Patient/alice"}}]}`
	resp, body = a.do(http.MethodPost, base+"/fhir/Patient/$export", []byte(params), map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	require.Equal(t, map[string][]string{"Patient": {"alice"}}, a.exported(a.wait(resp.Header.Get("Content-Location"))))
	resp, body = a.do(http.MethodGet, base+"/fhir/$export?_type=Patient&_elements=id", nil, map[string]string{"Prefer": "respond-async, handling=lenient"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	lm := a.wait(resp.Header.Get("Content-Location"))
	require.Len(t, lm.Error, 1)
	oo := a.download(lm.Error[0].URL, "OperationOutcome")
	require.Len(t, oo, 1)
	require.Contains(t, fmt.Sprint(oo[0]["issue"]), "_elements")

	// Patient and Group level: the compartment, of the Group's members only.
	gm := a.wait(a.kickoff("/fhir/Group/cohort/$export"))
	require.Equal(t, map[string][]string{"Observation": {"alice-lab", "bulk-obs-7"}, "Patient": {"alice", "bulk-7"}}, a.exported(gm))
	pm := a.wait(a.kickoff("/fhir/Patient/$export?_type=Observation"))
	require.Len(t, a.exported(pm)["Observation"], 3001)
	resp, body = a.do(http.MethodGet, base+"/fhir/Group/nope/$export", nil, map[string]string{"Prefer": "respond-async"})
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	resp, _ = b.do(http.MethodGet, base+"/fhir/Group/cohort/$export", nil, map[string]string{"Prefer": "respond-async"})
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "tenant-b must not learn that tenant default's Group exists")

	// Bad requests get an OperationOutcome.
	for _, q := range []string{"_outputFormat=text/csv", "_type=NotAType", "_since=yesterday", "_elements=id"} {
		resp, body = a.do(http.MethodGet, base+"/fhir/$export?"+q, nil, map[string]string{"Prefer": "respond-async"})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", q, body)
		require.Contains(t, body, "OperationOutcome")
	}
	resp, _ = a.do(http.MethodGet, base+"/fhir/$export", nil, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "kick-off without Prefer: respond-async")
	narrow := exportClient{t: t, base: base, token: issue("default", "system/Patient.rs")}
	resp, _ = narrow.do(http.MethodGet, base+"/fhir/$export?_type=Observation", nil, map[string]string{"Prefer": "respond-async"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// DELETE while running: 202, then every poll 404.
	running := a.kickoff("/fhir/$export")
	resp, body = a.do(http.MethodDelete, running, nil, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	for range 3 {
		resp, _ = a.do(http.MethodGet, running, nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		time.Sleep(100 * time.Millisecond)
	}

	// DELETE after completion: the files go.
	resp, body = a.do(http.MethodDelete, status, nil, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	resp, _ = a.do(http.MethodGet, status, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = http.Get(u)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a cancelled export's files are not served")
	jobDir := filepath.Join(cfg.DataDir, "exports", jobIDOf(status))
	require.Eventually(t, func() bool { return dirEmpty(jobDir) }, 30*time.Second, 100*time.Millisecond, "the cancelled export's files are deleted")

	// Expiry (retention 30 s here): the files are deleted, the URL refused, the job 404.
	groupFile := gm.Output[0].URL
	require.Eventually(t, func() bool {
		resp, _ := http.Get(groupFile)
		resp.Body.Close()
		return resp.StatusCode == http.StatusForbidden
	}, 90*time.Second, 500*time.Millisecond, "an expired URL is refused")
	var groupJob string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT id::text FROM bulk_export_jobs WHERE group_key = 'cohort'`).Scan(&groupJob))
	require.Eventually(t, func() bool {
		var st string
		_ = pool.QueryRow(context.Background(), `SELECT status::text FROM bulk_export_jobs WHERE id = $1`, groupJob).Scan(&st)
		return st == "expired" && dirEmpty(filepath.Join(cfg.DataDir, "exports", groupJob))
	}, 90*time.Second, 200*time.Millisecond, "the expired export's files are deleted and the job marked expired")
	resp, body = a.do(http.MethodGet, base+"/fhir/$export-status/"+groupJob, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	if *recordExportHistory {
		writeHistory(t, tc, "bulk-export-expiry/"+groupJob, "bulk_export_expiry_v0_expired")
	}
}

var recordExportHistory = flag.Bool("record-export-history", false, "write the BulkExport and BulkExportExpiry histories of TestBulkExportEndToEnd to workflows/testdata/histories")

// exportDiagnosis reports a job's row, tasks and files, and its workflow's pending
// activities, for a test that waited in vain.
func exportDiagnosis(pool *db.Pool, tc client.Client) func(job string) string {
	return func(job string) string {
		ctx := context.Background()
		var b strings.Builder
		var status, progress, errText, wfID string
		if err := pool.QueryRow(ctx, `SELECT status::text, progress, error, workflow_id FROM bulk_export_jobs WHERE id = $1`, job).Scan(&status, &progress, &errText, &wfID); err != nil {
			return "job row: " + err.Error()
		}
		fmt.Fprintf(&b, "job %s: status=%s progress=%q error=%q workflow=%s\n", job, status, progress, errText, wfID)
		rows, _ := pool.Query(ctx, `SELECT resource_type, owner_url, done, resources FROM bulk_export_tasks WHERE job_id = $1`, job)
		for rows.Next() {
			var typ, owner string
			var done bool
			var n int64
			_ = rows.Scan(&typ, &owner, &done, &n)
			fmt.Fprintf(&b, "  task %s@%s done=%v resources=%d\n", typ, owner, done, n)
		}
		rows.Close()
		var files int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM bulk_export_files WHERE job_id = $1`, job).Scan(&files)
		fmt.Fprintf(&b, "  files: %d\n", files)
		d, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
		if err != nil {
			return b.String() + "  describe workflow: " + err.Error()
		}
		fmt.Fprintf(&b, "  workflow status %s, history length %d\n", d.WorkflowExecutionInfo.Status, d.WorkflowExecutionInfo.HistoryLength)
		iter := tc.GetWorkflowHistory(ctx, wfID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				break
			}
			line := ev.GetEventType().String()
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				line += " " + a.GetActivityType().GetName() + " " + a.GetInput().String()
			}
			if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
				line += " " + a.GetResult().String() + " by " + a.GetIdentity()
			}
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				line += " " + a.GetInput().String()
			}
			fmt.Fprintf(&b, "  %s\n", line)
		}
		for _, pa := range d.PendingActivities {
			fmt.Fprintf(&b, "  pending %s state=%s attempt=%d last failure=%v\n", pa.ActivityType.GetName(), pa.State, pa.Attempt, pa.LastFailure.GetMessage())
		}
		return b.String()
	}
}

func jobIDOf(status string) string { return status[strings.LastIndex(status, "/")+1:] }

func dirEmpty(dir string) bool {
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	return files == 0
}
