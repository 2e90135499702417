// Command gateway measures the FHIR gateway's overhead: read and search requests per second
// and latency p50/p99 through the gateway versus directly against the same built-in store (its
// FHIR handler on its own listener, verifying the same bearer tokens) at the same concurrency;
// and a fan-out search over two owning services versus the same search of one owner.
//
//	go run ./bench/gateway [-c 16] [-d 5s] [-json]
//
// PostgreSQL comes from TEST_DATABASE_URL (else DATABASE_URL, else 127.0.0.1:5432); the
// databases it creates are dropped at the end.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nhp/interop/bench/internal/benchdb"
	"github.com/nhp/interop/gateway"
	"github.com/nhp/interop/gateway/fhirapi"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhirserver"
	"github.com/nhp/interop/internal/netguard"
	"github.com/nhp/interop/internal/routing"
	"github.com/nhp/interop/internal/store"
)

const (
	tenantDirect = "bench"     // the gateway routes everything to the built-in store
	tenantOne    = "bench-one" // Observation owned whole by owner 1
	tenantTwo    = "bench-two" // Observation split by category between owners 1 and 2
	mrnSystem    = "urn:oid:1.2.3.4.5.6"
)

func main() {
	conc := flag.Int("c", 16, "concurrent clients of the read and search measurements")
	fanoutConc := flag.Int("fanout-c", 1, "concurrent clients of the fan-out latency measurement (1: latency, not throughput, is compared)")
	rounds := flag.Int("rounds", 3, "rounds; each measures every scenario once, in turn, so that a noisy neighbour hits direct and gateway alike")
	dur := flag.Duration("d", 3*time.Second, "duration of each scenario in each round")
	patients := flag.Int("patients", 2000, "patients seeded in the store")
	observations := flag.Int("observations", 500, "observations seeded per owner")
	asJSON := flag.Bool("json", false, "print the results as one JSON object")
	only := flag.String("only", "", "run only the scenarios whose name contains this")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
	flag.Parse()
	onlyScenarios, profilePath = *only, *cpuprofile
	fanoutConcurrency, nRounds = *fanoutConc, *rounds
	if err := run(*conc, *dur, *patients, *observations, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gateway:", err)
		os.Exit(1)
	}
}

var (
	onlyScenarios, profilePath string
	fanoutConcurrency, nRounds int
)

