package activities

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the activities' Prometheus collectors; nil fields are not counted.
type Metrics struct {
	// Outcomes counts messages reaching processed, failed (a try failed, another will follow)
	// or dead_lettered, by tenant. Counted after the transaction commits; an activity retried
	// after a lost reply may count twice, so alert on rates, not exact totals.
	Outcomes *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_hl7_message_outcomes_total",
			Help: "Inbound messages reaching processed, failed or dead_lettered, by tenant.",
		}, []string{"tenant", "outcome"}),
	}
	reg.MustRegister(m.Outcomes)
	return m
}

func (a *Activities) countOutcome(tenant, outcome string) {
	if a.Metrics != nil && a.Metrics.Outcomes != nil {
		a.Metrics.Outcomes.WithLabelValues(tenant, outcome).Inc()
	}
}
