package gossip

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// BenchmarkConvergence measures, with DefaultConfig timing and n members in
// this process (each on its own 127.77.x.y, port 0):
//
//	s/converge: from all n joining one seed at once until every member's
//	            Handler has seen every other come up;
//	s/failure:  from one member's Shutdown (no Leave) until every other
//	            member's Handler has seen it down;
//	false-downs/op: MemberDown calls for live members (flapping), summed
//	            over all members.
//
// One iteration builds a cluster and takes seconds; run with -benchtime=1x
// (or Nx). Each member holds one TCP listener and one UDP socket, so 128
// members need ~260 file descriptors plus a few for push/pull in flight.
func BenchmarkConvergence(b *testing.B) {
	if testing.Short() {
		b.Skip("builds whole clusters; not in -short")
	}
	for _, n := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			var conv, fail time.Duration
			iters, alarms := 0, 0
			for b.Loop() {
				c, f, a := convergeOnce(b, n)
				conv += c
				fail += f
				alarms += a
				iters++
			}
			b.ReportMetric(conv.Seconds()/float64(iters), "s/converge")
			b.ReportMetric(fail.Seconds()/float64(iters), "s/failure")
			b.ReportMetric(float64(alarms)/float64(iters), "false-downs/op")
		})
	}
}

// countingHandler closes full when it has seen want members up, and gone
// when it has seen victim go down. Any other MemberDown is a false alarm
// (a live member declared failed), counted in downs.
type countingHandler struct {
	mu       sync.Mutex
	up       map[string]bool
	want     int
	full     chan struct{}
	victim   string
	gone     chan struct{}
	goneOnce sync.Once
	downs    int // MemberDown calls, the victim's included
}

func newCountingHandler(want int, victim string) *countingHandler {
	return &countingHandler{up: make(map[string]bool), want: want, full: make(chan struct{}), victim: victim, gone: make(chan struct{})}
}

func (h *countingHandler) MemberUp(m Member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up[m.Name] {
		h.up[m.Name] = true
		if len(h.up) == h.want {
			close(h.full)
		}
	}
}

func (h *countingHandler) MemberUpdate(Member) {}

func (h *countingHandler) MemberDown(m Member) {
	h.mu.Lock()
	h.downs++
	h.mu.Unlock()
	if m.Name == h.victim {
		h.goneOnce.Do(func() { close(h.gone) })
	}
}

func convergeOnce(b *testing.B, n int) (converge, failure time.Duration, falseAlarms int) {
	b.Helper()
	const timeout = 3 * time.Minute
	victim := fmt.Sprintf("m%03d", n-1)
	gs := make([]*Gossip, n)
	hs := make([]*countingHandler, n)
	level := slog.LevelError + 4 // quiet; VXSWITCH_BENCH_LOG=debug|info|warn shows the members' logs
	_ = level.UnmarshalText([]byte(os.Getenv("VXSWITCH_BENCH_LOG")))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	defer func() {
		var wg sync.WaitGroup
		for _, g := range gs {
			if g != nil {
				wg.Go(func() { g.Shutdown() })
			}
		}
		wg.Wait()
	}()
	for i := range n {
		cfg := testConfig(fmt.Sprintf("m%03d", i), 7)
		cfg.Logger = logger.With("self", cfg.NodeName)
		hs[i] = newCountingHandler(n-1, victim)
		g, err := Start(cfg, hs[i])
		if err != nil {
			b.Fatalf("member %d of %d: %v", i, n, err)
		}
		gs[i] = g
	}
	seed := []string{gs[0].Local().Addr.String()}

	start := time.Now()
	var wg sync.WaitGroup
	for _, g := range gs[1:] {
		wg.Go(func() {
			if _, err := g.Join(seed); err != nil {
				b.Errorf("%s: %v", g.name, err)
			}
		})
	}
	wg.Wait()
	deadline := time.After(timeout)
	for i, h := range hs {
		select {
		case <-h.full:
		case <-deadline:
			h.mu.Lock()
			got := len(h.up)
			h.mu.Unlock()
			b.Fatalf("%d members: member %d knows %d others after %v", n, i, got, timeout)
		}
	}
	converge = time.Since(start)

	start = time.Now()
	gs[n-1].Shutdown()
	for i, h := range hs[:n-1] {
		select {
		case <-h.gone:
		case <-deadline:
			b.Fatalf("%d members: member %d never saw %s fail", n, i, victim)
		}
	}
	failure = time.Since(start)
	for _, h := range hs[:n-1] {
		h.mu.Lock()
		falseAlarms += h.downs - 1
		h.mu.Unlock()
	}
	return converge, failure, falseAlarms
}
