package fdb

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

// FuzzTable runs random operation sequences on a Table and on the model
// and checks after every operation that they agree on every entry, every
// counter and every return value, that the table never holds more than
// its size, and that its internal structure is sound.
//
// Input: size (1-16), aging (1-20 s), then operations of up to 9 bytes;
// past 1 KiB the input is ignored, so long mutations do not stall the
// fuzzer with thousands of fully checked operations each.
func FuzzTable(f *testing.F) {
	f.Add([]byte{4, 10, 0, 0x01, 1, 4, 0, 0x02, 1, 4, 0, 0x03, 2, 4, 0, 0x04, 2, 4, 0, 0x05, 1, 4})
	f.Add([]byte{2, 3, 4, 0x01, 1, 4, 0x02, 1, 0, 0x03, 2, 4, 12, 200, 9})
	f.Add([]byte{8, 5, 3, 3, 0x01, 4, 0x12, 5, 0x03, 6, 10, 4, 2, 0, 0x15, 4, 4, 7, 0, 8, 4})
	f.Add([]byte{3, 2, 0, 0x01, 0, 4, 12, 0, 1, 0x01, 1, 4, 12, 90, 9, 6, 0x35, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzReader(data[:min(len(data), 1024)])
		size := 1 + int(r.byte()%16)
		aging := time.Duration(1+r.byte()%20) * time.Second
		tb := New(Config{Size: size, Aging: aging})
		m := newModel(size, aging)
		now := int64(100 * sec)
		for op := 0; len(r) > 0; op++ {
			desc := fuzzOp(t, tb, m, &r, &now)
			compareModel(t, tb, m, fmt.Sprintf("op %d: %s", op, desc))
		}
	})
}

// fuzzOp decodes one operation, applies it to both and compares the return
// values. It returns a description for failure messages.
func fuzzOp(t *testing.T, tb *Table, m *model, r *fuzzReader, now *int64) string {
	t.Helper()
	switch r.byte() % 13 {
	case 0, 1, 2:
		k, d := r.key(), r.dest()
		at := *now + (int64(r.byte()%16)-8)*1e8 // batches apply slightly out of clock order
		tb.BeginRead()
		got := tb.NeedsLearn(k, d, at)
		tb.EndRead()
		if want := m.needsLearn(k, d, at); got != want {
			t.Fatalf("NeedsLearn(%v, %+v, %d) = %v, model %v", k, d, at, got, want)
		}
		tb.Learn(k, d, at)
		m.learn(k, d, at)
		return fmt.Sprintf("Learn(%v, %+v, %d)", k, d, at)
	case 3:
		reqs := make([]LearnReq, 1+r.byte()%4)
		for i := range reqs {
			reqs[i] = LearnReq{Key: r.key(), Dest: r.dest()}
		}
		tb.LearnBatch(reqs, *now)
		for _, q := range reqs {
			m.learn(q.Key, q.Dest, *now)
		}
		return fmt.Sprintf("LearnBatch(%+v, %d)", reqs, *now)
	case 4:
		k, d := r.key(), r.dest()
		got, want := tb.AddStatic(k, d), m.addStatic(k, d)
		if !errors.Is(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("AddStatic(%v, %+v) = %v, model %v", k, d, got, want)
		}
		return fmt.Sprintf("AddStatic(%v, %+v)", k, d)
	case 5:
		k := r.key()
		_, had := m.m[k]
		delete(m.m, k)
		if got := tb.Delete(k); got != had {
			t.Fatalf("Delete(%v) = %v, model %v", k, got, had)
		}
		return fmt.Sprintf("Delete(%v)", k)
	case 6:
		b := r.byte()
		fl := Filter{HasVLAN: b&1 != 0, VLAN: uint16(b>>1&1) * 7, Port: r.port(), Static: b&4 != 0}
		if v := b >> 3 % 6; v < 4 {
			fl.VTEP = fuzzVTEPs[v]
		}
		return checkCount(t, fmt.Sprintf("Flush(%+v)", fl), tb.Flush(fl), m.flush(fl))
	case 7:
		var a netip.Addr // 0-2 known, 3 never learned, 4 zero (matches nothing)
		switch b := r.byte() % 6; b {
		case 0, 1, 2, 3:
			a = fuzzVTEPs[b]
		case 5: // ::ffff:192.0.2.1 is not 192.0.2.1
			a = netip.AddrFrom16(fuzzVTEPs[0].As16())
		}
		return checkCount(t, fmt.Sprintf("PurgeVTEP(%v)", a), tb.PurgeVTEP(a),
			m.removeIf(func(_ Key, e *modelEntry) bool { return a.IsValid() && e.d.VTEP == a }))
	case 8:
		p := r.port()
		delete(m.limit, p)
		delete(m.portMoves, p)
		return checkCount(t, fmt.Sprintf("PurgePort(%d)", p), tb.PurgePort(p),
			m.removeIf(func(_ Key, e *modelEntry) bool { return e.d.Port == p }))
	case 9:
		return checkCount(t, fmt.Sprintf("Age(%d)", *now), tb.Age(*now), m.age(*now))
	case 10:
		p, n := r.port(), int(r.byte()%5)
		tb.SetPortLimit(p, n)
		if p != NoPort {
			m.setLimit(p, n)
		}
		return fmt.Sprintf("SetPortLimit(%d, %d)", p, n)
	case 11:
		d := time.Duration(r.byte()%21) * 500 * time.Millisecond
		tb.SetAging(d)
		if m.aging = int64(d); d == 0 {
			m.aging = int64(DefaultAging)
		}
		return fmt.Sprintf("SetAging(%v)", d)
	default:
		*now = max(0, *now+(int64(r.byte())-40)*5e7) // mostly forward, sometimes back
		return fmt.Sprintf("now = %d", *now)
	}
}

