package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nhp/interop/db"
)

// The fixture is cmd/interop/testdata/adt_a01.hl7 (microsoft/FHIR-Converter sample, MIT), copied
// because embed cannot reach outside the package directory.
//
//go:embed testdata/adt_a01.hl7
var fixtureADT []byte

const benchTenant = "bench"

// clusterURL is the maintenance URL of the PostgreSQL cluster, as dbtest finds it.
func clusterURL() string {
	for _, key := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(key); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// withDatabase returns base with its database name replaced by name and the extra query
// parameters added.
func withDatabase(base, name string, params map[string]string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// uniqueName is "bench_<12 hex>", a valid PostgreSQL identifier.
func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "bench_" + hex.EncodeToString(b)
}

func maintenanceExec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, clusterURL())
	if err != nil {
		return fmt.Errorf("PostgreSQL is not reachable at %s (set TEST_DATABASE_URL): %w", clusterURL(), err)
	}
	defer func() { _ = conn.Close(context.Background()) }() // the statement's error is the one that counts
	_, err = conn.Exec(ctx, sql)
	return err
}

func createDatabase(ctx context.Context, name string) error {
	if err := maintenanceExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// dropDatabase drops name, disconnecting whoever is still connected. It uses a fresh context:
// it runs on the way out, when the run's context may be cancelled.
func dropDatabase(name string) error {
	err := maintenanceExec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// serviceDB is a fresh, migrated service database with one active inbound MLLP connector.
type serviceDB struct {
	name      string
	url       string
	pool      *db.Pool
	connector db.InteropConnector
}

// newServiceDB creates and migrates a database, opens the service's pool on it (db.Open, as the
// service does; poolMaxConns > 0 overrides pgxpool's default of max(4, NumCPU)) and inserts an
// active connector listening on port.
func newServiceDB(ctx context.Context, name string, poolMaxConns int, port int) (*serviceDB, error) {
	if err := createDatabase(ctx, name); err != nil {
		return nil, err
	}
	s := &serviceDB{name: name}
	var err error
	if s.url, err = withDatabase(clusterURL(), name, nil); err != nil {
		return nil, err
	}
	if err := db.MigrateUp(s.url); err != nil {
		return nil, err
	}
	poolURL := s.url
	if poolMaxConns > 0 {
		// pgxpool's own parameter; the migrator's driver would send it to the server.
		if poolURL, err = withDatabase(clusterURL(), name, map[string]string{"pool_max_conns": strconv.Itoa(poolMaxConns)}); err != nil {
			return nil, err
		}
	}
	if s.pool, err = db.Open(ctx, poolURL); err != nil {
		return nil, err
	}
	q := db.New(s.pool)
	host := "127.0.0.1"
	p := int32(port) //nolint:gosec // G115: a TCP port, at most 65535
	c, err := q.ConnectorInsert(ctx, db.ConnectorInsertParams{
		TenantID: benchTenant, FacilityID: "bench-facility", Name: "bench-mllp",
		Protocol: db.ConnectorProtocolMLLP, Direction: db.ConnectorDirectionInbound, Status: db.ConnectorStatusDraft,
		ListenHost: &host, ListenPort: &p, Settings: []byte(`{}`),
	})
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("insert connector: %w", err)
	}
	if s.connector, err = q.ConnectorSetStatus(ctx, db.ConnectorSetStatusParams{TenantID: benchTenant, ID: c.ID, Status: db.ConnectorStatusActive}); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("activate connector: %w", err)
	}
	return s, nil
}

