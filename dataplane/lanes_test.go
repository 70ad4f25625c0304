package dataplane_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

// Tests of a switch with two readers (lanes) per port and per tunnel,
// over the porttest fakes; run them with -race.

// laneSwitch is a switch with Workers 2 whose ports and tunnel are
// two-queue fakes.
type laneSwitch struct {
	sw    *dataplane.Switch
	ports map[string]*porttest.Multi
	tun   *porttest.MultiTunnel
}

func newLaneSwitch(t *testing.T, pcs ...dataplane.PortConfig) *laneSwitch {
	t.Helper()
	ls := &laneSwitch{ports: map[string]*porttest.Multi{}}
	var mu sync.Mutex
	ls.sw = dataplane.New(dataplane.Config{
		Bridge:  "lanes",
		FDB:     fdb.New(fdb.Config{}),
		Workers: 2,
		Open: func(pc dataplane.PortConfig) (dataplane.Port, error) {
			if pc.Queues != 2 {
				t.Errorf("port %q opened with %d queues, want Workers (2)", pc.Name, pc.Queues)
			}
			p := porttest.NewMulti(pc.Queues)
			mu.Lock()
			ls.ports[pc.Name] = p
			mu.Unlock()
			return p, nil
		},
	})
	t.Cleanup(func() { ls.sw.Close() })
	for _, pc := range pcs {
		if _, err := ls.sw.AddPort(pc); err != nil {
			t.Fatal(err)
		}
	}
	ls.tun = porttest.NewMultiTunnel(2)
	if err := ls.sw.SetTunnel(ls.tun, dataplane.TunnelConfig{}); err != nil {
		t.Fatal(err)
	}
	return ls
}

func (ls *laneSwitch) counters(t *testing.T, name string) dataplane.PortCounters {
	t.Helper()
	return portCounters(t, ls.sw, name)
}

// host is the MAC of host h behind lane q of port p ("a", "b", or "r" for
// behind the tunnel).
func host(p byte, q, h int) fdb.MAC { return fdb.MAC{0x02, p, 0, 0, byte(q), byte(h)} }

// seqFrame is an untagged frame whose payload starts with seq.
func seqFrame(dst, src fdb.MAC, seq uint32) []byte {
	f := eth(dst, src, -1, 46)
	binary.BigEndian.PutUint32(f[14:], seq)
	return f
}

// frameKey identifies a frame in the checks: source, destination, seq.
type frameKey struct {
	src, dst fdb.MAC
	seq      uint32
}

func keyOf(f []byte) frameKey {
	var k frameKey
	copy(k.dst[:], f[0:6])
	copy(k.src[:], f[6:12])
	k.seq = binary.BigEndian.Uint32(f[14:])
	return k
}

// drain takes every frame in ch until want have come, checking each
// arrives once; it fails on a duplicate or when frames stop coming.
func drain(t *testing.T, ch chan []byte, want int) map[frameKey]int {
	t.Helper()
	got := map[frameKey]int{}
	n := 0
	waitFor(t, func() bool {
		for {
			select {
			case f := <-ch:
				got[keyOf(f)]++
				n++
			default:
				return n >= want
			}
		}
	})
	for k, c := range got {
		if c != 1 {
			t.Errorf("frame %+v delivered %d times", k, c)
		}
	}
	return got
}

