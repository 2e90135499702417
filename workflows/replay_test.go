package workflows_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/nhp/interop/worker"
)

// TestReplay replays every committed workflow history against today's workflow code. A change
// that would make a running workflow non-deterministic fails here, before it is deployed.
// Record a new history with: go test ./cmd/interop -run TestDevEndToEnd -record-history <name>
func TestReplay(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories: the replay guard would be vacuous")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

func TestHistoriesAreNotEmpty(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Greater(t, len(b), 1000, "%s looks truncated", f)
	}
}
