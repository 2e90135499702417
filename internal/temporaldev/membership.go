package temporaldev

import (
	"fmt"

	"go.temporal.io/server/common/log"
	sqltool "go.temporal.io/server/tools/sql"
)

// forgetPreviousMembers deletes the membership rows left by earlier runs.
//
// Every run picks new internal ports, and the services bootstrap their
// membership ring from hosts that heartbeated in the last 20 seconds. After a
// quick restart those are the dead hosts of the previous run, which nobody
// can join, so the ring stays broken until MaxJoinDuration expires and new
// work stalls for about a minute. This server is the only member of its
// cluster, so no row can belong to a live host we would want to keep.
func forgetPreviousMembers(t pgTarget, coreDB string, logger log.Logger) error {
	conn, err := sqltool.NewConnection(t.sqlConfig(coreDB), logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("delete stale cluster members: %w", err)
	}
	return nil
}
