package main

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// The soak's verdict rests on its messages: the ordinary and hostile ones must map, the
// poisons must be refused by the mapping (so the pipeline dead-letters them), and every one
// must carry the MSH-10 the soak records.
func TestFeedMessages(t *testing.T) {
	f := newFeed(3)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	type gen struct {
		k   kind
		id  string
		msg []byte
	}
	var msgs []gen
	seen := map[kind]int{}
	for range 200 {
		k, id, m := f.next(now)
		msgs = append(msgs, gen{k, id, m})
		seen[k]++
	}
	for n := range 4 {
		k, id, m := f.poison(now, n)
		msgs = append(msgs, gen{k, id, m})
		k, id, m = f.hostile(now, n)
		msgs = append(msgs, gen{k, id, m})
		seen[k]++
	}
	for _, k := range []kind{kindA01, kindA08, kindORU, kindLongID, kindUTF8ID} {
		require.Positive(t, seen[k], "the feed generates %s", k)
	}
	ids := map[string]bool{}
	for _, g := range msgs {
		require.False(t, ids[g.id], "MSH-10 %s is unique", g.id)
		ids[g.id] = true
		h, err := hl7v2.ReadHeader(g.msg)
		require.NoError(t, err, g.id)
		require.Equal(t, g.id, h.ControlID)
		require.Equal(t, "SOAK-S3", h.SendingApplication.String())
		m, err := hl7v2.Parse(g.msg)
		require.NoError(t, err, g.id)
		b, err := mapping.Map(m)
		if g.k.expectDead() {
			require.True(t, errors.Is(err, mapping.ErrUnmappable), "%s: %v", g.id, err)
			continue
		}
		require.NoError(t, err, "%s (%s)", g.id, g.k)
		require.NotEmpty(t, b.Entry, g.id)
	}
}
