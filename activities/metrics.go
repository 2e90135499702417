package activities

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the activities' Prometheus collectors; nil fields are not counted.
type Metrics struct {
	// Outcomes counts messages reaching processed, unmapped (no mapping for the type), failed
	// (a try failed, another will follow) or dead_lettered, by tenant. Counted after the transaction commits; an activity retried
	// after a lost reply may count twice, so alert on rates, not exact totals.
	Outcomes *prometheus.CounterVec
	// ExportResources and ExportFiles count what export tasks wrote, by tenant and resource
	// type (resources) or kind (files): committed files only; a rewritten file after a resume
	// counts again.
	ExportResources *prometheus.CounterVec
	ExportFiles     *prometheus.CounterVec
	// ExportJobs counts export jobs reaching completed or failed, by tenant (cancellations are the gateway's).
	ExportJobs *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_hl7_message_outcomes_total",
			Help: "Inbound messages reaching processed, unmapped, failed or dead_lettered, by tenant.",
		}, []string{"tenant", "outcome"}),
		ExportResources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_export_resources_total",
			Help: "Resources written to Bulk Data export files, by tenant and resource type.",
		}, []string{"tenant", "resource_type"}),
		ExportFiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_export_files_total",
			Help: "Bulk Data export files committed, by tenant and kind (output, deleted, error).",
		}, []string{"tenant", "kind"}),
		ExportJobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_export_jobs_total",
			Help: "Bulk Data export jobs reaching completed or failed, by tenant.",
		}, []string{"tenant", "outcome"}),
	}
	reg.MustRegister(m.Outcomes, m.ExportResources, m.ExportFiles, m.ExportJobs)
	return m
}

func (a *Activities) countExportFile(tenant, kind, typ string, resources int64) {
	if a.Metrics == nil || a.Metrics.ExportFiles == nil {
		return
	}
	a.Metrics.ExportFiles.WithLabelValues(tenant, kind).Inc()
	if kind == "output" {
		a.Metrics.ExportResources.WithLabelValues(tenant, typ).Add(float64(resources))
	}
}

func (a *Activities) countExportJob(tenant, outcome string) {
	if a.Metrics != nil && a.Metrics.ExportJobs != nil {
		a.Metrics.ExportJobs.WithLabelValues(tenant, outcome).Inc()
	}
}

func (a *Activities) countOutcome(tenant, outcome string) {
	if a.Metrics != nil && a.Metrics.Outcomes != nil {
		a.Metrics.Outcomes.WithLabelValues(tenant, outcome).Inc()
	}
}
