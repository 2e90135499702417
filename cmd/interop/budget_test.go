package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mllp"
)

// `interop dev` holds at most INTEROP_DB_MAX_CONNS connections, every pool included (the
// service's and the embedded Temporal server's persistence and visibility pools), idle and
// under load, and names each pool's sessions so that pg_stat_activity tells them apart.
func TestDevStaysWithinConnectionBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Temporal server")
	}
	cfg, serviceURL := devTestConfig(t, "budget")
	budget := cfg.DBMaxConns
	dbName := serviceURL[strings.LastIndex(serviceURL, "/")+1:]
	dbName, _, _ = strings.Cut(dbName, "?")
	base := "http://" + cfg.HTTPAddr

	// The sampler's own session is on the maintenance database, out of the count.
	ctx := context.Background()
	probe, err := db.OpenWith(ctx, dbtest.ClusterURL(), db.Options{MaxConns: 1, ApplicationName: "interop-test-budget"})
	require.NoError(t, err)
	t.Cleanup(probe.Close)
	dbs := []string{dbName, cfg.Temporal.EmbeddedDatabase, cfg.Temporal.EmbeddedVisibilityDatabase}
	type sample struct {
		total int
		byApp map[string]int
	}
	sampleNow := func() sample {
		rows, err := probe.Query(ctx, `SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity
			WHERE datname = ANY($1) GROUP BY 1`, dbs)
		require.NoError(t, err)
		defer rows.Close()
		s := sample{byApp: map[string]int{}}
		for rows.Next() {
			var app string
			var n int
			require.NoError(t, rows.Scan(&app, &n))
			s.byApp[app] += n
			s.total += n
		}
		require.NoError(t, rows.Err())
		return s
	}
	var mu sync.Mutex
	var peak sample
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			s := sampleNow()
			mu.Lock()
			if s.total > peak.total {
				peak = s
			}
			mu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	startDev(t, cfg)
	waitReady(t, base)
	time.Sleep(3 * time.Second)
	idle := sampleNow()
	t.Logf("idle: %d connections %v", idle.total, idle.byApp)

	// Load: 8 senders, 40 messages each, every one processed.
	template := string(loadFixture(t, "adt_a01.hl7"))
	const senders, each = 8, 40
	var acked atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			c, err := mllp.Dial(sctx, cfg.MLLPAddr)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			for n := range each {
				msg := strings.ReplaceAll(template, "MSG00001", fmt.Sprintf("BUDGET-%d-%d", s, n))
				msg = strings.ReplaceAll(msg, "PATID1234", fmt.Sprintf("BUDGETPAT-%d-%d", s, n))
				reply, err := c.Send(sctx, []byte(msg))
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				if ack, err := hl7v2.ParseAck(reply); err == nil && ack.Code == hl7v2.AppAccept {
					acked.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, senders*each, acked.Load())
	svc, err := db.OpenWith(ctx, serviceURL, db.Options{MaxConns: 1, ApplicationName: "interop-test-budget"})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	require.Eventually(t, func() bool {
		var open int
		require.NoError(t, svc.QueryRow(ctx, `SELECT count(*) FROM hl7_messages WHERE status <> 'processed'`).Scan(&open))
		return open == 0
	}, 3*time.Minute, 250*time.Millisecond, "every message is processed")
	close(stopSampling)
	<-sampled

	mu.Lock()
	defer mu.Unlock()
	delete(peak.byApp, "interop-test-budget")
	peakTotal := 0
	for _, n := range peak.byApp {
		peakTotal += n
	}
	t.Logf("peak under load: %d connections %v (budget %d)", peakTotal, peak.byApp, budget)
	require.LessOrEqual(t, peakTotal, budget, "interop dev stays within INTEROP_DB_MAX_CONNS: %v", peak.byApp)
	for app := range peak.byApp {
		require.Contains(t, []string{"interop", "interop-temporal", "interop-temporal-visibility"}, app,
			"every session is named after its pool")
	}
}
