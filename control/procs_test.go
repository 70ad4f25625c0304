package control

import (
	"testing"
	"time"
)

func TestProcs(t *testing.T) {
	for _, tc := range []struct {
		workers int
		poll    time.Duration
		limit   int
		want    int
	}{
		{1, 0, 8, 1},
		{0, 0, 8, 1},
		{2, 0, 8, 2},
		{1, 20 * time.Millisecond, 8, 1},
		{4, time.Millisecond, 8, 4},
		{16, 0, 2, 2},
		{3, time.Millisecond, 2, 2},
		{1, 0, 0, 1},
	} {
		cfg := DefaultConfig()
		cfg.Workers, cfg.BusyPoll = tc.workers, tc.poll
		if got := Procs(cfg, tc.limit); got != tc.want {
			t.Errorf("workers %d, busy-poll %v, limit %d: Procs = %d, want %d", tc.workers, tc.poll, tc.limit, got, tc.want)
		}
	}
}
