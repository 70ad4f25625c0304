package fdb

import (
	"runtime"
	"testing"
)

// TestAllocs holds the package's promise: look-ups, learn checks, refreshes,
// learns and evictions allocate nothing once ports and VTEPs have been seen.
func TestAllocs(t *testing.T) {
	const batch = 16
	const runs = 2 * (100 + 1) // AllocsPerRun and totalAllocs each warm up once
	vteps := []Dest{tun(9, "192.0.2.1"), tun(9, "192.0.2.2"), tun(9, "2001:db8::3")}

	// fresh returns a table of size with each of ports 0-3 and the VTEPs
	// seen once, and a function that makes the next batch of new keys.
	fresh := func(size int) (*Table, func(d func(i int) Dest) []LearnReq) {
		tb := New(Config{Size: size})
		for i, d := range append([]Dest{port(0), port(1), port(2), port(3)}, vteps...) {
			tb.Learn(key(4000, i), d, 0)
		}
		next := 0
		reqs := make([]LearnReq, batch)
		return tb, func(d func(i int) Dest) []LearnReq {
			for i := range reqs {
				reqs[i] = LearnReq{Key: key(1, next), Dest: d(next)}
				next++
			}
			return reqs
		}
	}
	onPorts := func(i int) Dest { return port(PortID(i % 4)) }
	onVTEPs := func(i int) Dest { return vteps[i%len(vteps)] }

	for _, tc := range []struct {
		name string
		fn   func(t *testing.T) func() // set-up, returning the measured call
	}{
		{"LookupLocked", func(t *testing.T) func() {
			tb, next := fresh(1024)
			tb.LearnBatch(next(onVTEPs), sec)
			return func() {
				tb.BeginRead()
				for i := range batch {
					tb.LookupLocked(key(1, i))
					tb.LookupLocked(key(2, i)) // miss
				}
				tb.EndRead()
			}
		}},
		{"NeedsLearn", func(t *testing.T) func() {
			tb, next := fresh(1024)
			tb.LearnBatch(next(onVTEPs), sec)
			return func() {
				tb.BeginRead()
				for i := range batch {
					tb.NeedsLearn(key(1, i), onVTEPs(i), sec)   // known
					tb.NeedsLearn(key(1, i), onPorts(i), sec)   // move
					tb.NeedsLearn(key(1, i), onVTEPs(i), 2*sec) // refresh
					tb.NeedsLearn(key(2, i), onVTEPs(i), sec)   // new
				}
				tb.EndRead()
			}
		}},
		{"LearnBatch of new MACs with room", func(t *testing.T) func() {
			tb, next := fresh(runs*batch + 16)
			return func() { tb.LearnBatch(next(onPorts), sec) }
		}},
		{"LearnBatch of new MACs behind VTEPs with room", func(t *testing.T) func() {
			tb, next := fresh(runs*batch + 16)
			return func() { tb.LearnBatch(next(onVTEPs), sec) }
		}},
		{"Learn of a known MAC (refresh)", func(t *testing.T) func() {
			tb, next := fresh(1024)
			tb.LearnBatch(next(onVTEPs), sec)
			now := sec
			return func() {
				now += sec
				for i := range batch {
					tb.Learn(key(1, i), onVTEPs(i), now)
				}
			}
		}},
		{"learn with eviction when full", func(t *testing.T) func() {
			tb, next := fresh(4 * batch)
			for range 4 {
				tb.LearnBatch(next(onPorts), sec)
			}
			return func() { tb.LearnBatch(next(onPorts), 2*sec) }
		}},
		{"learn with eviction behind VTEPs when full", func(t *testing.T) func() {
			tb, next := fresh(4 * batch)
			for range 4 {
				tb.LearnBatch(next(onVTEPs), sec)
			}
			return func() { tb.LearnBatch(next(onVTEPs), 2*sec) }
		}},
		{"learn at a port limit", func(t *testing.T) func() {
			tb, next := fresh(runs*batch + 16)
			tb.SetPortLimit(2, 3)
			return func() { tb.LearnBatch(next(func(int) Dest { return port(2) }), sec) }
		}},
		{"moves, logger discarding", func(t *testing.T) func() {
			tb, next := fresh(1024)
			reqs := next(onPorts)
			tb.LearnBatch(reqs, sec)
			return func() {
				for i := range reqs {
					reqs[i].Dest.Port = (reqs[i].Dest.Port + 1) % 4
				}
				tb.LearnBatch(reqs, sec)
				if tb.moves == 0 {
					t.Fatal("no move")
				}
			}
		}},
		{"Age of expired entries", func(t *testing.T) func() {
			tb, next := fresh(runs*batch + 16)
			for j := range runs {
				tb.LearnBatch(next(onVTEPs), sec+int64(j)*1e6)
			}
			tb.SetAging(1e9)
			tb.Age(sec) // the set-up entries, seen at 0
			now := 2*sec - 1e6
			return func() {
				now += 1e6
				if tb.Age(now) != batch {
					t.Fatal("Age did not remove one batch")
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := tc.fn(t)
			if n := testing.AllocsPerRun(100, fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
			// AllocsPerRun rounds down, so a map growing once in 100
			// runs would pass; count every allocation as well.
			if n := totalAllocs(100, fn); n != 0 {
				t.Errorf("%d allocations in 100 runs, want 0", n)
			}
		})
	}
}

// totalAllocs is testing.AllocsPerRun without the rounding: the number of
// allocations in runs calls of fn, after one warm-up call.
func totalAllocs(runs int, fn func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fn()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}
