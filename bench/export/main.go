// Command export measures Bulk Data export against the physical ceiling of the same run:
// resources per second written to NDJSON files by the export task (the BulkExportType
// activity, in a child process whose peak RSS is read from /proc), versus
// `COPY (SELECT resource …) TO STDOUT` of the same rows into a file.
//
//	go run ./bench/export [-n 1000000] [-rounds 2] [-json]
//
// PostgreSQL comes from TEST_DATABASE_URL (else DATABASE_URL, else 127.0.0.1:5432); the
// database it creates is dropped at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/nhp/interop/activities"
	"github.com/nhp/interop/bench/internal/benchdb"
	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/blobstore"
	"github.com/nhp/interop/internal/export"
	"github.com/nhp/interop/internal/store"
)

const tenant = "bench-export"

func main() {
	n := flag.Int("n", 1_000_000, "Observations seeded and exported")
	rounds := flag.Int("rounds", 2, "rounds; each measures COPY then the export, so a noisy neighbour hits both")
	asJSON := flag.Bool("json", false, "print the results as one JSON object")
	system := flag.Bool("system", true, "also export through the whole service (interop dev, over HTTP) once")
	child := flag.String("child", "", "internal: export job <id> from database -db into directory -dir and report")
	dbURL := flag.String("db", "", "internal: database of -child")
	dir := flag.String("dir", "", "internal: data directory of -child")
	flag.Parse()
	var err error
	if *child != "" {
		err = runChild(*child, *dbURL, *dir)
	} else {
		err = run(*n, *rounds, *asJSON, *system)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/export:", err)
		os.Exit(1)
	}
}

type childResult struct {
	Resources int64   `json:"resources"`
	Files     int     `json:"files"`
	Seconds   float64 `json:"seconds"`
	PeakRSSMB float64 `json:"peakRssMb"`
}

type roundResult struct {
	CopyPerSec   float64 `json:"copyPerSec"`
	ExportPerSec float64 `json:"exportPerSec"`
	Ratio        float64 `json:"ratio"`
	PeakRSSMB    float64 `json:"peakRssMb"`
	Files        int     `json:"files"`
	CopyMB       float64 `json:"copyMb"`
}

func run(n, rounds int, asJSON, system bool) error {
	ctx := context.Background()
	d, err := benchdb.New(ctx, "benchexport")
	if err != nil {
		return err
	}
	defer d.Drop()
	began := time.Now()
	if err := seed(ctx, d, n); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seeded %d Observations in %s\n", n, time.Since(began).Round(time.Second))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []roundResult
	for r := range rounds {
		dir, err := os.MkdirTemp("", "benchexport")
		if err != nil {
			return err
		}
		copySecs, copyBytes, err := copyCeiling(ctx, d, filepath.Join(dir, "copy.ndjson"))
		if err != nil {
			return err
		}
		job, err := newJob(ctx, d)
		if err != nil {
			return err
		}
		out, err := exec.Command(self, "-child", job.String(), "-db", d.URL, "-dir", dir).Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return fmt.Errorf("export child: %s", ee.Stderr)
			}
			return err
		}
		var c childResult
		if err := json.Unmarshal(out, &c); err != nil {
			return fmt.Errorf("export child said %q: %w", out, err)
		}
		if c.Resources != int64(n) {
			return fmt.Errorf("exported %d resources, want %d", c.Resources, n)
		}
		if _, err := d.Pool.Exec(ctx, `UPDATE bulk_export_jobs SET status = 'completed' WHERE id = $1`, job); err != nil {
			return err
		}
		_ = os.RemoveAll(dir)
		res := roundResult{
			CopyPerSec: float64(n) / copySecs, ExportPerSec: float64(n) / c.Seconds,
			PeakRSSMB: c.PeakRSSMB, Files: c.Files, CopyMB: float64(copyBytes) / (1 << 20),
		}
		res.Ratio = res.ExportPerSec / res.CopyPerSec
		results = append(results, res)
		fmt.Fprintf(os.Stderr, "round %d: COPY %.0f/s, export %.0f/s (%.0f%%), peak RSS %.0f MB, %d files\n",
			r+1, res.CopyPerSec, res.ExportPerSec, 100*res.Ratio, res.PeakRSSMB, res.Files)
	}
	var sys *systemResult
	if system {
		r, err := runSystem(ctx, d, n)
		if err != nil {
			return fmt.Errorf("whole-service export: %w", err)
		}
		sys = &r
		fmt.Fprintf(os.Stderr, "through interop dev: %.0f/s (%.1f s kick-off to manifest), peak RSS %.0f MB\n", r.PerSec, r.Seconds, r.PeakRSSMB)
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"n": n, "rounds": results, "system": sys})
	}
	fmt.Printf("Bulk export of %d Observations (one resource type, one task), same-run COPY ceiling\n\n", n)
	fmt.Println("| round | COPY TO file | export | ratio | export peak RSS | files |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, r := range results {
		fmt.Printf("| %d | %.0f res/s | %.0f res/s | %.0f %% | %.0f MB | %d |\n", i+1, r.CopyPerSec, r.ExportPerSec, 100*r.Ratio, r.PeakRSSMB, r.Files)
	}
	if sys != nil {
		last := results[len(results)-1]
		fmt.Printf("\nThrough the whole service (interop dev: kick-off over HTTP, workflow, polls every 100 ms, manifest): "+
			"%.0f res/s, %.0f %% of the last round's COPY ceiling; peak RSS of the process (with its embedded Temporal server and gateway) %.0f MB\n",
			sys.PerSec, 100*sys.PerSec/last.CopyPerSec, sys.PeakRSSMB)
	}
	return nil
}