func (s *serviceDB) close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// listen opens a listener on a free loopback port.
func listen() (net.Listener, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// messages returns n distinct ADT^A01 messages with CR terminators: MSH-10 is prefix+i, and so
// are the keys of every patient-level resource (PID-3, the visit PV1-19, the next of kin's
// NK1-33, the diagnosis DG1-20, the policy IN1-…), so that no two messages update the same
// resource, as in a real feed of many patients (the store serialises writers of one key).
// The Practitioners, Organizations and Locations stay shared, as in a real feed.
func messages(prefix string, n int) [][]byte {
	s := strings.ReplaceAll(string(fixtureADT), "\r\n", "\n")
	s = strings.TrimRight(s, "\n")
	s = strings.ReplaceAll(s, "\n", "\r") + "\r"
	if !strings.Contains(s, "|MSG00001|") || !strings.Contains(s, "|PATID1234^") {
		panic("fixture changed: MSH-10 MSG00001 or PID-3 PATID1234 not found")
	}
	out := make([][]byte, n)
	for i := range out {
		id := fmt.Sprintf("%s%07d", prefix, i)
		m := strings.Replace(s, "|MSG00001|", "|"+id+"|", 1)
		m = strings.Replace(m, "|PATID1234^", "|P"+id+"^", 1)
		for _, key := range []string{"40007716^", "I-123^", "I-222^", "DI20^", "HMO-12345^"} {
			m = strings.ReplaceAll(m, key, strings.TrimSuffix(key, "^")+"-"+id+"^")
		}
		out[i] = []byte(m)
	}
	return out
}

// --- resource accounting --------------------------------------------------------------------

// snapshot is the machine's and PostgreSQL's counters at one instant; two of them give what a
// phase cost.
type snapshot struct {
	at        time.Time
	cpuBusy   uint64 // jiffies, all cores
	cpuTotal  uint64
	selfCPU   time.Duration  // this process (service + embedded Temporal + load generator)
	pgJiffies map[int]uint64 // by pid, the PostgreSQL backends serving this run's databases
	xacts     map[string]int64
	writes    map[string]int64 // rows inserted + updated + deleted
}

// statsConn reads pg_stat_* for a set of databases.
type statsConn struct {
	conn *pgx.Conn
	dbs  []string
}

func newStatsConn(ctx context.Context, dbs ...string) (*statsConn, error) {
	conn, err := pgx.Connect(ctx, clusterURL())
	if err != nil {
		return nil, err
	}
	return &statsConn{conn: conn, dbs: dbs}, nil
}

func (s *statsConn) close() { _ = s.conn.Close(context.Background()) }

func (s *statsConn) take(ctx context.Context) snapshot {
	sn := snapshot{at: time.Now(), xacts: map[string]int64{}, writes: map[string]int64{}}
	sn.cpuBusy, sn.cpuTotal = machineCPU()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		sn.selfCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if s == nil {
		return sn
	}
	sn.pgJiffies = postgresJiffies(s.dbs)
	rows, err := s.conn.Query(ctx, `SELECT datname, xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted
		FROM pg_stat_database WHERE datname = ANY($1)`, s.dbs)
	if err == nil {
		for rows.Next() {
			var name string
			var x, w int64
			if rows.Scan(&name, &x, &w) == nil {
				sn.xacts[name], sn.writes[name] = x, w
			}
		}
		rows.Close()
	}
	return sn
}

// usage is what happened between two snapshots.
type usage struct {
	wall        time.Duration
	machineBusy float64 // fraction of all cores
	selfCores   float64 // cores used by this process
	pgCores     float64 // cores used by the PostgreSQL backends of this run's databases
	// Per database, from pg_stat_database (flushed by backends about once a second, so
	// approximate): transactions, and rows written.
	xacts  map[string]int64
	writes map[string]int64
}

func diff(a, b snapshot) usage {
	u := usage{wall: b.at.Sub(a.at), xacts: map[string]int64{}, writes: map[string]int64{}}
	if b.cpuTotal > a.cpuTotal {
		u.machineBusy = float64(b.cpuBusy-a.cpuBusy) / float64(b.cpuTotal-a.cpuTotal)
	}
	if s := u.wall.Seconds(); s > 0 {
		u.selfCores = (b.selfCPU - a.selfCPU).Seconds() / s
		var j uint64
		for pid, v := range b.pgJiffies {
			if prev, ok := a.pgJiffies[pid]; ok && v >= prev {
				j += v - prev
			} else if !ok {
				j += v // started during the interval
			}
		}
		u.pgCores = float64(j) / clockTicks / s
	}
	for k, v := range b.xacts {
		u.xacts[k] = v - a.xacts[k]
	}
	for k, v := range b.writes {
		u.writes[k] = v - a.writes[k]
	}
	return u
}

const clockTicks = 100 // USER_HZ on Linux

// machineCPU reads the aggregate line of /proc/stat: busy and total jiffies.
func machineCPU() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// postgresJiffies returns utime+stime of the PostgreSQL backends connected to one of dbs, by
// pid: a backend's title ("postgres: 15/main: user db addr state", in its cmdline) names its
// database. Shared background processes (WAL writer, checkpointer) are left out; backends flush
// WAL themselves at commit, so the fsyncs of this run's commits are in.
func postgresJiffies(dbs []string) map[int]uint64 {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	out := map[int]uint64{}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		title, err := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		if err != nil || !servesOneOf(strings.ReplaceAll(string(title), "\x00", " "), dbs) {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		// After the comm: state(0) ppid(1) ... utime(11) stime(12).
		if len(f) > 12 {
			ut, _ := strconv.ParseUint(f[11], 10, 64)
			st, _ := strconv.ParseUint(f[12], 10, 64)
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out[pid] = ut + st
		}
	}
	return out
}

func servesOneOf(title string, dbs []string) bool {
	for _, f := range strings.Fields(title) {
		for _, d := range dbs {
			if f == d {
				return true
			}
		}
	}
	return false
}