func checkCount(t *testing.T, call string, got, want int) string {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %d, model %d", call, got, want)
	}
	return call
}

// compareModel checks that tb and m hold the same entries and counters.
func compareModel(t *testing.T, tb *Table, m *model, after string) {
	t.Helper()
	checkInvariants(t, tb)
	if n := tb.Len(); n != len(m.m) || n > m.size {
		t.Fatalf("after %s: Len %d, model %d, size %d", after, n, len(m.m), m.size)
	}
	want := make([]Entry, 0, len(m.m))
	for k, e := range m.m {
		ls := e.lastSeen
		if e.static {
			ls = 0
		}
		want = append(want, Entry{Key: k, Dest: e.d, Static: e.static, LastSeen: ls})
		if d, ok := tb.Lookup(k); !ok || d != e.d {
			t.Fatalf("after %s: Lookup(%v) = %+v, %v; model %+v", after, k, d, ok, e.d)
		}
	}
	slices.SortFunc(want, func(a, b Entry) int {
		if a.VLAN != b.VLAN {
			return int(a.VLAN) - int(b.VLAN)
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	got := tb.Entries(nil)
	for i := range got {
		if got[i].Static {
			got[i].LastSeen = 0
		}
	}
	if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
		t.Fatalf("after %s: entries\n got %+v\nwant %+v", after, got, want)
	}
	s := tb.Stats()
	ws := m.stats
	ws.Entries, ws.Capacity = len(m.m), m.size
	for _, e := range m.m {
		if e.static {
			ws.Static++
		}
	}
	if s != ws {
		t.Fatalf("after %s: stats\n got %+v\nwant %+v", after, s, ws)
	}
	for _, p := range []PortID{0, 1, 2, 3, 9, 42} {
		var want PortStats
		for _, e := range m.m {
			if e.d.Port == p {
				want.Entries++
			}
		}
		want.Moves = m.portMoves[p]
		if got := tb.PortStats(p); got != want {
			t.Fatalf("after %s: PortStats(%d) = %+v, model %+v", after, p, got, want)
		}
	}
}
