package main

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/nhp/interop/internal/config"
	"github.com/nhp/interop/worker"
)

type replayCmd struct {
	WorkflowID []string `name:"workflow-id" help:"Fetch these runs' histories from Temporal (TEMPORAL_ADDRESS) and replay them."`
	Files      []string `arg:"" optional:"" type:"existingfile" help:"Workflow history JSON files (as exported by the Temporal UI or CLI)."`
}

// Run replays histories against this build's workflow code: a non-determinism error here means
// deploying this build would break runs that are in flight.
func (r replayCmd) Run(ctx context.Context, cfg *config.Config) error {
	if len(r.Files) == 0 && len(r.WorkflowID) == 0 {
		return errors.New("give history files or --workflow-id")
	}
	failed := 0
	for _, f := range r.Files {
		rp := sdkworker.NewWorkflowReplayer()
		worker.RegisterWorkflows(rp)
		if err := rp.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			failed++
			fmt.Printf("FAIL\t%s\t%v\n", f, err)
			continue
		}
		fmt.Printf("ok\t%s\n", f)
	}
	if len(r.WorkflowID) > 0 {
		c := *cfg
		tc, err := dialTemporal(ctx, client.Options{HostPort: temporalAddress(c), Namespace: c.Temporal.Namespace}, newLogger(c), nil)
		if err != nil {
			return err
		}
		defer tc.Close()
		for _, id := range r.WorkflowID {
			iter := tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			hist := &historypb.History{}
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					return fmt.Errorf("fetch history of %s: %w", id, err)
				}
				hist.Events = append(hist.Events, ev)
			}
			rp := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(rp)
			if err := rp.ReplayWorkflowHistory(nil, hist); err != nil {
				failed++
				fmt.Printf("FAIL\t%s\t%v\n", id, err)
				continue
			}
			fmt.Printf("ok\t%s\n", id)
		}
	}
	if failed > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d histories do not replay with this build", failed)}
	}
	return nil
}
