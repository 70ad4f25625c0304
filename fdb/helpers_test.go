package fdb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
)

const sec = int64(1e9)

// key returns a unicast key in vlan whose MAC ends in n.
func key(vlan uint16, n int) Key {
	return Key{VLAN: vlan, MAC: MAC{0x02, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}}
}

func port(p PortID) Dest { return Dest{Port: p} }

func tun(p PortID, vtep string) Dest { return Dest{Port: p, VTEP: netip.MustParseAddr(vtep)} }

// checkInvariants checks the table's internal structure: index, slab, free
// list, per-port lists (linked both ways, ordered by lastSeen), counts,
// limits and VTEP reference counts.
func checkInvariants(tb testing.TB, t *Table) {
	tb.Helper()
	t.mu.RLock()
	defer t.mu.RUnlock()
	fail := func(format string, args ...any) {
		tb.Helper()
		tb.Fatalf("invariant: "+format, args...)
	}
	free := 0
	for i := t.free; i != nilIdx; i = t.nodes[i].next {
		if t.nodes[i].flags != 0 {
			fail("free slot %d has flags %d", i, t.nodes[i].flags)
		}
		if free++; free > len(t.nodes) {
			fail("free list loops")
		}
	}
	if free+int(t.count) != len(t.nodes) {
		fail("free %d + count %d != size %d", free, t.count, len(t.nodes))
	}
	if len(t.index) != int(t.count) || t.count > t.size {
		fail("index has %d keys, count %d, size %d", len(t.index), t.count, t.size)
	}
	refs := make([]int32, len(t.vteps))
	static := make(map[PortID]int32)
	var nstatic int32
	for k, i := range t.index {
		n := &t.nodes[i]
		if n.flags&flagUsed == 0 || n.key != k {
			fail("index %v -> slot %d holding %v flags %d", k, i, n.key, n.flags)
		}
		if k.MAC.IsMulticast() {
			fail("multicast %v in table", k)
		}
		refs[n.vtep]++
		if n.flags&flagStatic != 0 {
			static[n.port]++
			nstatic++
		}
	}
	if nstatic != t.static {
		fail("static count %d, counted %d", t.static, nstatic)
	}
	for i := 1; i < len(t.vteps); i++ {
		if refs[i] != t.vteps[i].refs {
			fail("vtep %d (%v) refs %d, counted %d", i, t.vteps[i].addr, t.vteps[i].refs, refs[i])
		}
		if a := t.vteps[i].addr; a.IsValid() && t.vtepIdx[a] != uint32(i) {
			fail("vtepIdx[%v] = %d, want %d", a, t.vtepIdx[a], i)
		}
	}
	nfree := 0
	for i := t.vtepFree; i != 0; i = t.vteps[i].nextFree {
		if s := t.vteps[i]; s.refs != 0 || s.addr.IsValid() {
			fail("free vtep slot %d holds %v with %d refs", i, s.addr, s.refs)
		}
		if nfree++; nfree > len(t.vteps) {
			fail("vtep free list loops")
		}
	}
	if len(t.vtepIdx) != len(t.vteps)-1-nfree {
		fail("vtepIdx %d, slots %d, free %d", len(t.vtepIdx), len(t.vteps), nfree)
	}
	learned := int32(0)
	for pi := 1; pi < len(t.ports); pi++ {
		ps := &t.ports[pi]
		if t.portOf(ps.id) != pi {
			fail("port %d: portIdx %d, want %d", ps.id, t.portOf(ps.id), pi)
		}
		n, prev := int32(0), nilIdx
		for i := ps.head; i != nilIdx; prev, i = i, t.nodes[i].next {
			nd := &t.nodes[i]
			if nd.prev != prev || nd.port != ps.id || nd.flags != flagUsed {
				fail("port %d list: slot %d prev %d (want %d) port %d flags %d", ps.id, i, nd.prev, prev, nd.port, nd.flags)
			}
			if prev != nilIdx && t.nodes[prev].lastSeen < nd.lastSeen {
				fail("port %d list out of order at slot %d", ps.id, i)
			}
			if n++; n > t.count {
				fail("port %d list loops", ps.id)
			}
		}
		if prev != ps.tail || n != ps.learned || ps.static != static[ps.id] {
			fail("port %d: tail %d (walked %d), learned %d (walked %d), static %d (counted %d)",
				ps.id, ps.tail, prev, ps.learned, n, ps.static, static[ps.id])
		}
		if ps.limit > 0 && ps.learned > ps.limit {
			fail("port %d holds %d learned, over its limit %d", ps.id, ps.learned, ps.limit)
		}
		learned += n
	}
	if learned+t.static != t.count {
		fail("learned %d + static %d != count %d", learned, t.static, t.count)
	}
}

// logRecorder is a slog.Handler that keeps records as "msg k=v ..." lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool {
		s += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, s)
	h.mu.Unlock()
	return nil
}