// TestLanesForwardConcurrently drives both lanes of two ports and of the
// tunnel at once: learning from floods on every lane, then unicast in
// every direction on every lane concurrently. Every frame must arrive
// exactly once, through the egress queue of its own lane, and the
// counters and the FDB must agree with what was sent.
func TestLanesForwardConcurrently(t *testing.T) {
	ls := newLaneSwitch(t, access("a", 7), access("b", 7))
	a, b := ls.ports["a"], ls.ports["b"]
	vtep := netip.MustParseAddr("198.51.100.3")
	const hosts = 16

	// Learn: every host floods once, on its lane, all lanes at once.
	var wg sync.WaitGroup
	for q := range 2 {
		wg.Go(func() {
			for h := range hosts {
				a.Queue(q).Inject(seqFrame(fdb.Broadcast, host('a', q, h), 0))
				b.Queue(q).Inject(seqFrame(fdb.Broadcast, host('b', q, h), 0))
				ls.tun.Queue(q).Inject(seqFrame(fdb.Broadcast, host('r', q, h), 0), 7, vtep)
			}
		})
	}
	wg.Wait()
	// a's and b's floods reach the other port and the tunnel; the
	// tunnel's reach both ports (split horizon keeps them off the tunnel).
	drain(t, a.Written, 4*hosts)
	drain(t, b.Written, 4*hosts)
	waitFor(t, func() bool { return ls.counters(t, dataplane.TunnelName).TxPackets == 4*hosts })
	drainSent(ls.tun.Written)
	tab := ls.sw.FDB()
	aID, _ := ls.sw.PortByName("a")
	bID, _ := ls.sw.PortByName("b")
	for q := range 2 {
		for h := range hosts {
			for _, w := range []struct {
				mac  fdb.MAC
				port fdb.PortID
				vtep netip.Addr
			}{{host('a', q, h), aID, netip.Addr{}}, {host('b', q, h), bID, netip.Addr{}}, {host('r', q, h), ls.sw.TunnelPortID(), vtep}} {
				d, ok := tab.Lookup(fdb.Key{VLAN: 7, MAC: w.mac})
				if !ok || d.Port != w.port || d.VTEP != w.vtep {
					t.Fatalf("%v learned as %+v %v, want port %d vtep %v", w.mac, d, ok, w.port, w.vtep)
				}
			}
		}
	}
	if tab.Len() != 6*hosts {
		t.Errorf("FDB has %d entries, want %d", tab.Len(), 6*hosts)
	}
	for _, p := range []*porttest.Multi{a, b} {
		for q := range 2 {
			p.Queue(q).Frames.Store(0)
		}
	}
	for q := range 2 {
		ls.tun.Queue(q).Frames.Store(0)
	}
	before := map[string]dataplane.PortCounters{}
	for _, n := range []string{"a", "b", dataplane.TunnelName} {
		before[n] = ls.counters(t, n)
	}

	// Unicast, every lane of every port at once: a -> b, b -> a,
	// tunnel -> a, a -> tunnel. Lane q's hosts talk to lane q's hosts.
	const per = 300
	for q := range 2 {
		wg.Go(func() {
			for i := range per {
				h := i % hosts
				a.Queue(q).Inject(seqFrame(host('b', q, h), host('a', q, h), uint32(i)))
				if i%2 == 0 {
					a.Queue(q).Inject(seqFrame(host('r', q, h), host('a', q, h), uint32(i)))
				}
			}
		})
		wg.Go(func() {
			for i := range per {
				h := i % hosts
				b.Queue(q).Inject(seqFrame(host('a', q, h), host('b', q, h), uint32(i)))
			}
		})
		wg.Go(func() {
			for i := range per / 2 {
				h := i % hosts
				ls.tun.Queue(q).Inject(seqFrame(host('a', q, h), host('r', q, h), uint32(i)), 7, vtep)
			}
		})
	}
	wg.Wait()

	toB := drain(t, b.Written, 2*per)
	toA := drain(t, a.Written, 2*per+2*(per/2))
	var toR []porttest.Sent
	waitFor(t, func() bool {
		toR = append(toR, drainSent(ls.tun.Written)...)
		return len(toR) >= per
	})
	if len(toB) != 2*per || len(toA) != 2*per+per {
		t.Errorf("distinct frames: b got %d, want %d; a got %d, want %d", len(toB), 2*per, len(toA), 3*per)
	}
	seenR := map[frameKey]bool{}
	for _, s := range toR {
		k := keyOf(s.Frame)
		if seenR[k] || s.Meta.VTEP != vtep || s.Meta.VNI != 7 {
			t.Errorf("tunnel frame %+v: duplicate %v, meta %+v", k, seenR[k], s.Meta)
		}
		seenR[k] = true
	}
	if len(toR) != per {
		t.Errorf("tunnel got %d frames, want %d", len(toR), per)
	}

	// Lane q wrote only through queue q of each egress port.
	for q := range 2 {
		if got, want := b.Queue(q).Frames.Load(), uint64(per); got != want {
			t.Errorf("b queue %d was written %d frames, want %d (lane %d's)", q, got, want, q)
		}
		if got, want := a.Queue(q).Frames.Load(), uint64(per+per/2); got != want {
			t.Errorf("a queue %d was written %d frames, want %d (lane %d's)", q, got, want, q)
		}
		if got, want := ls.tun.Queue(q).Frames.Load(), uint64(per/2); got != want {
			t.Errorf("tunnel queue %d was written %d frames, want %d", q, got, want)
		}
	}

	// Counters: exactly what was sent, read and written.
	delta := func(n string) dataplane.PortCounters {
		c, was := ls.counters(t, n), before[n]
		return dataplane.PortCounters{RxPackets: c.RxPackets - was.RxPackets, TxPackets: c.TxPackets - was.TxPackets}
	}
	for _, w := range []struct {
		name   string
		rx, tx uint64
	}{
		{"a", 2*per + per, 2*per + per},
		{"b", 2 * per, 2 * per},
		{dataplane.TunnelName, per, per},
	} {
		if d := delta(w.name); d.RxPackets != w.rx || d.TxPackets != w.tx {
			t.Errorf("%s: rx %d tx %d, want rx %d tx %d", w.name, d.RxPackets, d.TxPackets, w.rx, w.tx)
		}
		for r, n := range ls.counters(t, w.name).Drops {
			if n != 0 {
				t.Errorf("%s: %d drops %s", w.name, n, r)
			}
		}
	}
}

