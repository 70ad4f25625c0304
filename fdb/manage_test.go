package fdb

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// flushSetup fills a table with one entry of each kind that Flush, PurgeVTEP
// and PurgePort tell apart.
func flushSetup() *Table {
	tb := New(Config{Size: 16})
	tb.Learn(key(7, 1), port(1), 1*sec)
	tb.Learn(key(7, 2), port(2), 1*sec)
	tb.Learn(key(8, 3), port(1), 1*sec)
	tb.Learn(key(8, 4), tun(9, "192.0.2.1"), 1*sec)
	tb.Learn(key(7, 5), tun(9, "192.0.2.2"), 1*sec)
	mustStatic(tb, key(7, 6), port(1))
	mustStatic(tb, key(7, 7), tun(9, "192.0.2.1"))
	tb.Learn(key(0, 8), port(0), 1*sec)
	return tb
}

// keys lists the keys left in tb, in Entries order.
func keys(tb *Table) []Key {
	var ks []Key
	for _, e := range tb.Entries(nil) {
		ks = append(ks, e.Key)
	}
	return ks
}

func TestFlush(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	all := keys(flushSetup())
	without := func(gone ...Key) []Key {
		return slices.DeleteFunc(slices.Clone(all), func(k Key) bool { return slices.Contains(gone, k) })
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []Key // left
	}{
		{"every learned entry", Filter{Port: NoPort}, without(key(7, 1), key(7, 2), key(8, 3), key(8, 4), key(7, 5), key(0, 8))},
		{"everything", Filter{Port: NoPort, Static: true}, nil},
		{"VLAN", Filter{HasVLAN: true, VLAN: 7, Port: NoPort}, without(key(7, 1), key(7, 2), key(7, 5))},
		{"VLAN 0", Filter{HasVLAN: true, Port: NoPort}, without(key(0, 8))},
		{"port", Filter{Port: 1}, without(key(7, 1), key(8, 3))},
		{"zero Filter is port 0", Filter{}, without(key(0, 8))},
		{"VLAN and port", Filter{HasVLAN: true, VLAN: 7, Port: 1}, without(key(7, 1))},
		{"VLAN and port, static too", Filter{HasVLAN: true, VLAN: 7, Port: 1, Static: true}, without(key(7, 1), key(7, 6))},
		{"VTEP", Filter{Port: NoPort, VTEP: a}, without(key(8, 4))},
		{"VTEP, static too", Filter{Port: NoPort, VTEP: a, Static: true}, without(key(8, 4), key(7, 7))},
		{"VTEP and VLAN", Filter{HasVLAN: true, VLAN: 7, Port: NoPort, VTEP: a, Static: true}, without(key(7, 7))},
		{"unknown VTEP", Filter{Port: NoPort, VTEP: netip.MustParseAddr("198.51.100.1")}, all},
		{"unknown port", Filter{Port: 42}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := flushSetup()
			n := tb.Flush(tc.f)
			checkInvariants(t, tb)
			got := keys(tb)
			if !reflect.DeepEqual(got, tc.want) || n != len(all)-len(tc.want) {
				t.Errorf("Flush(%+v) = %d, left\n %v\nwant %d, left\n %v", tc.f, n, got, len(all)-len(tc.want), tc.want)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	all := keys(flushSetup())
	without := func(gone ...Key) []Key {
		return slices.DeleteFunc(slices.Clone(all), func(k Key) bool { return slices.Contains(gone, k) })
	}
	for _, tc := range []struct {
		name  string
		purge func(*Table) int
		want  []Key
	}{
		{"VTEP, static entries too", func(tb *Table) int { return tb.PurgeVTEP(netip.MustParseAddr("192.0.2.1")) }, without(key(8, 4), key(7, 7))},
		{"other VTEP", func(tb *Table) int { return tb.PurgeVTEP(netip.MustParseAddr("192.0.2.2")) }, without(key(7, 5))},
		{"unknown VTEP", func(tb *Table) int { return tb.PurgeVTEP(netip.MustParseAddr("192.0.2.3")) }, all},
		{"zero VTEP purges nothing", func(tb *Table) int { return tb.PurgeVTEP(netip.Addr{}) }, all},
		{"port, static entries too", func(tb *Table) int { return tb.PurgePort(1) }, without(key(7, 1), key(8, 3), key(7, 6))},
		{"tunnel port", func(tb *Table) int { return tb.PurgePort(9) }, without(key(8, 4), key(7, 5), key(7, 7))},
		{"port 0", func(tb *Table) int { return tb.PurgePort(0) }, without(key(0, 8))},
		{"unknown port", func(tb *Table) int { return tb.PurgePort(1000) }, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := flushSetup()
			n := tc.purge(tb)
			checkInvariants(t, tb)
			got := keys(tb)
			if !reflect.DeepEqual(got, tc.want) || n != len(all)-len(tc.want) {
				t.Errorf("purge = %d, left\n %v\nwant %d, left\n %v", n, got, len(all)-len(tc.want), tc.want)
			}
		})
	}
}

func TestPurgePortResetsPort(t *testing.T) {
	tb := New(Config{Size: 16})
	tb.SetPortLimit(1, 1)
	tb.Learn(key(7, 1), port(2), 1*sec)
	tb.Learn(key(7, 1), port(1), 2*sec) // a move onto port 1
	tb.PurgePort(1)
	// A new port under PortID 1: no limit, no moves.
	tb.Learn(key(7, 2), port(1), 3*sec)
	tb.Learn(key(7, 3), port(1), 3*sec)
	checkInvariants(t, tb)
	if got, want := tb.PortStats(1), (PortStats{Entries: 2}); got != want {
		t.Errorf("PortStats(1) after purge and two learns = %+v, want %+v", got, want)
	}
	if got := tb.Stats().Moves; got != 1 {
		t.Errorf("Stats().Moves = %d, want 1 (table-wide counts stay)", got)
	}
}

func TestPurgeVTEPFreesSlot(t *testing.T) {
	tb := flushSetup()
	tb.PurgeVTEP(netip.MustParseAddr("192.0.2.1"))
	tb.PurgeVTEP(netip.MustParseAddr("192.0.2.2"))
	if n := len(tb.vtepIdx); n != 0 {
		t.Errorf("%d VTEPs still interned after purging both", n)
	}
	tb.Learn(key(7, 20), tun(9, "192.0.2.3"), 2*sec) // reuses a freed slot
	checkInvariants(t, tb)
	if d, ok := tb.Lookup(key(7, 20)); !ok || d != tun(9, "192.0.2.3") {
		t.Errorf("Lookup after slot reuse = %+v, %v", d, ok)
	}
}

func TestDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    Key
		want bool
	}{
		{"learned", key(7, 1), true},
		{"static", key(7, 6), true},
		{"behind a VTEP", key(8, 4), true},
		{"absent", key(7, 100), false},
		{"other VLAN", key(9, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := flushSetup()
			n := tb.Len()
			got := tb.Delete(tc.k)
			checkInvariants(t, tb)
			_, found := tb.Lookup(tc.k)
			if got != tc.want || found || tb.Len() != n-btoi(tc.want) {
				t.Errorf("Delete = %v (want %v), then found %v, Len %d (was %d)", got, tc.want, found, tb.Len(), n)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestEntries(t *testing.T) {
	tb := New(Config{Size: 16})
	for _, k := range []Key{key(8, 1), key(7, 0x0300), key(7, 2), key(0, 5), key(7, 0x010000)} {
		tb.Learn(k, port(1), 3*sec)
	}
	prefix := []Entry{{Key: key(99, 99)}}
	got := tb.Entries(prefix[:1:1])
	want := []Key{key(99, 99), key(0, 5), key(7, 2), key(7, 0x0300), key(7, 0x010000), key(8, 1)}
	var gotKeys []Key
	for _, e := range got {
		gotKeys = append(gotKeys, e.Key)
	}
	if !reflect.DeepEqual(gotKeys, want) {
		t.Errorf("Entries keys\n got %v\nwant %v (dst kept, then by VLAN, then MAC)", gotKeys, want)
	}
}
