package fhirapi

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/outbox"
)

// Defaults of RoutedEvents.
const (
	DefaultRoutedEventsInterval = time.Minute
	DefaultRoutedEventsMaxKeys  = 10000
)

// RoutedEvents records the domain event FhirRequestRouted without flooding the outbox: FHIR
// handlers count each routed request with Record (a map increment under a mutex), and Run
// writes one event per (tenant, resource type, owner, interaction) per interval, carrying the
// count and the window, in one transaction. A replica that stops flushes what it counted;
// one that crashes loses at most one interval of counts — these are statistics, not audit.
type RoutedEvents struct {
	// Pool is where the events are written (through internal/outbox).
	Pool *db.Pool
	// Interval between flushes; 0 means DefaultRoutedEventsInterval.
	Interval time.Duration
	// MaxKeys bounds the distinct keys held between flushes; counts for further keys are
	// dropped (and logged) rather than let memory grow. 0 means DefaultRoutedEventsMaxKeys.
	MaxKeys int
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	counts  map[routedKey]int64
	since   time.Time // start of the current window
	dropped int64
}

type routedKey struct {
	tenant, resourceType, owner, interaction string
}

// Record counts one request of tenant for resourceType that was routed to owner (a base URL
// or "builtin") for interaction (a FHIR restful interaction: read, vread, search-type, create,
// update, delete, history-instance, …). A fan-out search records once per owner. Record on a
// nil *RoutedEvents does nothing, so handlers may call it unconditionally.
func (a *RoutedEvents) Record(tenant, resourceType, owner, interaction string) {
	if a == nil {
		return
	}
	k := routedKey{tenant, resourceType, owner, interaction}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = make(map[routedKey]int64)
		a.since = a.now()
	}
	if _, ok := a.counts[k]; !ok && len(a.counts) >= a.maxKeys() {
		a.dropped++
		return
	}
	a.counts[k]++
}

// Run flushes every Interval until ctx ends, then once more (with a short grace) so that a
// clean stop loses nothing.
func (a *RoutedEvents) Run(ctx context.Context) {
	interval := a.Interval
	if interval <= 0 {
		interval = DefaultRoutedEventsInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := a.Flush(final); err != nil {
				a.logger().Warn("routed events: final flush failed", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := a.Flush(ctx); err != nil && ctx.Err() == nil {
				a.logger().Warn("routed events: flush failed; counts kept for the next try", "error", err)
			}
		}
	}
}

// Flush writes one FhirRequestRouted event per counted key, all in one transaction, and starts
// a new window. If the write fails, the counts are put back to be written with the next flush.
func (a *RoutedEvents) Flush(ctx context.Context) error {
	a.mu.Lock()
	counts, since, dropped := a.counts, a.since, a.dropped
	a.counts, a.dropped = nil, 0
	a.mu.Unlock()
	if dropped > 0 {
		a.logger().Warn("routed events: counts dropped, too many distinct keys in one window",
			"dropped", dropped, "max_keys", a.maxKeys())
	}
	if len(counts) == 0 {
		return nil
	}
	until := a.now()
	keys := make([]routedKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		x, y := keys[i], keys[j]
		if x.tenant != y.tenant {
			return x.tenant < y.tenant
		}
		if x.resourceType != y.resourceType {
			return x.resourceType < y.resourceType
		}
		if x.owner != y.owner {
			return x.owner < y.owner
		}
		return x.interaction < y.interaction
	})
	err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
		for _, k := range keys {
			if err := outbox.Emit(ctx, q, k.tenant, outbox.FhirRequestRouted, k.resourceType, map[string]any{
				"resourceType": k.resourceType, "operation": k.interaction, "owner": k.owner, "count": counts[k],
				"windowStart": since.UTC().Format(time.RFC3339Nano), "windowEnd": until.UTC().Format(time.RFC3339Nano),
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.restore(counts, since)
		return fmt.Errorf("flush routed events: %w", err)
	}
	return nil
}

// restore merges counts that could not be written back into the current window, which then
// starts at the older window's start.
func (a *RoutedEvents) restore(counts map[routedKey]int64, since time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = make(map[routedKey]int64, len(counts))
	}
	for k, n := range counts {
		if _, ok := a.counts[k]; !ok && len(a.counts) >= a.maxKeys() {
			a.dropped += n
			continue
		}
		a.counts[k] += n
	}
	a.since = since
}

func (a *RoutedEvents) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *RoutedEvents) maxKeys() int {
	if a.MaxKeys > 0 {
		return a.MaxKeys
	}
	return DefaultRoutedEventsMaxKeys
}

func (a *RoutedEvents) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}
