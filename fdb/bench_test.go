package fdb

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{{"1k", 1 << 10}, {"64k", 1 << 16}, {"1M", 1 << 20}}

// benchDests spread entries like a busy switch: 8 local ports and a tunnel
// (port 100) behind 8 VTEPs.
var benchDests = func() []Dest {
	var ds []Dest
	for p := range 8 {
		ds = append(ds, port(PortID(p)))
	}
	for v := range 8 {
		ds = append(ds, Dest{Port: 100, VTEP: netip.AddrFrom4([4]byte{192, 0, 2, byte(v + 1)})})
	}
	return ds
}()

// benchTable returns a full table of n entries and its keys in random
// order with their Dests. Tables are cached per size and use: building a
// 1M-entry table takes a while and the benchmark runs several times.
func benchTable(b *testing.B, use string, n int) (*Table, []LearnReq) {
	type cached struct {
		tb   *Table
		reqs []LearnReq
	}
	ck := fmt.Sprint(use, n)
	if c, ok := benchCache[ck]; ok {
		return c.tb, c.reqs
	}
	b.StopTimer()
	defer b.StartTimer()
	tb := New(Config{Size: n})
	reqs := make([]LearnReq, n)
	for i := range reqs {
		reqs[i] = LearnReq{Key: key(uint16(1+i%4), i), Dest: benchDests[i%len(benchDests)]}
	}
	for i := 0; i < n; i += 64 {
		tb.LearnBatch(reqs[i:min(i+64, n)], 1*sec)
	}
	if tb.Len() != n {
		b.Fatalf("filled %d of %d", tb.Len(), n)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	benchCache[ck] = cached{tb, reqs}
	return tb, reqs
}

// benchNext numbers the new MACs of the evict benchmark, past the keys
// the tables were filled with.
var benchNext = 1 << 24

var benchCache = map[string]struct {
	tb   *Table
	reqs []LearnReq
}{}

var sinkDest Dest

// benchNow is the benchmarks' clock. It only moves forward, also across
// the repeated runs of a benchmark on a cached table, or refreshes would
// see entries from the future and do nothing.
var benchNow = 10 * sec

// BenchmarkLookup: one op is one LookupLocked of a random known key, with
// the read lock taken once per batch of 64 as the dataplane does.
func BenchmarkLookup(b *testing.B) {
	for _, s := range benchSizes {
		b.Run("entries="+s.name, func(b *testing.B) {
			tb, reqs := benchTable(b, "lookup", s.n)
			mask := s.n - 1
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				tb.BeginRead()
				for end := min(i+64, b.N); i < end; i++ {
					d, _ := tb.LookupLocked(reqs[i&mask].Key)
					sinkDest = d
				}
				tb.EndRead()
			}
		})
	}
}

// BenchmarkLearn: one op is one learn request applied by LearnBatch in
// batches of 64. refresh: a known MAC seen in a new second (moved to its
// port's LRU head). evict: a new MAC into a full table, which evicts the
// biggest port's least recently seen entry.
func BenchmarkLearn(b *testing.B) {
	for _, s := range benchSizes {
		b.Run("refresh/entries="+s.name, func(b *testing.B) {
			tb, reqs := benchTable(b, "refresh", s.n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 64 {
				j := i % s.n
				if j == 0 {
					benchNow += sec // every pass over the keys is in a new second
				}
				tb.LearnBatch(reqs[j:min(j+64, j+b.N-i)], benchNow)
			}
		})
	}
	for _, s := range benchSizes {
		b.Run("evict/entries="+s.name, func(b *testing.B) {
			tb, _ := benchTable(b, "evict", s.n)
			batch := make([]LearnReq, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(batch) {
				batch = batch[:min(64, b.N-i)]
				for j := range batch {
					batch[j] = LearnReq{Key: key(1, benchNext), Dest: benchDests[benchNext%len(benchDests)]}
					benchNext++
				}
				benchNow += 1e6
				tb.LearnBatch(batch, benchNow)
			}
			b.StopTimer()
			if st := tb.Stats(); st.Entries != s.n || st.Evictions < uint64(b.N) {
				b.Fatalf("table not kept full by eviction: %+v", st)
			}
		})
	}
}

// BenchmarkLookupParallel: LookupLocked from every P at once at 64k
// entries. batch=64 is the dataplane's pattern; batch=1 takes the read lock
// per lookup, to show what batching saves in contention on the lock word.
func BenchmarkLookupParallel(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			tb, reqs := benchTable(b, "lookup", 1<<16)
			mask := len(reqs) - 1
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(reqs))
				var d Dest
				for more := true; more; {
					tb.BeginRead()
					for range batch {
						if more = pb.Next(); !more {
							break
						}
						d, _ = tb.LookupLocked(reqs[i&mask].Key)
						i++
					}
					tb.EndRead()
				}
				_ = d
			})
		})
	}
}