// seed writes n Observations of a realistic size (about 700 bytes), in statements of 100,000,
// with their patient references indexed, then vacuums so that neither measurement pays for
// setting hint bits.
func seed(ctx context.Context, d *benchdb.DB, n int) error {
	const step = 100_000
	for lo := 1; lo <= n; lo += step {
		hi := min(lo+step-1, n)
		_, err := d.Pool.Exec(ctx, `INSERT INTO fhir_resources (tenant_id, resource_type, id, version_id, last_updated, resource, search_indexed)
SELECT $1, 'Observation', 'obs-' || lpad(i::text, 8, '0'), 1, now() - interval '1 day', jsonb_build_object(
  'resourceType', 'Observation', 'id', 'obs-' || lpad(i::text, 8, '0'),
  'meta', jsonb_build_object('versionId', '1', 'lastUpdated', to_char(now() - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'profile', jsonb_build_array('http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab')),
  'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:oid:1.2.840.114350.1.13.0.1.7.2.798268', 'value', 'LAB-' || i)),
  'status', 'final',
  'category', jsonb_build_array(jsonb_build_object('coding', jsonb_build_array(jsonb_build_object(
    'system', 'http://terminology.hl7.org/CodeSystem/observation-category', 'code', 'laboratory', 'display', 'Laboratory')))),
  'code', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object('system', 'http://loinc.org', 'code', '718-7',
    'display', 'Hemoglobin [Mass/volume] in Blood')), 'text', 'Hemoglobin'),
  'subject', jsonb_build_object('reference', 'Patient/pat-' || (i % 50000)),
  'effectiveDateTime', to_char(timestamp '2024-01-01' + (i || ' minutes')::interval, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'valueQuantity', jsonb_build_object('value', 10 + (i % 80) / 10.0, 'unit', 'g/dL', 'system', 'http://unitsofmeasure.org', 'code', 'g/dL'),
  'referenceRange', jsonb_build_array(jsonb_build_object('low', jsonb_build_object('value', 12, 'unit', 'g/dL'), 'high', jsonb_build_object('value', 16, 'unit', 'g/dL')))
), true
FROM generate_series($2::int, $3::int) i`, tenant, lo, hi)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if _, err := d.Pool.Exec(ctx, "VACUUM ANALYZE fhir_resources"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// copyCeiling is the physical ceiling: PostgreSQL's COPY of the same rows, in the same order,
// written to a file.
func copyCeiling(ctx context.Context, d *benchdb.DB, path string) (secs float64, size int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			secs, size, err = 0, 0, cerr
		}
	}()
	w := bufio.NewWriterSize(f, 256<<10)
	conn, err := pgx.Connect(ctx, d.URL) // COPY needs a connection of its own, not the service's pool
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	began := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, w, `COPY (SELECT resource FROM fhir_resources WHERE tenant_id = '`+tenant+`' AND resource_type = 'Observation' ORDER BY id) TO STDOUT`)
	if err != nil {
		return 0, 0, fmt.Errorf("copy: %w", err)
	}
	if err := w.Flush(); err != nil {
		return 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	secs = time.Since(began).Seconds()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if tag.RowsAffected() == 0 {
		return 0, 0, fmt.Errorf("copy wrote no rows")
	}
	return secs, st.Size(), nil
}

func newJob(ctx context.Context, d *benchdb.DB) (uuid.UUID, error) {
	params, err := json.Marshal(export.Request{Level: export.LevelSystem, Types: []string{"Observation"}, OutputFormat: "application/fhir+ndjson"})
	if err != nil {
		return uuid.Nil, err
	}
	job, err := db.New(d.Pool).BulkExportJobInsert(ctx, db.BulkExportJobInsertParams{
		TenantID: tenant, Level: db.BulkExportLevelSystem, GroupKey: "$system", RequestURL: "bench",
		Parameters: params, TransactionTime: time.Now().UTC(), WorkflowID: "bench-" + uuid.NewString(),
	})
	return job.ID, err
}

// runChild runs the export task of job as the worker would (the activity itself, with
// heartbeats), then reports its figures and its own peak RSS as JSON on stdout.
func runChild(jobID, dbURL, dir string) error {
	ctx := context.Background()
	job, err := uuid.Parse(jobID)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	bucket, err := blobstore.Open(ctx, "", dir)
	if err != nil {
		return err
	}
	defer func() { _ = bucket.Close() }() // a local directory: nothing buffered to lose
	acts := &activities.Activities{Pool: pool, Store: &store.Store{Pool: pool}, DefaultOwner: "builtin", Exports: bucket, Logger: slog.New(slog.DiscardHandler)}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestActivityEnvironment()
	env.SetTestTimeout(time.Hour)
	env.RegisterActivity(acts)
	began := time.Now()
	v, err := env.ExecuteActivity(acts.BulkExportType, activities.ExportTaskInput{JobID: job, Task: activities.ExportTask{Type: "Observation", Owner: "builtin"}})
	if err != nil {
		return err
	}
	secs := time.Since(began).Seconds()
	var res activities.ExportTaskResult
	if err := v.Get(&res); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Resources: res.Resources, Files: res.Files, Seconds: secs, PeakRSSMB: peakRSSMB()})
}

// peakRSSMB is VmHWM of this process, in MB (0 where /proc is not available).
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseVMHWM(string(b))
}
