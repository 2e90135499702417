package activities

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/blobstore"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/store"
)

const exportTenant = "t-export"

type exportHarness struct {
	t      *testing.T
	acts   *Activities
	q      *db.Queries
	bucket *blob.Bucket
}

func newExportHarness(t *testing.T) *exportHarness {
	t.Helper()
	_, pool := dbtest.New(t)
	bucket, err := blobstore.Open(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bucket.Close() })
	acts := &Activities{
		Pool: pool, Store: &store.Store{Pool: pool}, DefaultOwner: "builtin",
		Logger: slog.New(slog.DiscardHandler), Exports: bucket,
	}
	return &exportHarness{t: t, acts: acts, q: db.New(pool), bucket: bucket}
}

func (h *exportHarness) put(typ, id, body string) {
	h.t.Helper()
	_, err := h.acts.Store.Update(context.Background(), exportTenant, typ, id, []byte(body))
	require.NoError(h.t, err)
}

func (h *exportHarness) job(req export.Request, tt time.Time) uuid.UUID {
	h.t.Helper()
	req.OutputFormat = "application/fhir+ndjson"
	params, err := json.Marshal(req)
	require.NoError(h.t, err)
	job, err := h.q.BulkExportJobInsert(context.Background(), db.BulkExportJobInsertParams{
		TenantID: exportTenant, Level: db.BulkExportLevel(req.Level), GroupKey: req.GroupKey(), RequestURL: "http://x/fhir/$export",
		Parameters: params, TransactionTime: tt, WorkflowID: "wf-" + uuid.NewString(),
	})
	require.NoError(h.t, err)
	return job.ID
}

func (h *exportHarness) run(job uuid.UUID, task ExportTask, heartbeat *exportCursor) ExportTaskResult {
	h.t.Helper()
	env := newActivityEnv(h.acts)
	if heartbeat != nil {
		env.SetHeartbeatDetails(*heartbeat)
	}
	v, err := env.ExecuteActivity(h.acts.BulkExportType, ExportTaskInput{JobID: job, Task: task})
	require.NoError(h.t, err)
	var res ExportTaskResult
	require.NoError(h.t, v.Get(&res))
	return res
}

// lines reads every file of the job of kind, in file order, and returns their lines.
func (h *exportHarness) lines(job uuid.UUID, kind string) (files []db.BulkExportFile, lines []string) {
	h.t.Helper()
	all, err := h.q.BulkExportFileList(context.Background(), job)
	require.NoError(h.t, err)
	for _, f := range all {
		if f.Kind != kind {
			continue
		}
		files = append(files, f)
		r, err := h.bucket.NewReader(context.Background(), f.BlobKey, nil)
		require.NoError(h.t, err)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		n := 0
		for sc.Scan() {
			lines = append(lines, sc.Text())
			n++
		}
		require.NoError(h.t, sc.Err())
		require.NoError(h.t, r.Close())
		require.EqualValues(h.t, f.Count, n, "file %s: row count differs from its lines", f.BlobKey)
	}
	return files, lines
}

func idsOf(t *testing.T, lines []string, typ string) []string {
	t.Helper()
	var ids []string
	for _, l := range lines {
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &r), "line is not JSON: %.80s", l)
		require.Equal(t, typ, r.ResourceType)
		ids = append(ids, r.ID)
	}
	return ids
}

func patient(name string) string {
	return `{"resourceType":"Patient","name":[{"family":"` + name + `"}]}`
}

// A task splits its output by count, exports the state at the transaction time (a later
// update as it was, a later create not at all, a later delete still), and a run resumed from
// a heartbeat rewrites the same files: no line is lost or duplicated.
func TestExportTypeSnapshotsSplitsAndResumes(t *testing.T) {
	t.Parallel()
	h := newExportHarness(t)
	h.acts.ExportFileMaxCount = 10
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("p-%03d", i)
		h.put("Patient", id, patient("Before"+id))
		want = append(want, id)
	}
	time.Sleep(5 * time.Millisecond)
	tt := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	h.put("Patient", "p-003", patient("After"))
	h.put("Patient", "p-100", patient("New"))
	_, err := h.acts.Store.Delete(context.Background(), exportTenant, "Patient", "p-005")
	require.NoError(t, err)

	job := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Patient"}}, tt)
	plan, err := newActivityEnv(h.acts).ExecuteActivity(h.acts.BulkExportPlan, job)
	require.NoError(t, err)
	var p ExportPlan
	require.NoError(t, plan.Get(&p))
	require.Equal(t, []ExportTask{{Type: "Patient", Owner: "builtin"}}, p.Tasks)

	res := h.run(job, p.Tasks[0], nil)
	require.Equal(t, ExportTaskResult{Files: 3, Resources: 25}, res)
	files, lines := h.lines(job, "output")
	require.Len(t, files, 3)
	require.Equal(t, want, idsOf(t, lines, "Patient"))
	require.Contains(t, lines[3], "Beforep-003", "p-003 must be exported as it was at the transaction time")

	// Resumed after the first file, as a retried run after a crash would be.
	res = h.run(job, p.Tasks[0], &exportCursor{Phase: "output", Part: 1, After: "p-009", Files: 1, Resources: 10})
	require.Equal(t, ExportTaskResult{Files: 3, Resources: 25}, res)
	files, lines = h.lines(job, "output")
	require.Len(t, files, 3)
	require.Equal(t, want, idsOf(t, lines, "Patient"))

	// _since the first transaction time: the changes after it, and the deletion. (One export
	// of a group is active at a time: the first completes first.)
	_, err = h.q.BulkExportJobComplete(context.Background(), db.BulkExportJobCompleteParams{ID: job, ExpiresAt: ptr(time.Now().Add(time.Hour))})
	require.NoError(t, err)
	job2 := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Patient"}, Since: tt}, time.Now().UTC())
	res = h.run(job2, ExportTask{Type: "Patient", Owner: "builtin"}, nil)
	require.Equal(t, ExportTaskResult{Files: 2, Resources: 2, Deleted: 1}, res)
	_, lines = h.lines(job2, "output")
	require.Equal(t, []string{"p-003", "p-100"}, idsOf(t, lines, "Patient"))
	_, deleted := h.lines(job2, "deleted")
	require.Len(t, deleted, 1)
	require.JSONEq(t, `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/p-005"}}]}`, deleted[0])
}

