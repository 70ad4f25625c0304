package fdb

import (
	"errors"
	"testing"
	"time"
)

func TestAge(t *testing.T) {
	// Aging is 10 s (runScenarios). k1 seen at 0 s, k2 at 5 s, k3 static.
	setup := func(tb *Table) {
		tb.Learn(key(7, 1), port(1), 0)
		tb.Learn(key(7, 2), port(2), 5*sec)
		mustStatic(tb, key(7, 3), port(1))
	}
	ageAt := func(now int64, want int) func(*Table) {
		return func(tb *Table) {
			setup(tb)
			if got := tb.Age(now); got != want {
				panic("Age returned wrong count")
			}
		}
	}
	runScenarios(t, []scenario{{
		name:  "nothing expired just before Aging",
		size:  4,
		run:   ageAt(10*sec-1, 0),
		want:  []Entry{learned(key(7, 1), port(1), 0), learned(key(7, 2), port(2), 5*sec), static(key(7, 3), port(1))},
		stats: Stats{Entries: 3, Static: 1, Learned: 2},
	}, {
		name:  "expired at exactly Aging",
		size:  4,
		run:   ageAt(10*sec, 1),
		want:  []Entry{learned(key(7, 2), port(2), 5*sec), static(key(7, 3), port(1))},
		stats: Stats{Entries: 2, Static: 1, Learned: 2, Aged: 1},
	}, {
		name:  "static entries never age",
		size:  4,
		run:   ageAt(1000*sec, 2),
		want:  []Entry{static(key(7, 3), port(1))},
		stats: Stats{Entries: 1, Static: 1, Learned: 2, Aged: 2},
		ports: map[PortID]PortStats{1: {Entries: 1}, 2: {}},
	}, {
		name: "a refresh postpones ageing",
		size: 4,
		run: func(tb *Table) {
			setup(tb)
			tb.Learn(key(7, 1), port(1), 8*sec)
			tb.Age(17 * sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 8*sec), static(key(7, 3), port(1))},
		stats: Stats{Entries: 2, Static: 1, Learned: 2, Aged: 1},
	}, {
		name: "a move postpones ageing",
		size: 4,
		run: func(tb *Table) {
			setup(tb)
			tb.Learn(key(7, 1), port(2), 8*sec)
			tb.Age(17 * sec)
		},
		want:  []Entry{learned(key(7, 1), port(2), 8*sec), static(key(7, 3), port(1))},
		stats: Stats{Entries: 2, Static: 1, Learned: 2, Moves: 1, Aged: 1},
	}, {
		name: "SetAging takes effect at the next Age",
		size: 4,
		run: func(tb *Table) {
			setup(tb)
			tb.SetAging(3 * time.Second)
			tb.Age(8 * sec)
		},
		want:  []Entry{static(key(7, 3), port(1))},
		stats: Stats{Entries: 1, Static: 1, Learned: 2, Aged: 2},
	}, {
		name: "an entry written out of clock order is stamped as the newest on its port",
		size: 8,
		run: func(tb *Table) {
			// Two batches read the clock at 2 s and 1 s and apply in
			// the other order; the second entry ages no sooner than the
			// first, and a fresher one on another port is not affected.
			tb.LearnBatch([]LearnReq{{Key: key(7, 1), Dest: port(1)}}, 2*sec)
			tb.LearnBatch([]LearnReq{{Key: key(7, 2), Dest: port(1)}, {Key: key(7, 3), Dest: port(2)}}, 1*sec)
			tb.Learn(key(7, 4), port(1), 3*sec)
			tb.Age(11 * sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 2*sec), learned(key(7, 2), port(1), 2*sec), learned(key(7, 4), port(1), 3*sec)},
		stats: Stats{Entries: 3, Learned: 4, Aged: 1},
	}})
}

func TestDefaults(t *testing.T) {
	tb := New(Config{})
	if got := tb.Stats().Capacity; got != DefaultSize {
		t.Errorf("Capacity = %d, want %d", got, DefaultSize)
	}
	tb.Learn(key(7, 1), port(1), 0)
	if got := tb.Age(int64(DefaultAging) - 1); got != 0 {
		t.Errorf("Age just before DefaultAging removed %d, want 0", got)
	}
	if got := tb.Age(int64(DefaultAging)); got != 1 {
		t.Errorf("Age at DefaultAging removed %d, want 1", got)
	}
}

