package fdb

import (
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"
)

// scenario is a sequence of calls on a fresh table and what it must hold
// afterwards: the whole Entries snapshot (LastSeen of static entries, which
// comes from the real clock, zeroed), Stats, and PortStats of some ports.
type scenario struct {
	name  string
	size  int
	run   func(tb *Table)
	want  []Entry
	stats Stats // Capacity is filled in from size
	ports map[PortID]PortStats
}

func runScenarios(t *testing.T, cases []scenario) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{Size: tc.size, Aging: 10 * time.Second})
			tc.run(tb)
			checkInvariants(t, tb)
			got := tb.Entries(nil)
			for i := range got {
				if got[i].Static {
					got[i].LastSeen = 0
				}
			}
			if tc.want == nil {
				tc.want = []Entry{}
			}
			if len(got) == 0 {
				got = []Entry{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, tc.want)
			}
			tc.stats.Capacity = tc.size
			if got := tb.Stats(); got != tc.stats {
				t.Errorf("stats:\n got %+v\nwant %+v", got, tc.stats)
			}
			for p, want := range tc.ports {
				if got := tb.PortStats(p); got != want {
					t.Errorf("PortStats(%d) = %+v, want %+v", p, got, want)
				}
			}
		})
	}
}

func learned(k Key, d Dest, lastSeen int64) Entry { return Entry{Key: k, Dest: d, LastSeen: lastSeen} }
func static(k Key, d Dest) Entry                  { return Entry{Key: k, Dest: d, Static: true} }

func mustStatic(tb *Table, k Key, d Dest) {
	if err := tb.AddStatic(k, d); err != nil {
		panic(err)
	}
}

func TestLearn(t *testing.T) {
	mcast := Key{VLAN: 7, MAC: MAC{0x01, 0x00, 0x5e, 0, 0, 1}}
	runScenarios(t, []scenario{{
		name:  "new MAC",
		size:  4,
		run:   func(tb *Table) { tb.Learn(key(7, 1), port(1), 1*sec) },
		want:  []Entry{learned(key(7, 1), port(1), 1*sec)},
		stats: Stats{Entries: 1, Learned: 1},
		ports: map[PortID]PortStats{1: {Entries: 1}},
	}, {
		name: "same MAC in two VLANs is two entries",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(8, 1), port(2), 1*sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 1*sec), learned(key(8, 1), port(2), 1*sec)},
		stats: Stats{Entries: 2, Learned: 2},
	}, {
		name: "seen again in the same second: no write",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 1), port(1), 1*sec+999e6)
		},
		want:  []Entry{learned(key(7, 1), port(1), 1*sec)},
		stats: Stats{Entries: 1, Learned: 1},
	}, {
		name: "seen again in a later second: refreshed",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec+999e6)
			tb.Learn(key(7, 1), port(1), 2*sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 2*sec)},
		stats: Stats{Entries: 1, Learned: 1},
	}, {
		name: "multicast and broadcast sources are not learned",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(mcast, port(1), 1*sec)
			tb.Learn(Key{VLAN: 7, MAC: Broadcast}, port(1), 1*sec)
			tb.LearnBatch([]LearnReq{{Key: mcast, Dest: port(2)}}, 1*sec)
		},
	}, {
		name: "NoPort is not learned",
		size: 4,
		run:  func(tb *Table) { tb.Learn(key(7, 1), port(NoPort), 1*sec) },
	}, {
		name: "move to another port is counted on the new port",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 1), port(2), 1*sec+5e8) // same second: still a move
		},
		want:  []Entry{learned(key(7, 1), port(2), 1*sec+5e8)},
		stats: Stats{Entries: 1, Learned: 1, Moves: 1},
		ports: map[PortID]PortStats{1: {}, 2: {Entries: 1, Moves: 1}},
	}, {
		name: "move between VTEPs of the tunnel is a move",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), tun(9, "192.0.2.1"), 1*sec)
			tb.Learn(key(7, 1), tun(9, "192.0.2.2"), 2*sec)
			tb.Learn(key(7, 1), port(3), 3*sec)
		},
		want:  []Entry{learned(key(7, 1), port(3), 3*sec)},
		stats: Stats{Entries: 1, Learned: 1, Moves: 2},
		ports: map[PortID]PortStats{9: {Moves: 1}, 3: {Entries: 1, Moves: 1}},
	}, {
		name: "static entry is not moved or refreshed by traffic",
		size: 4,
		run: func(tb *Table) {
			mustStatic(tb, key(7, 1), port(1))
			tb.Learn(key(7, 1), port(2), 1*sec)
			tb.LearnBatch([]LearnReq{{Key: key(7, 1), Dest: port(1)}}, 5*sec)
		},
		want:  []Entry{static(key(7, 1), port(1))},
		stats: Stats{Entries: 1, Static: 1},
		ports: map[PortID]PortStats{1: {Entries: 1}, 2: {}},
	}, {
		name: "LearnBatch re-checks: duplicates learned once, stale requests dropped",
		size: 4,
		run: func(tb *Table) {
			tb.LearnBatch([]LearnReq{
				{Key: key(7, 1), Dest: port(1)},
				{Key: key(7, 1), Dest: port(1)},
				{Key: key(7, 2), Dest: port(1)},
			}, 1*sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 1*sec), learned(key(7, 2), port(1), 1*sec)},
		stats: Stats{Entries: 2, Learned: 2},
	}})
}

