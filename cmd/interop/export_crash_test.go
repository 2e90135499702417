package main

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/dbtest"
)

// TestBulkExportCrashResume kills `interop dev` (kill -9) while it exports 200,000 resources,
// starts it again, and checks that the export completes with exact counts and no duplicate
// ids across files: each task resumes from its last heartbeat.
func TestBulkExportCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and boots the embedded Temporal server twice")
	}
	const perType = 100_000
	bin := filepath.Join(t.TempDir(), "interop")
	build := exec.Command(goTool(), "build", "-o", bin, "./cmd/interop")
	build.Dir = moduleRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	name := dbtest.UniqueName("exportcrash")
	serviceURL, err := dbtest.WithDatabase(dbtest.ClusterURL(), name)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, d := range []string{name, name + "_temporal", name + "_visibility"} {
			dbtest.DropDatabase(t, d)
		}
	})
	httpAddr, dataDir := freeAddr(t), t.TempDir()
	env := crashEnv(map[string]string{
		"DATABASE_URL":                    serviceURL,
		"INTEROP_HTTP_ADDR":               httpAddr,
		"INTEROP_MLLP_ADDR":               freeAddr(t),
		"INTEROP_METRICS_ADDR":            freeAddr(t),
		"INTEROP_DATA_DIR":                dataDir,
		"INTEROP_TEMPORAL_FRONTEND_ADDR":  freeAddr(t),
		"INTEROP_TEMPORAL_UI_ADDR":        freeAddr(t),
		"INTEROP_TEMPORAL_DB":             name + "_temporal",
		"INTEROP_TEMPORAL_VISIBILITY_DB":  name + "_visibility",
		"INTEROP_TEMPORAL_HISTORY_SHARDS": "1",
		"INTEROP_LOG_LEVEL":               "warn",
		"INTEROP_LOG_FORMAT":              "text",
		"INTEROP_EXPORT_FILE_MAX_COUNT":   "5000",
		"INTEROP_EXPORT_PARALLELISM":      "2",
	})
	logPath := filepath.Join(t.TempDir(), "interop.log")
	base := "http://" + httpAddr

	p1 := crashStart(t, bin, env, logPath, "run 1")
	p1.waitReady(t, base, 90*time.Second)
	pool := resPool(t, serviceURL)
	seedPatients(t, pool, "default", perType)
	secret, err := auth.DevSecret(dataDir)
	require.NoError(t, err)
	token, err := auth.HS256{Secret: secret}.Issue("crash", "default", "system/*.rs", time.Hour)
	require.NoError(t, err)
	c := exportClient{t: t, base: base, token: token}
	status := c.kickoff("/fhir/$export?_type=Observation,Patient")

	// Kill once some files are committed and the job is still running.
	ctx := context.Background()
	var files int
	var jobStatus string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT j.status::text, (SELECT count(*) FROM bulk_export_files f WHERE f.job_id = j.id)
FROM bulk_export_jobs j WHERE j.id = $1`, jobIDOf(status)).Scan(&jobStatus, &files))
		if files >= 4 || jobStatus != "in_progress" && jobStatus != "accepted" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, "in_progress", jobStatus, "the export must still run when the worker is killed (files so far: %d)", files)
	require.NoError(t, p1.cmd.Process.Kill())
	<-p1.done
	t.Logf("killed with %d of %d files committed", files, 2*perType/5000)

	p2 := crashStart(t, bin, env, logPath, "run 2")
	p2.waitReady(t, base, 90*time.Second)
	m := c.wait(status)
	got := map[string]int64{}
	for _, o := range m.Output {
		got[o.Type] += o.Count
	}
	require.Equal(t, map[string]int64{"Observation": perType, "Patient": perType}, got)
	require.Len(t, m.Output, 2*perType/5000, "files are split at 5,000 resources, none written twice")

	ids := map[string][]string{}
	for _, o := range m.Output {
		for _, r := range c.download(o.URL, o.Type) {
			ids[o.Type] = append(ids[o.Type], r["id"].(string))
		}
	}
	for typ, list := range ids {
		require.Len(t, list, perType, typ)
		slices.Sort(list)
		require.Equal(t, len(list), len(slices.Compact(slices.Clone(list))), "%s: duplicate ids across files", typ)
		want := make([]string, 0, perType)
		prefix := map[string]string{"Patient": "bulk-", "Observation": "bulk-obs-"}[typ]
		for i := 1; i <= perType; i++ {
			want = append(want, prefix+strconv.Itoa(i))
		}
		slices.Sort(want)
		require.Equal(t, want, list, "%s: missing or foreign ids", typ)
	}
	resp, _ := c.do(http.MethodGet, status, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p2.stop(t)
}