func TestEvict(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "full: the biggest port's least recently seen entry goes",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 4), port(2), sec/2) // oldest, but on the small port
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
			tb.Learn(key(7, 3), port(1), 3*sec)
			tb.Learn(key(7, 5), port(2), 4*sec)
		},
		want: []Entry{
			learned(key(7, 2), port(1), 2*sec), learned(key(7, 3), port(1), 3*sec),
			learned(key(7, 4), port(2), sec/2), learned(key(7, 5), port(2), 4*sec),
		},
		stats: Stats{Entries: 4, Learned: 5, Evictions: 1},
		ports: map[PortID]PortStats{1: {Entries: 2}, 2: {Entries: 2}},
	}, {
		name: "the tunnel counts as one port over all its VTEPs",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 0)
			tb.Learn(key(7, 2), tun(9, "192.0.2.1"), 1*sec)
			tb.Learn(key(7, 3), tun(9, "192.0.2.2"), 2*sec)
			tb.Learn(key(7, 4), tun(9, "192.0.2.3"), 3*sec)
			tb.Learn(key(7, 5), port(1), 4*sec)
		},
		want: []Entry{
			learned(key(7, 1), port(1), 0), learned(key(7, 3), tun(9, "192.0.2.2"), 2*sec),
			learned(key(7, 4), tun(9, "192.0.2.3"), 3*sec), learned(key(7, 5), port(1), 4*sec),
		},
		stats: Stats{Entries: 4, Learned: 5, Evictions: 1},
		ports: map[PortID]PortStats{1: {Entries: 2}, 9: {Entries: 2}},
	}, {
		name: "equal ports: the older tail goes",
		size: 4,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(2), 2*sec)
			tb.Learn(key(7, 2), port(1), 1*sec)
			tb.Learn(key(7, 3), port(2), 3*sec)
			tb.Learn(key(7, 4), port(1), 4*sec)
			tb.Learn(key(7, 5), port(3), 5*sec)
		},
		want: []Entry{
			learned(key(7, 1), port(2), 2*sec), learned(key(7, 3), port(2), 3*sec),
			learned(key(7, 4), port(1), 4*sec), learned(key(7, 5), port(3), 5*sec),
		},
		stats: Stats{Entries: 4, Learned: 5, Evictions: 1},
	}, {
		name: "equal ports, equal tails: the lower PortID goes",
		size: 2,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(2), 1*sec)
			tb.Learn(key(7, 2), port(1), 1*sec)
			tb.Learn(key(7, 3), port(3), 2*sec)
		},
		want:  []Entry{learned(key(7, 1), port(2), 1*sec), learned(key(7, 3), port(3), 2*sec)},
		stats: Stats{Entries: 2, Learned: 3, Evictions: 1},
	}, {
		name: "a refreshed entry is no longer the least recently seen",
		size: 3,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
			tb.Learn(key(7, 3), port(1), 3*sec)
			tb.Learn(key(7, 1), port(1), 4*sec)
			tb.Learn(key(7, 4), port(1), 5*sec)
		},
		want: []Entry{
			learned(key(7, 1), port(1), 4*sec), learned(key(7, 3), port(1), 3*sec), learned(key(7, 4), port(1), 5*sec),
		},
		stats: Stats{Entries: 3, Learned: 4, Evictions: 1},
	}, {
		name: "static entries are never evicted",
		size: 3,
		run: func(tb *Table) {
			mustStatic(tb, key(7, 1), port(1))
			mustStatic(tb, key(7, 2), port(1))
			tb.Learn(key(7, 3), port(2), 1*sec)
			tb.Learn(key(7, 4), port(1), 2*sec)
		},
		want:  []Entry{static(key(7, 1), port(1)), static(key(7, 2), port(1)), learned(key(7, 4), port(1), 2*sec)},
		stats: Stats{Entries: 3, Static: 2, Learned: 2, Evictions: 1},
	}, {
		name: "full of static entries: learning is refused and counted",
		size: 2,
		run: func(tb *Table) {
			mustStatic(tb, key(7, 1), port(1))
			mustStatic(tb, key(7, 2), port(1))
			tb.Learn(key(7, 3), port(2), 1*sec)
			tb.LearnBatch([]LearnReq{{Key: key(7, 4), Dest: port(1)}}, 1*sec)
		},
		want:  []Entry{static(key(7, 1), port(1)), static(key(7, 2), port(1))},
		stats: Stats{Entries: 2, Static: 2, Refused: 2},
	}, {
		name: "a static entry added to a full table evicts a learned one",
		size: 2,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
			mustStatic(tb, key(7, 3), port(2))
		},
		want:  []Entry{learned(key(7, 2), port(1), 2*sec), static(key(7, 3), port(2))},
		stats: Stats{Entries: 2, Static: 1, Learned: 2, Evictions: 1},
	}, {
		name: "a static entry replaces a learned one, without a move",
		size: 2,
		run: func(tb *Table) {
			tb.Learn(key(7, 1), tun(9, "192.0.2.1"), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
			mustStatic(tb, key(7, 1), port(2))
		},
		want:  []Entry{static(key(7, 1), port(2)), learned(key(7, 2), port(1), 2*sec)},
		stats: Stats{Entries: 2, Static: 1, Learned: 2},
		ports: map[PortID]PortStats{9: {}, 2: {Entries: 1}},
	}})
}