func TestNeedsLearn(t *testing.T) {
	tb := New(Config{Size: 8})
	tb.Learn(key(7, 1), port(1), 5*sec+2e8)
	tb.Learn(key(7, 3), tun(9, "192.0.2.1"), 5*sec+2e8)
	mustStatic(tb, key(7, 2), port(1))
	for _, tc := range []struct {
		name string
		k    Key
		d    Dest
		now  int64
		want bool
	}{
		{"absent", key(7, 4), port(1), 5 * sec, true},
		{"absent in this VLAN", key(8, 1), port(1), 5 * sec, true},
		{"same port same second", key(7, 1), port(1), 5*sec + 9e8, false},
		{"same port earlier time", key(7, 1), port(1), 5 * sec, false},
		{"same port next second", key(7, 1), port(1), 6 * sec, true},
		{"other port (move)", key(7, 1), port(2), 5*sec + 3e8, true},
		{"tunnel, same VTEP same second", key(7, 3), tun(9, "192.0.2.1"), 5*sec + 3e8, false},
		{"tunnel, other VTEP (move)", key(7, 3), tun(9, "192.0.2.2"), 5*sec + 3e8, true},
		{"tunnel entry seen on a local port (move)", key(7, 3), port(9), 5*sec + 3e8, true},
		{"static, other port", key(7, 2), port(2), 9 * sec, false},
		{"static, same port later", key(7, 2), port(1), 9 * sec, false},
		{"multicast", Key{VLAN: 7, MAC: MAC{0x33, 0x33, 0, 0, 0, 1}}, port(1), 5 * sec, false},
		{"broadcast", Key{VLAN: 7, MAC: Broadcast}, port(1), 5 * sec, false},
		{"NoPort", key(7, 4), port(NoPort), 5 * sec, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb.BeginRead()
			got := tb.NeedsLearn(tc.k, tc.d, tc.now)
			tb.EndRead()
			if got != tc.want {
				t.Errorf("NeedsLearn(%v, %+v, %d) = %v, want %v", tc.k, tc.d, tc.now, got, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	tb := New(Config{Size: 8})
	tb.Learn(key(7, 1), tun(9, "2001:db8::1"), 1*sec)
	mustStatic(tb, key(7, 2), port(3))
	for _, tc := range []struct {
		name string
		k    Key
		want Dest
		ok   bool
	}{
		{"learned behind a VTEP", key(7, 1), tun(9, "2001:db8::1"), true},
		{"static", key(7, 2), port(3), true},
		{"other VLAN", key(8, 1), Dest{}, false},
		{"absent", key(7, 3), Dest{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tb.Lookup(tc.k)
			tb.BeginRead()
			got2, ok2 := tb.LookupLocked(tc.k)
			tb.EndRead()
			if got != tc.want || ok != tc.ok || got2 != got || ok2 != ok {
				t.Errorf("Lookup = %+v, %v; LookupLocked = %+v, %v; want %+v, %v", got, ok, got2, ok2, tc.want, tc.ok)
			}
		})
	}
}

func TestMoveLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		moves int   // moves of one MAC between ports 1 and 2, all at 1 s
		now   int64 // then one more move at this time (-1: at 0.5 s)
		want  []string
	}{{
		name:  "one move",
		moves: 1,
		want:  []string{"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=1 to=2"},
	}, {
		name:  "tunnel move carries the VTEPs",
		moves: -1,
		want:  []string{"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=9 to=9 from_vtep=192.0.2.1 to_vtep=192.0.2.2"},
	}, {
		name:  "a batch from the previous second counts against the current one",
		moves: 10,
		now:   -1,
		want: repeat(5, []string{
			"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=1 to=2",
			"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=2 to=1",
		}),
	}, {
		name:  "at most 10 lines a second, then the count of those not logged",
		moves: 25,
		now:   1 * sec,
		want: append(repeat(5, []string{
			"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=1 to=2",
			"fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=2 to=1",
		}), "fdb: MAC moved mac=02:00:00:00:00:01 vlan=7 from=2 to=1 suppressed=15"),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &logRecorder{}
			tb := New(Config{Size: 4, Logger: slog.New(rec)})
			if tc.moves < 0 {
				tb.Learn(key(7, 1), tun(9, "192.0.2.1"), 0)
				tb.Learn(key(7, 1), tun(9, "192.0.2.2"), 0)
			} else {
				tb.Learn(key(7, 1), port(1), sec)
				for i := range tc.moves {
					tb.LearnBatch([]LearnReq{{Key: key(7, 1), Dest: port(PortID(2 - i%2))}}, sec)
				}
				switch {
				case tc.now > 0:
					tb.Learn(key(7, 1), port(PortID(2-tc.moves%2)), sec+tc.now)
				case tc.now < 0:
					tb.Learn(key(7, 1), port(PortID(2-tc.moves%2)), sec/2)
				}
			}
			if !reflect.DeepEqual(rec.lines, tc.want) {
				t.Errorf("log:\n got %q\nwant %q", rec.lines, tc.want)
			}
		})
	}
}

func repeat(n int, s []string) []string {
	var out []string
	for range n {
		out = append(out, s...)
	}
	return out
}

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
