package fdb

import (
	"sync"
	"testing"
)

// TestConcurrent runs the hot path (read-locked batches, then LearnBatch)
// from several goroutines alongside control calls, for the race detector,
// and checks the table's structure afterwards.
func TestConcurrent(t *testing.T) {
	tb := New(Config{Size: 256})
	tb.SetPortLimit(3, 20)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var reqs []LearnReq
			for round := range 200 {
				now := int64(round) * sec / 10
				reqs = reqs[:0]
				tb.BeginRead()
				for i := range 64 {
					k := key(uint16(i%3), (g*7919+round*64+i)%512)
					d := benchDests[(g+i)%len(benchDests)]
					tb.LookupLocked(k)
					if tb.NeedsLearn(k, d, now) {
						reqs = append(reqs, LearnReq{Key: k, Dest: d})
					}
				}
				tb.EndRead()
				tb.LearnBatch(reqs, now)
			}
		})
	}
	wg.Go(func() {
		for round := range 200 {
			now := int64(round) * sec / 10
			switch round % 5 {
			case 0:
				tb.Age(now)
			case 1:
				tb.Flush(Filter{HasVLAN: true, VLAN: 1, Port: NoPort})
			case 2:
				_ = tb.AddStatic(key(0, round), port(2))
			case 3:
				tb.PurgeVTEP(benchDests[8+round%8].VTEP)
			case 4:
				tb.Entries(nil)
				tb.Stats()
				tb.PortStats(3)
			}
		}
	})
	wg.Wait()
	checkInvariants(t, tb)
	if st := tb.Stats(); st.Learned == 0 || st.Entries > 256 {
		t.Errorf("stats after the run: %+v", st)
	}
}
