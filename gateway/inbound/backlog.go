package inbound

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nhp/interop/db"
)

// BacklogCollector reports, at scrape time, how many messages wait per connector and status
// (pending, processing, failed) and how old the oldest is — the figures on-call staff alert on.
// It reads the database, so every gateway replica reports the same cluster-wide truth.
type BacklogCollector struct {
	Pool   *db.Pool
	Logger *slog.Logger
}

var (
	backlogDesc = prometheus.NewDesc("interop_hl7_backlog_messages",
		"Inbound messages not yet processed or dead-lettered, by tenant, connector and status.",
		[]string{"tenant", "connector", "status"}, nil)
	oldestDesc = prometheus.NewDesc("interop_hl7_backlog_oldest_seconds",
		"Age of the oldest message in the backlog, by tenant, connector and status.",
		[]string{"tenant", "connector", "status"}, nil)
)

// Describe implements prometheus.Collector.
func (b *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
}

// Collect implements prometheus.Collector.
func (b *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := db.New(b.Pool).Hl7MessageBacklog(ctx)
	if err != nil {
		if b.Logger != nil {
			b.Logger.Warn("collect backlog metrics", "error", err)
		}
		return
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(r.Messages), r.TenantID, r.Connector, string(r.Status))
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, r.OldestSeconds, r.TenantID, r.Connector, string(r.Status))
	}
}
