package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/export"
)

// ownerSecret is the HS256 secret the `interop store` owner verifies tokens with.
var ownerSecret = []byte("owner-test-secret-0123456789abcdef")

// startStoreProcess builds the interop binary and runs `interop store` on its own database
// and port, as an external owner, and returns its base URL. The process is killed at cleanup.
func startStoreProcess(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "interop")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/interop")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build interop: %s", out)

	dbURL, _ := dbtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "store", "--addr", addr)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "INTEROP_JWT_SECRET="+string(ownerSecret),
		"INTEROP_DATA_DIR="+t.TempDir(), "INTEROP_JWKS_URL=", "INTEROP_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/metadata")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "interop store on %s did not come up", addr)
	return base
}

func ownerToken(t *testing.T, scope string) string {
	t.Helper()
	tok, err := auth.HS256{Secret: ownerSecret}.Issue("export-test", exportTenant, scope, time.Hour)
	require.NoError(t, err)
	return tok
}

// postBundle sends a batch or transaction Bundle of PUTs to the owner.
func postBundle(t *testing.T, base, kind string, resources map[string]string) {
	t.Helper()
	b := map[string]any{"resourceType": "Bundle", "type": kind}
	var entries []any
	for id, body := range resources {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		r["id"] = id // FHIR update: the body carries the id of its URL (the store refuses one without)
		entries = append(entries, map[string]any{
			"resource": r, "request": map[string]any{"method": "PUT", "url": r["resourceType"].(string) + "/" + id},
		})
	}
	b["entry"] = entries
	raw, err := json.Marshal(b)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+ownerToken(t, "system/*.cruds"))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Entry []struct {
			Response struct{ Status string } `json:"response"`
		} `json:"entry"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Entry, len(resources))
	for _, e := range out.Entry {
		require.Regexp(t, `^20[01] `, e.Response.Status)
	}
}

func observationOf(i int, subject bool) string {
	status := "preliminary"
	if i%2 == 0 {
		status = "final"
	}
	s := `{"resourceType":"Observation","status":"` + status + `",` + "\n" + `  "code":{"text":"x"}`
	if subject {
		s += fmt.Sprintf(`,"subject":{"reference":"Patient/p-%02d"}`, i%75)
	}
	return s + "}"
}

// failAfter is a transport that fails every request from the n-th on, as a worker that loses
// the owner mid-task does.
type failAfter struct {
	n, seen atomic.Int32
}

func (f *failAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.seen.Add(1) >= f.n.Load() {
		return nil, errors.New("connection reset by test")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// runWithHeartbeats runs BulkExportType, from heartbeat if given, and returns its error and
// the cursors it heartbeat.
func (h *exportHarness) runWithHeartbeats(job uuid.UUID, task ExportTask, heartbeat *exportCursor) (ExportTaskResult, []exportCursor, error) {
	env := newActivityEnv(h.acts)
	if heartbeat != nil {
		env.SetHeartbeatDetails(*heartbeat)
	}
	var mu sync.Mutex
	var beats []exportCursor
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var c exportCursor
		require.NoError(h.t, details.Get(&c))
		mu.Lock()
		beats = append(beats, c)
		mu.Unlock()
	})
	v, err := env.ExecuteActivity(h.acts.BulkExportType, ExportTaskInput{JobID: job, Task: task})
	var res ExportTaskResult
	if err == nil {
		require.NoError(h.t, v.Get(&res))
	}
	mu.Lock()
	defer mu.Unlock()
	return res, beats, err
}

func (h *exportHarness) plan(job uuid.UUID) (ExportPlan, error) {
	v, err := newActivityEnv(h.acts).ExecuteActivity(h.acts.BulkExportPlan, job)
	if err != nil {
		return ExportPlan{}, err
	}
	var p ExportPlan
	require.NoError(h.t, v.Get(&p))
	return p, nil
}

// complete ends the job, so that another of its group may start.
func (h *exportHarness) complete(job uuid.UUID) {
	h.t.Helper()
	if _, err := h.q.BulkExportJobStart(context.Background(), job); err != nil {
		require.ErrorIs(h.t, err, db.ErrNotFound, "started by BulkExportPlan")
	}
	_, err := h.q.BulkExportJobComplete(context.Background(), db.BulkExportJobCompleteParams{ID: job, ExpiresAt: ptr(time.Now().Add(time.Hour))})
	require.NoError(h.t, err)
}

func obsIDs(keep func(i int) bool) []string {
	var out []string
	for i := range 300 {
		if keep(i) {
			out = append(out, fmt.Sprintf("obs-%03d", i))
		}
	}
	return out
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// An `interop store` process owns Observation. The export reads it through its FHIR search:
// the exact resources of the transaction time, split into files, resumed after a failure
// mid-task without a duplicate or a gap, by Patient batches of a Group's members, filtered,
// incrementally with _since; what it cannot do is refused.
func TestExportFromExternalOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the interop binary")
	}
	t.Parallel()
	owner := startStoreProcess(t)
	h := newExportHarness(t)
	ctx := context.Background()
	h.acts.HTTP = &http.Client{Timeout: 30 * time.Second}
	h.acts.OwnerToken = func(_ context.Context, tenant, _ string) (string, error) {
		return auth.HS256{Secret: ownerSecret}.Issue("interop-export", tenant, "system/*.rs", 5*time.Minute)
	}
	h.acts.ExportFileMaxCount = 70
	h.acts.ExportOwnerPageCount = 50
	_, err := h.q.FhirRoutingRuleCreate(ctx, db.FhirRoutingRuleCreateParams{
		ID: uuid.New(), TenantID: exportTenant, ResourceType: "Observation", OwnerURL: owner, Enabled: true,
	})
	require.NoError(t, err)

	// 150 in one transaction (one lastUpdated for all: ties the owner's paging must break),
	// then 150 one by one in a batch, and one without a subject.
	first, second := map[string]string{}, map[string]string{}
	for i := range 300 {
		m := first
		if i >= 150 {
			m = second
		}
		m[fmt.Sprintf("obs-%03d", i)] = observationOf(i, true)
	}
	postBundle(t, owner, "transaction", first)
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	postBundle(t, owner, "batch", second)
	postBundle(t, owner, "batch", map[string]string{"orphan": observationOf(0, false)})
	var members []string
	for i := range 60 {
		members = append(members, fmt.Sprintf(`{"entity":{"reference":"Patient/p-%02d"}}`, i))
	}
	members = append(members, `{"entity":{"reference":"Patient/p-70"},"inactive":true}`)
	h.put("Group", "g1", `{"resourceType":"Group","type":"person","actual":true,"member":[`+strings.Join(members, ",")+`]}`)
	time.Sleep(5 * time.Millisecond)
	tt := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	// After the transaction time: a new one is not exported; a changed one is not either, as
	// a search cannot read the version of an instant (the next export with _since has it).
	postBundle(t, owner, "batch", map[string]string{"obs-late": observationOf(2, true), "obs-000": observationOf(4, true)})

	all := append(obsIDs(func(i int) bool { return i != 0 }), "orphan")
	task := ExportTask{Type: "Observation", Owner: owner}

	t.Run("system level, resumed after a failure mid-task", func(t *testing.T) {
		h.t = t
		job := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Observation"}}, tt)
		p, err := h.plan(job)
		require.NoError(t, err)
		require.Equal(t, []ExportTask{task}, p.Tasks)

		// The 5th request fails: four pages of 50 read, two files of 70 committed, the third
		// file lost with the try.
		broken := &failAfter{}
		broken.n.Store(5)
		h.acts.HTTP = &http.Client{Transport: broken}
		_, beats, err := h.runWithHeartbeats(job, task, nil)
		h.acts.HTTP = &http.Client{Timeout: 30 * time.Second}
		require.Error(t, err)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			require.False(t, appErr.NonRetryable(), "a lost connection must be retried: %v", err)
		}
		require.NotContains(t, err.Error(), owner, "the job's error must not reveal the owner's URL")
		require.NotEmpty(t, beats)
		last := beats[len(beats)-1]
		require.Equal(t, 2, last.Files)
		require.EqualValues(t, 140, last.Resources)
		require.NotEmpty(t, last.Page)
		require.Len(t, last.PageIDs, 40, "the second file ended 40 resources into the third page")

		res, _, err := h.runWithHeartbeats(job, task, &last)
		require.NoError(t, err)
		require.Equal(t, ExportTaskResult{Files: 5, Resources: 300}, res)
		files, lines := h.lines(job, "output")
		var counts []int64
		for _, f := range files {
			counts = append(counts, f.Count)
			require.Contains(t, f.BlobKey, "Observation-"+ownerFileTag(owner)+"-")
		}
		require.Equal(t, []int64{70, 70, 70, 70, 20}, counts)
		got := idsOf(t, lines, "Observation")
		require.Equal(t, sorted(all), sorted(got), "every resource exactly once")
		for _, l := range lines {
			var compact bytes.Buffer
			require.NoError(t, json.Compact(&compact, []byte(l)))
			require.Equal(t, compact.String(), l, "lines are compact JSON")
		}

		// A run without a failure writes the same files.
		h.complete(job)
		job2 := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Observation"}}, tt)
		h.run(job2, task, nil)
		_, lines2 := h.lines(job2, "output")
		require.Equal(t, lines, lines2)
		h.complete(job2)
	})

	t.Run("system level with _since", func(t *testing.T) {
		h.t = t
		job := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Observation"}, Since: since}, tt)
		res := h.run(job, task, nil)
		require.Equal(t, ExportTaskResult{Files: 3, Resources: 151}, res)
		_, lines := h.lines(job, "output")
		require.Equal(t, sorted(append(obsIDs(func(i int) bool { return i >= 150 }), "orphan")), sorted(idsOf(t, lines, "Observation")))
		h.complete(job)
	})

	t.Run("group level in Patient batches", func(t *testing.T) {
		h.t = t
		job := h.job(export.Request{Level: export.LevelGroup, GroupID: "g1"}, tt)
		p, err := h.plan(job)
		require.NoError(t, err)
		require.Equal(t, []ExportTask{task}, p.Tasks, "the compartment's types: the builtin store has none, the rule names Observation")
		res := h.run(job, task, nil)
		want := obsIDs(func(i int) bool { return i != 0 && i%75 < 60 })
		require.EqualValues(t, len(want), res.Resources)
		_, lines := h.lines(job, "output")
		require.Equal(t, sorted(want), sorted(idsOf(t, lines, "Observation")))
		h.complete(job)
	})

	t.Run("patient level with _typeFilter", func(t *testing.T) {
		h.t = t
		job := h.job(export.Request{Level: export.LevelPatient, Types: []string{"Observation"},
			TypeFilters: map[string][]string{"Observation": {"status=final"}}}, tt)
		h.run(job, task, nil)
		_, lines := h.lines(job, "output")
		require.Equal(t, sorted(obsIDs(func(i int) bool { return i != 0 && i%2 == 0 })), sorted(idsOf(t, lines, "Observation")),
			"final ones with a subject: orphan is final too, but in no Patient's compartment")
		h.complete(job)
	})

	t.Run("refusals", func(t *testing.T) {
		h.t = t
		job := h.job(export.Request{Level: export.LevelSystem, Types: []string{"Observation"},
			TypeFilters: map[string][]string{"Observation": {"status=final", "status=preliminary"}}}, tt)
		_, err := h.plan(job)
		requireNonRetryable(t, err, ErrTypeExportInvalid)
		require.ErrorContains(t, err, "a resource matching two queries would be exported twice")

		// Without a token the owner refuses: its diagnostics say why, and no retry helps.
		job = h.job(export.Request{Level: export.LevelGroup, GroupID: "g1"}, tt)
		tokens := h.acts.OwnerToken
		h.acts.OwnerToken = nil
		_, _, err = h.runWithHeartbeats(job, task, nil)
		h.acts.OwnerToken = tokens
		requireNonRetryable(t, err, ErrTypeOwnerRefused)
		require.ErrorContains(t, err, "HTTP 401")
		require.ErrorContains(t, err, "missing bearer token")
		require.NotContains(t, err.Error(), owner)
	})
}