// Patient and group level export the Patient compartment of the Group's members only, and
// _typeFilter keeps what matches any of its queries.
func TestExportCompartmentAndTypeFilter(t *testing.T) {
	t.Parallel()
	h := newExportHarness(t)
	for _, p := range []string{"a", "b", "c"} {
		h.put("Patient", p, patient(p))
		h.put("Observation", "vs-"+p, `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/`+p+`"}}`)
		h.put("Observation", "lab-"+p, `{"resourceType":"Observation","status":"preliminary","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/`+p+`"}}`)
	}
	h.put("Observation", "orphan", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)
	h.put("Group", "g1", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/a"}},{"entity":{"reference":"Patient/c"}},{"entity":{"reference":"Patient/b"},"inactive":true}]}`)
	tt := time.Now().UTC()

	job := h.job(export.Request{Level: export.LevelGroup, GroupID: "g1"}, tt)
	v, err := newActivityEnv(h.acts).ExecuteActivity(h.acts.BulkExportPlan, job)
	require.NoError(t, err)
	var p ExportPlan
	require.NoError(t, v.Get(&p))
	require.Equal(t, []ExportTask{{Type: "Observation", Owner: "builtin"}, {Type: "Patient", Owner: "builtin"}}, p.Tasks, "Group is not in the Patient compartment")
	for _, task := range p.Tasks {
		h.run(job, task, nil)
	}
	_, lines := h.lines(job, "output")
	var got []string
	for _, l := range lines {
		var r struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		got = append(got, r.ID)
	}
	slices.Sort(got)
	require.Equal(t, []string{"a", "c", "lab-a", "lab-c", "vs-a", "vs-c"}, got)

	job2 := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Observation"}, TypeFilters: map[string][]string{
		"Observation": {"category=vital-signs&status=final", "_id=orphan"},
	}}, tt)
	h.run(job2, ExportTask{Type: "Observation", Owner: "builtin"}, nil)
	_, lines = h.lines(job2, "output")
	require.Equal(t, []string{"orphan", "vs-a", "vs-b", "vs-c"}, idsOf(t, lines, "Observation"))
}

// A 5 MB resource among many small ones is streamed: the heap does not grow by more than a
// few copies of the largest resource, and files are split by bytes with the big one intact.
func TestExportLargeResourceStreams(t *testing.T) {
	t.Parallel()
	h := newExportHarness(t)
	h.acts.ExportFileMaxBytes = 1 << 20
	big := strings.Repeat("QUJD", 5<<20/4)
	h.put("Patient", "big", `{"resourceType":"Patient","photo":[{"contentType":"image/png","data":"`+big+`"}]}`)
	ctx := context.Background()
	// The small ones in one statement: the test is about export, not about writing.
	_, err := h.acts.Pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
SELECT $1, 'Patient', 's-' || lpad(i::text, 5, '0'), 1, now(), jsonb_build_object('resourceType', 'Patient', 'id', 's-' || lpad(i::text, 5, '0'), 'name', jsonb_build_array(jsonb_build_object('family', repeat('x', 200)))), true
FROM generate_series(1, 20000) i`, exportTenant)
	require.NoError(t, err)
	job := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Patient"}}, time.Now().UTC().Add(time.Second))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	})
	res := h.run(job, ExportTask{Type: "Patient", Owner: "builtin"}, nil)
	close(stop)
	wg.Wait()
	require.EqualValues(t, 20001, res.Resources)
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d MiB at most while exporting %d resources (%d files)", growth>>20, res.Resources, res.Files)
	require.Less(t, growth, int64(64<<20), "export memory grows with the data, not with the largest resource")

	files, lines := h.lines(job, "output")
	require.Greater(t, len(files), 4, "files must be split by bytes")
	for _, f := range files {
		require.LessOrEqual(t, f.SizeBytes, int64(1<<20)+int64(len(big))+1024)
	}
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, `{"id": "big"`) || strings.Contains(l[:min(len(l), 200)], `"id": "big"`) {
			found = true
			require.Contains(t, l, big)
		}
	}
	require.True(t, found, "the 5 MB resource is missing from the export")
}