// settledGoroutines waits until goroutines of earlier tests have exited
// (the count holds still for 20 ms) and returns the count.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

func drainSent(ch chan porttest.Sent) []porttest.Sent {
	var out []porttest.Sent
	for {
		select {
		case s := <-ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// TestLanesStopTogether checks that a two-queue port gets a reader per
// queue, that deleting it waits for both, that the port goes down when
// one queue's device vanishes, and that Close leaves no reader behind.
func TestLanesStopTogether(t *testing.T) {
	base := settledGoroutines()
	ls := newLaneSwitch(t, access("a", 7), access("b", 7), access("c", 7))
	// 3 ports and the tunnel, two readers each.
	if n := runtime.NumGoroutine() - base; n != 8 {
		t.Fatalf("%d new goroutines, want 8 readers", n)
	}
	ls.ports["a"].Queue(1).Inject(seqFrame(fdb.Broadcast, host('a', 1, 0), 0))
	waitFor(t, func() bool { return ls.counters(t, "a").RxPackets == 1 })
	if err := ls.sw.DelPort("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ls.sw.FDB().Lookup(fdb.Key{VLAN: 7, MAC: host('a', 1, 0)}); ok {
		t.Error("entry of a deleted port survived")
	}
	// Only lane 1's device vanishes first; the port goes down at once.
	ls.ports["c"].Queue(1).Vanish()
	waitFor(t, func() bool {
		for _, p := range ls.sw.Ports() {
			if p.Config.Name == "c" {
				return !p.Up
			}
		}
		return false
	})
	ls.ports["c"].Queue(0).Vanish()
	// b still forwards, on both lanes.
	for q := range 2 {
		ls.ports["b"].Queue(q).Inject(seqFrame(fdb.Broadcast, host('b', q, 0), 0))
	}
	waitFor(t, func() bool { return ls.counters(t, "b").RxPackets == 2 })
	if err := ls.sw.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base })
}
