package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/bench/internal/benchdb"
	"github.com/nhp/interop/bench/internal/devproc"
	"github.com/nhp/interop/internal/auth"
)

// systemResult is one export through the whole service: kick-off over HTTP to the manifest.
type systemResult struct {
	PerSec    float64 `json:"perSec"`
	Seconds   float64 `json:"seconds"`
	Files     int     `json:"files"`
	PeakRSSMB float64 `json:"peakRssMb"`
}

// runSystem exports the seeded rows through `interop dev` (a subprocess built from this
// module): kick-off, polls, manifest. Its time includes the workflow, the polls' granularity
// (100 ms) and the process's peak RSS includes the embedded Temporal server and the gateway.
func runSystem(ctx context.Context, d *benchdb.DB, n int) (systemResult, error) {
	dir, err := os.MkdirTemp("", "benchexport-dev")
	if err != nil {
		return systemResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary directory: best effort
	bin, err := devproc.Build(ctx, dir)
	if err != nil {
		return systemResult{}, err
	}
	addrs, err := devproc.FreeAddrs(4)
	if err != nil {
		return systemResult{}, err
	}
	dataDir := filepath.Join(dir, "data")
	env := devproc.Env(map[string]string{
		"DATABASE_URL": d.URL, "INTEROP_HTTP_ADDR": addrs[0], "INTEROP_MLLP_ADDR": addrs[1],
		"INTEROP_TEMPORAL_FRONTEND_ADDR": addrs[2], "INTEROP_TEMPORAL_UI_ADDR": addrs[3],
		"INTEROP_TEMPORAL_DB": d.Name + "_temporal", "INTEROP_TEMPORAL_VISIBILITY_DB": d.Name + "_visibility",
		"INTEROP_DATA_DIR": dataDir, "INTEROP_LOG_LEVEL": "warn", "INTEROP_LOG_FORMAT": "text",
	})
	proc, err := devproc.Start(bin, env, filepath.Join(dir, "dev.log"), "bench/export")
	if err != nil {
		return systemResult{}, err
	}
	defer func() {
		_ = proc.Stop(30 * time.Second) // the figures are taken; a slow stop is killed
		for _, db := range []string{d.Name + "_temporal", d.Name + "_visibility"} {
			benchdb.DropNamed(db)
		}
	}()
	base := "http://" + addrs[0]
	if err := proc.WaitReady(ctx, base, 120*time.Second); err != nil {
		return systemResult{}, err
	}
	secret, err := auth.DevSecret(dataDir)
	if err != nil {
		return systemResult{}, err
	}
	token, err := auth.HS256{Secret: secret}.Issue("bench", tenant, "system/*.rs", time.Hour)
	if err != nil {
		return systemResult{}, err
	}
	began := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/fhir/$export?_type=Observation", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return systemResult{}, err
	}
	resp.Body.Close()
	status := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || status == "" {
		return systemResult{}, fmt.Errorf("kick-off answered %d", resp.StatusCode)
	}
	var peak float64
	for {
		peak = max(peak, vmHWM(proc.Cmd.Process.Pid))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, status, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return systemResult{}, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			time.Sleep(100 * time.Millisecond)
			continue
		case http.StatusOK:
		default:
			return systemResult{}, fmt.Errorf("status answered %d: %s", resp.StatusCode, body)
		}
		secs := time.Since(began).Seconds()
		var m struct {
			Output []struct {
				Count int64 `json:"count"`
			} `json:"output"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return systemResult{}, err
		}
		var total int64
		for _, o := range m.Output {
			total += o.Count
		}
		if total != int64(n) {
			return systemResult{}, fmt.Errorf("the manifest counts %d resources, want %d", total, n)
		}
		return systemResult{PerSec: float64(n) / secs, Seconds: secs, Files: len(m.Output), PeakRSSMB: max(peak, vmHWM(proc.Cmd.Process.Pid))}, nil
	}
}

// vmHWM is the peak RSS of process pid, in MB.
func vmHWM(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseVMHWM(string(b))
}

func parseVMHWM(status string) float64 {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