func TestAddStaticErrors(t *testing.T) {
	full := New(Config{Size: 1})
	mustStatic(full, key(7, 1), port(1))
	for _, tc := range []struct {
		name string
		tb   *Table
		k    Key
		d    Dest
		want error
	}{
		{"full of static entries", full, key(7, 2), port(1), ErrTableFull},
		{"replacing a static entry in a full table", full, key(7, 1), port(2), nil},
		{"multicast", New(Config{}), Key{VLAN: 7, MAC: Broadcast}, port(1), ErrMulticast},
		{"NoPort", New(Config{}), key(7, 1), port(NoPort), ErrNoPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.tb.AddStatic(tc.k, tc.d); !errors.Is(err, tc.want) {
				t.Errorf("AddStatic = %v, want %v", err, tc.want)
			}
			checkInvariants(t, tc.tb)
		})
	}
	if d, _ := full.Lookup(key(7, 1)); d != port(2) || full.Len() != 1 {
		t.Errorf("after replacing: Lookup = %+v, Len %d; want port 2, 1", d, full.Len())
	}
}

func TestPortLimit(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "a port at its limit evicts its own least recently seen entry",
		size: 8,
		run: func(tb *Table) {
			tb.SetPortLimit(1, 2)
			tb.Learn(key(7, 9), port(2), 0)
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
			tb.Learn(key(7, 3), port(1), 3*sec)
		},
		want: []Entry{
			learned(key(7, 2), port(1), 2*sec), learned(key(7, 3), port(1), 3*sec), learned(key(7, 9), port(2), 0),
		},
		stats: Stats{Entries: 3, Learned: 4, Evictions: 1},
	}, {
		name: "static entries do not count against the limit",
		size: 8,
		run: func(tb *Table) {
			tb.SetPortLimit(1, 1)
			mustStatic(tb, key(7, 1), port(1))
			tb.Learn(key(7, 2), port(1), 1*sec)
		},
		want:  []Entry{static(key(7, 1), port(1)), learned(key(7, 2), port(1), 1*sec)},
		stats: Stats{Entries: 2, Static: 1, Learned: 1},
		ports: map[PortID]PortStats{1: {Entries: 2}},
	}, {
		name: "lowering the limit evicts the oldest at once",
		size: 8,
		run: func(tb *Table) {
			for i := range 4 {
				tb.Learn(key(7, i), port(1), int64(i)*sec)
			}
			tb.SetPortLimit(1, 1)
		},
		want:  []Entry{learned(key(7, 3), port(1), 3*sec)},
		stats: Stats{Entries: 1, Learned: 4, Evictions: 3},
	}, {
		name: "a move onto a port at its limit evicts that port's oldest",
		size: 8,
		run: func(tb *Table) {
			tb.SetPortLimit(2, 2)
			tb.Learn(key(7, 1), port(2), 1*sec)
			tb.Learn(key(7, 2), port(2), 2*sec)
			tb.Learn(key(7, 3), port(1), 3*sec)
			tb.Learn(key(7, 3), port(2), 4*sec)
		},
		want:  []Entry{learned(key(7, 2), port(2), 2*sec), learned(key(7, 3), port(2), 4*sec)},
		stats: Stats{Entries: 2, Learned: 3, Moves: 1, Evictions: 1},
		ports: map[PortID]PortStats{1: {}, 2: {Entries: 2, Moves: 1}},
	}, {
		name: "limit 0 is unlimited again",
		size: 8,
		run: func(tb *Table) {
			tb.SetPortLimit(1, 1)
			tb.SetPortLimit(1, 0)
			tb.Learn(key(7, 1), port(1), 1*sec)
			tb.Learn(key(7, 2), port(1), 2*sec)
		},
		want:  []Entry{learned(key(7, 1), port(1), 1*sec), learned(key(7, 2), port(1), 2*sec)},
		stats: Stats{Entries: 2, Learned: 2},
	}})
}
