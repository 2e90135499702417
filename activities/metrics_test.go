package activities

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestOutcomesAreCountedAfterCommit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.acts.Metrics = NewMetrics(prometheus.NewRegistry())

	ref, _ := h.process("M-1")
	h.must(nil, h.acts.CompleteMessage, ref)
	require.Equal(t, 1.0, testutil.ToFloat64(h.acts.Metrics.Outcomes.WithLabelValues(tenant, "processed")))

	other := h.start(h.insertMessage("M-2", fixture(t)))
	h.must(nil, h.acts.FailMessage, FailInput{MessageRef: other, ErrorCode: "X", Detail: "d"})
	h.must(nil, h.acts.FailMessage, FailInput{MessageRef: other, ErrorCode: "X", Detail: "d", DeadLetter: true})
	require.Equal(t, 1.0, testutil.ToFloat64(h.acts.Metrics.Outcomes.WithLabelValues(tenant, "failed")))
	require.Equal(t, 1.0, testutil.ToFloat64(h.acts.Metrics.Outcomes.WithLabelValues(tenant, "dead_lettered")))

	// A refused transaction counts nothing.
	h.refuseEvents("true")
	third := h.start(h.insertMessage("M-3", fixture(t)))
	_, err := h.env.ExecuteActivity(h.acts.FailMessage, FailInput{MessageRef: third, ErrorCode: "X", Detail: "d"})
	require.Error(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(h.acts.Metrics.Outcomes.WithLabelValues(tenant, "failed")))
}