type result struct {
	Name   string  `json:"name"`
	RPS    float64 `json:"rps"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Errors int64   `json:"errors"`
}

func run(conc int, dur time.Duration, nPatients, nObs int, asJSON bool) error {
	ctx := context.Background()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	signer := auth.HS256{Secret: secret}
	logger := slog.New(slog.DiscardHandler)

	// The store the gateway serves in-process and the direct listener serves: one database.
	main, err := benchdb.New(ctx, "benchgw")
	if err != nil {
		return err
	}
	defer main.Drop()
	st := &store.Store{Pool: main.Pool}
	direct, err := serve(ownerHandler(fhirserver.New(st, fhirserver.Options{Logger: logger}), signer))
	if err != nil {
		return err
	}
	// Two more owning services for the fan-out.
	var owners [2]string
	for i := range owners {
		d, err := benchdb.New(ctx, "benchgw")
		if err != nil {
			return err
		}
		defer d.Drop() //nolint:revive // defer in a loop: both owners' databases live until run returns
		if owners[i], err = serve(ownerHandler(fhirserver.New(&store.Store{Pool: d.Pool}, fhirserver.Options{Logger: logger}), signer)); err != nil {
			return err
		}
	}
	for _, r := range []struct{ tenant, typ, cat, owner string }{
		{tenantOne, "Observation", "", owners[0]},
		{tenantTwo, "Observation", "vital-signs", owners[0]},
		{tenantTwo, "Observation", "laboratory", owners[1]},
	} {
		if _, err := main.Pool.Exec(ctx, `INSERT INTO fhir_routing_rules (tenant_id, resource_type, category, owner_url) VALUES ($1, $2, $3, $4)`,
			r.tenant, r.typ, r.cat, r.owner); err != nil {
			return fmt.Errorf("insert routing rule: %w", err)
		}
	}
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gwURL := "http://" + gwLn.Addr().String()
	// The owners listen on loopback, which the SSRF guard refuses unless allowed, as `interop
	// dev` allows it.
	ownerPolicy, err := (*netguard.Policy)(nil).With(netguard.Loopback)
	if err != nil {
		return err
	}
	e := gateway.New(gateway.Deps{Pool: main.Pool, Store: st, Auth: signer, DefaultOwner: routing.Builtin,
		BaseURL: gwURL, Logger: logger, FHIR: fhirapi.Options{CursorKey: secret}, OwnerPolicy: ownerPolicy})
	go func() { _ = (&http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}).Serve(gwLn) }()

	tok := func(tenant string) string {
		t, err := signer.Issue("bench", tenant, "system/*.cruds", 2*time.Hour)
		if err != nil {
			panic(err)
		}
		return t
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc * 2}}

	fmt.Fprintf(os.Stderr, "seeding %d patients and 2×%d observations…\n", nPatients, nObs)
	ids, err := seedPatients(client, direct, tok(tenantDirect), nPatients)
	if err != nil {
		return err
	}
	for _, tenant := range []string{tenantOne, tenantTwo} {
		for i, cat := range []string{"vital-signs", "laboratory"} {
			if err := seedObservations(client, owners[i], tok(tenant), cat, nObs); err != nil {
				return err
			}
		}
	}

	// Fresh tables have no planner statistics yet; a real store has them.
	if _, err := main.Pool.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}

	read := func(base string) func(*mrand.Rand) string {
		return func(r *mrand.Rand) string { return base + "/Patient/" + ids[r.IntN(len(ids))] }
	}
	search := func(base string) func(*mrand.Rand) string {
		return func(r *mrand.Rand) string {
			return base + "/Patient?identifier=" + url.QueryEscape(fmt.Sprintf("%s|mrn-%d", mrnSystem, r.IntN(nPatients)))
		}
	}
	obs := func(base string) func(*mrand.Rand) string {
		return func(*mrand.Rand) string { return base + "/Observation?_sort=_lastUpdated&_count=20" }
	}
	gw := gwURL + "/fhir"
	scenarios := []struct {
		name   string
		token  string
		target func(*mrand.Rand) string
		conc   int
	}{
		{"read direct", tok(tenantDirect), read(direct), conc},
		{"read gateway", tok(tenantDirect), read(gw), conc},
		{"search direct", tok(tenantDirect), search(direct), conc},
		{"search gateway", tok(tenantDirect), search(gw), conc},
		{"observation search, one owner (gateway)", tok(tenantOne), obs(gw), fanoutConcurrency},
		{"observation search, fan-out to two owners (gateway)", tok(tenantTwo), obs(gw), fanoutConcurrency},
	}
	results := map[string]result{}
	samples := map[string]*sample{}
	var order []string
	if profilePath != "" {
		f, err := os.Create(profilePath)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return err
		}
		// The profile is written at Stop: Close's error says whether it reached the disk.
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			}
		}()
	}
	for round := range nRounds {
		for _, s := range scenarios {
			if onlyScenarios != "" && !strings.Contains(s.name, onlyScenarios) {
				continue
			}
			if round == 0 {
				if _, err := load(client, s.token, s.target, s.conc, time.Second); err != nil { // warm-up
					return fmt.Errorf("%s: %w", s.name, err)
				}
				samples[s.name] = &sample{}
				order = append(order, s.name)
			}
			sm, err := load(client, s.token, s.target, s.conc, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			samples[s.name].add(sm)
		}
	}
	for _, name := range order {
		r := samples[name].result()
		r.Name = name
		results[name] = r
		fmt.Fprintf(os.Stderr, "%-55s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d\n", name, r.RPS, r.P50ms, r.P99ms, r.Errors)
	}
	if onlyScenarios != "" {
		return nil
	}
	summary := map[string]any{"concurrency": conc, "fanout_concurrency": fanoutConcurrency, "rounds": nRounds, "duration": dur.String()}
	for _, k := range []string{"read", "search"} {
		d, g := results[k+" direct"], results[k+" gateway"]
		summary[k+"_throughput_ratio"] = round(g.RPS / d.RPS)
		summary[k+"_p99_added_ms"] = round(g.P99ms - d.P99ms)
		summary[k+"_p50_added_ms"] = round(g.P50ms - d.P50ms)
	}
	one, two := results[scenarios[4].name], results[scenarios[5].name]
	summary["fanout_p50_ratio"] = round(two.P50ms / one.P50ms)
	summary["fanout_p99_ratio"] = round(two.P99ms / one.P99ms)
	list := make([]result, 0, len(order))
	for _, n := range order {
		list = append(list, results[n])
	}
	summary["results"] = list
	fmt.Fprintf(os.Stderr, "\nthroughput gateway/direct: read %.0f%%, search %.0f%% (target ≥ 85%%)\n",
		100*results["read gateway"].RPS/results["read direct"].RPS, 100*results["search gateway"].RPS/results["search direct"].RPS)
	fmt.Fprintf(os.Stderr, "p99 added by the gateway: read %+.2f ms, search %+.2f ms (target ≤ 2 ms)\n",
		summary["read_p99_added_ms"], summary["search_p99_added_ms"])
	fmt.Fprintf(os.Stderr, "fan-out over two owners / one owner: p50 %.2f×, p99 %.2f× (target ≤ 1.3×)\n",
		summary["fanout_p50_ratio"], summary["fanout_p99_ratio"])
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(summary)
	}
	return nil
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// sample is what measurements gathered: every latency, the time spent and the errors.
type sample struct {
	lat     []time.Duration
	elapsed time.Duration
	errors  int64
}

