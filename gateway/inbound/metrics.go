package inbound

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the inbound path's Prometheus collectors.
type Metrics struct {
	// MLLPMessages counts inbound frames by connector and the ACK code answered.
	MLLPMessages *prometheus.CounterVec
	// MLLPAckSeconds is the time from a frame's arrival to its ACK being ready.
	MLLPAckSeconds *prometheus.HistogramVec
	// MLLPFrameErrors counts frames that could not be read (junk, oversize, incomplete).
	MLLPFrameErrors *prometheus.CounterVec
	// WorkflowStarts counts InboundHL7 starts by outcome (started, existing, error, refused,
	// deferred).
	WorkflowStarts *prometheus.CounterVec
	// Reconciled counts messages the reconciler settled without their run, by outcome
	// (restarted, processed, unmapped, dead_lettered).
	Reconciled *prometheus.CounterVec
	// MLLPListenerUp is 1 while an active connector's listener is open in this process, 0
	// while it cannot open (its port taken, its host not on this machine); the series goes
	// when the connector stops being active.
	MLLPListenerUp *prometheus.GaugeVec
	// MLLPListenFailures counts failed attempts to open a connector's listener (one per
	// reconciliation while it fails).
	MLLPListenFailures *prometheus.CounterVec
	// MLLPRejectedDropped counts rejected input not kept for audit because the connector's
	// storage budget was spent (see Ingestor.RejectedPerMinute).
	MLLPRejectedDropped *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		MLLPMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_mllp_messages_total", Help: "Inbound MLLP messages by connector and ACK code (AA, CA, AR, AE, CR, CE, duplicate).",
		}, []string{"connector", "ack_code"}),
		MLLPAckSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "interop_mllp_ack_seconds", Help: "Time from frame read to ACK ready, including the durable insert.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"connector"}),
		MLLPFrameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_mllp_frame_errors_total", Help: "MLLP frames that could not be read, by connector and reason.",
		}, []string{"connector", "reason"}),
		WorkflowStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_workflow_starts_total", Help: "InboundHL7 workflow starts by outcome.",
		}, []string{"outcome"}),
		Reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_hl7_reconciled_total", Help: "Inbound messages settled by the reconciler because their run was closed or missing, by outcome.",
		}, []string{"outcome"}),
		MLLPListenerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "interop_mllp_listener_up", Help: "1 while an active connector's MLLP listener is open in this process, 0 while it fails to open.",
		}, []string{"connector", "connector_id"}),
		MLLPListenFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_mllp_listen_failures_total", Help: "Failed attempts to open a connector's MLLP listener.",
		}, []string{"connector", "connector_id"}),
		MLLPRejectedDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interop_mllp_rejected_not_stored_total", Help: "Rejected input not kept for audit: the connector's storage budget per minute was spent.",
		}, []string{"connector"}),
	}
	reg.MustRegister(m.MLLPMessages, m.MLLPAckSeconds, m.MLLPFrameErrors, m.WorkflowStarts, m.Reconciled,
		m.MLLPListenerUp, m.MLLPListenFailures, m.MLLPRejectedDropped)
	return m
}
