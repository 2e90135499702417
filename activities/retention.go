package activities

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/nhp/interop/db"
)

// PruneProcessed deletes processed messages whose processing finished before cutoff, in
// batches, and returns how many it deleted. Failed and dead-lettered messages are kept: they
// are what support staff still have to act on; so is an original that a flagged duplicate
// points at.
func (a *Activities) PruneProcessed(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 || batch > math.MaxInt32 {
		return 0, fmt.Errorf("prune processed messages: batch %d is not 1..%d", batch, math.MaxInt32)
	}
	maxRows := int32(batch)
	var total int64
	for {
		var n int64
		err := db.InTx(ctx, a.Pool, func(q *db.Queries) error {
			if err := q.AllowPurge(ctx); err != nil {
				return fmt.Errorf("allow purge: %w", err)
			}
			var err error
			n, err = q.Hl7MessagePruneProcessed(ctx, db.Hl7MessagePruneProcessedParams{ProcessedBefore: &cutoff, MaxRows: maxRows})
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune processed messages: %w", err)
		}
		total += n
		if n < int64(batch) || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}