func (s *sample) add(o *sample) {
	s.lat = append(s.lat, o.lat...)
	s.elapsed += o.elapsed
	s.errors += o.errors
}

func (s *sample) result() result {
	all := slices.Clone(s.lat)
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	return result{RPS: float64(len(all)) / s.elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99), Errors: s.errors}
}

// load runs conc clients against target for dur and measures each request.
func load(client *http.Client, token string, target func(*mrand.Rand) string, conc int, dur time.Duration) (*sample, error) {
	var errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))) //nolint:gosec // G115: a seed; w and the clock are non-negative
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, target(r), nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Accept", "application/fhir+json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d from %s", resp.StatusCode, req.URL.Path)
					}
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	s := &sample{elapsed: time.Since(start), errors: errs.Load()}
	for _, l := range lat {
		s.lat = append(s.lat, l...)
	}
	if len(s.lat) == 0 {
		return nil, fmt.Errorf("no request succeeded: %v", firstErr.Load())
	}
	if s.errors > int64(len(s.lat))/100 {
		return nil, fmt.Errorf("%d requests failed, e.g. %v", s.errors, firstErr.Load())
	}
	return s, nil
}

// ownerHandler is an owning service as `interop store` runs one: bearer token in, tenant into
// the request context.
func ownerHandler(h http.Handler, v auth.HS256) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		p, err := v.Verify(tok)
		if err != nil {
			http.Error(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(fhirserver.WithTenant(r.Context(), p.Tenant)))
	})
}

func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = (&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}).Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// postBatch sends a batch of entries to base.
func postBatch(client *http.Client, base, token string, entries []map[string]any) ([]map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries})
	req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b struct {
		Entry []map[string]any `json:"entry"`
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("seed batch: status %d: %s", resp.StatusCode, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		return nil, err
	}
	return b.Entry, nil
}

func seedPatients(client *http.Client, base, token string, n int) ([]string, error) {
	var ids []string
	for start := 0; start < n; start += 250 {
		var entries []map[string]any
		for i := start; i < min(n, start+250); i++ {
			entries = append(entries, map[string]any{
				"request": map[string]string{"method": "POST", "url": "Patient"},
				"resource": map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fmt.Sprint("Bench", i)}},
					"identifier": []any{map[string]string{"system": mrnSystem, "value": fmt.Sprint("mrn-", i)}}},
			})
		}
		out, err := postBatch(client, base, token, entries)
		if err != nil {
			return nil, err
		}
		for _, e := range out {
			if r, ok := e["resource"].(map[string]any); ok {
				ids = append(ids, r["id"].(string))
			}
		}
	}
	if len(ids) != n {
		return nil, fmt.Errorf("seeded %d of %d patients", len(ids), n)
	}
	return ids, nil
}

func seedObservations(client *http.Client, base, token, category string, n int) error {
	for start := 0; start < n; start += 250 {
		var entries []map[string]any
		for i := start; i < min(n, start+250); i++ {
			entries = append(entries, map[string]any{
				"request": map[string]string{"method": "POST", "url": "Observation"},
				"resource": map[string]any{"resourceType": "Observation", "status": "final",
					"category": []any{map[string]any{"coding": []any{map[string]string{"code": category}}}},
					"code":     map[string]any{"coding": []any{map[string]string{"system": "http://loinc.org", "code": fmt.Sprint("c", i)}}}},
			})
		}
		if _, err := postBatch(client, base, token, entries); err != nil {
			return err
		}
	}
	return nil
}
