package fhirapi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/routing"
)

// routedEventRows reads the FhirRequestRouted events of the database.
func routedEventRows(t *testing.T, a *apiServer) []map[string]any {
	t.Helper()
	rows, err := a.pool.Query(context.Background(),
		`SELECT tenant_id, aggregate_type, aggregate_id, payload FROM domain_events WHERE event_type = 'FhirRequestRouted' ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var tenant, aggType, aggID string
		var payload []byte
		require.NoError(t, rows.Scan(&tenant, &aggType, &aggID, &payload))
		var p map[string]any
		require.NoError(t, json.Unmarshal(payload, &p))
		require.Equal(t, tenant, p["tenantId"])
		require.Equal(t, "FhirRoutingRule", aggType)
		require.Equal(t, p["resourceType"], aggID)
		out = append(out, p)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestRoutedEventsAggregate(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	ev := &RoutedEvents{Pool: s.pool}
	var nilEv *RoutedEvents
	nilEv.Record(apiTenantA, "Patient", routing.Builtin, "read") // a nil aggregator is a no-op

	for range 250 {
		ev.Record(apiTenantA, "Patient", routing.Builtin, "read")
	}
	for range 3 {
		ev.Record(apiTenantA, "Observation", "http://lab.example", "search-type")
		ev.Record(apiTenantA, "Observation", "http://vitals.example", "search-type")
	}
	ev.Record(apiTenantB, "Patient", routing.Builtin, "read")
	require.NoError(t, ev.Flush(context.Background()))
	got := routedEventRows(t, s)
	require.Len(t, got, 4, "one event per (tenant, type, owner, interaction), however many requests")
	counts := map[string]float64{}
	for _, p := range got {
		counts[fmt.Sprint(p["tenantId"], " ", p["resourceType"], " ", p["owner"], " ", p["operation"])] = p["count"].(float64)
		start, err := time.Parse(time.RFC3339Nano, p["windowStart"].(string))
		require.NoError(t, err)
		end, err := time.Parse(time.RFC3339Nano, p["windowEnd"].(string))
		require.NoError(t, err)
		require.False(t, end.Before(start))
	}
	require.Equal(t, map[string]float64{
		"tenant-a Patient builtin read":                          250,
		"tenant-a Observation http://lab.example search-type":    3,
		"tenant-a Observation http://vitals.example search-type": 3,
		"tenant-b Patient builtin read":                          1,
	}, counts)

	require.NoError(t, ev.Flush(context.Background()))
	require.Len(t, routedEventRows(t, s), 4, "an empty window writes nothing")
}

func TestRoutedEventsRunFlushesPeriodicallyAndOnStop(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	ev := &RoutedEvents{Pool: s.pool, Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ev.Run(ctx)
	}()
	ev.Record(apiTenantA, "Patient", routing.Builtin, "create")
	require.Eventually(t, func() bool { return len(routedEventRows(t, s)) == 1 }, 5*time.Second, 20*time.Millisecond)

	ev.Record(apiTenantA, "Patient", routing.Builtin, "update")
	cancel()
	<-done
	require.Len(t, routedEventRows(t, s), 2, "a clean stop flushes what was counted")
}

func TestRoutedEventsKeepCountsWhenTheWriteFails(t *testing.T) {
	t.Parallel()
	s := newAPIServer(t, nil)
	ev := &RoutedEvents{Pool: s.pool, MaxKeys: 2}
	ev.Record(apiTenantA, "Patient", routing.Builtin, "read")
	ev.Record(apiTenantA, "Patient", routing.Builtin, "read")
	ev.Record(apiTenantA, "Encounter", routing.Builtin, "read")
	ev.Record(apiTenantA, "Condition", routing.Builtin, "read") // a third key: dropped, not grown

	dead, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, ev.Flush(dead))
	require.Empty(t, routedEventRows(t, s))

	ev.Record(apiTenantA, "Patient", routing.Builtin, "read")
	require.NoError(t, ev.Flush(context.Background()))
	got := routedEventRows(t, s)
	require.Len(t, got, 2)
	for _, p := range got {
		if p["resourceType"] == "Patient" {
			require.EqualValues(t, 3, p["count"], "the failed window's counts are written with the next")
		}
	}
}
