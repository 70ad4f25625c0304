package dataplane

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/vxswitch/vxswitch/fdb"
)

// laneSink is one queue of a multi-queue sink: it counts frames, never
// reads, and sits on a cache line of its own, so that two lanes counting
// into their own queues do not share a line (false sharing would show up
// in BenchmarkForwardParallel as contention the switch does not have).
type laneSink struct {
	frames int
	_      [56]byte
}

func (s *laneSink) ReadBatch([][]byte, []int, int) (int, error) { return 0, net.ErrClosed }
func (s *laneSink) WriteBatch(b [][]byte) (int, error)          { s.frames += len(b); return len(b), nil }

// multiSink is a MultiQueuePort of laneSinks.
type multiSink struct {
	sinkPort
	qs []Queue
}

func newMultiSink(n int) *multiSink {
	m := &multiSink{}
	for range n {
		m.qs = append(m.qs, &laneSink{})
	}
	return m
}

func (m *multiSink) Queues() []Queue { return m.qs }

type laneSinkTunnel struct {
	frames int
	_      [56]byte
}

func (s *laneSinkTunnel) ReadBatch([][]byte, []int, []TunnelMeta, int) (int, error) {
	return 0, net.ErrClosed
}

func (s *laneSinkTunnel) WriteBatch(b [][]byte, _ []int, _ []TunnelMeta) (int, error) {
	s.frames += len(b)
	return len(b), nil
}

type multiSinkTunnel struct {
	sinkTunnel
	qs []TunnelQueue
}

func (m *multiSinkTunnel) Queues() []TunnelQueue { return m.qs }

// laneBenchSwitch is benchSwitch with n queues on every port and on the
// tunnel: sink ports a (access 7), t (trunk) and the tunnel, and one
// worker per lane of port a, driven by hand. Lane k's batch carries
// frames from its own hosts on a to hosts behind t and the tunnel, as a
// kernel that spreads flows over queues would hand them over.
func laneBenchSwitch(tb testing.TB, size, batch, n int) (*Switch, []*worker, [][][]byte) {
	sw := New(Config{FDB: fdb.New(fdb.Config{Size: 8192}), Workers: n})
	a := newPort(0, PortConfig{Name: "a", Type: PortSystem, Mode: ModeAccess, HasTag: true, Tag: 7}, newMultiSink(n))
	tr := newPort(1, PortConfig{Name: "t", Type: PortSystem, Mode: ModeTrunk}, newMultiSink(n))
	mt := &multiSinkTunnel{}
	for range n {
		mt.qs = append(mt.qs, &laneSinkTunnel{})
	}
	tun := newTunnelPort(2, mt, TunnelConfig{})
	sw.ports = []*port{a, tr, tun}
	sw.tunnel = tun
	sw.rebuildLocked()
	now := fdb.Now()
	workers := make([]*worker, n)
	frames := make([][][]byte, n)
	for lane := range n {
		frames[lane] = make([][]byte, batch)
		for i := range batch {
			local := fdb.MAC{0x02, 0, 0, byte(lane), 1, byte(i)}
			remote := fdb.MAC{0x02, 0, 0, byte(lane), 2, byte(i)}
			if i%2 == 0 {
				sw.fdb.Learn(fdb.Key{VLAN: 7, MAC: remote}, fdb.Dest{Port: 1}, now)
			} else {
				sw.fdb.Learn(fdb.Key{VLAN: 7, MAC: remote}, fdb.Dest{Port: 2, VTEP: netip.MustParseAddr("198.51.100.3")}, now)
			}
			frames[lane][i] = testFrame(remote, local, -1, size)
		}
		workers[lane] = newWorker(sw, a, batch, lane)
	}
	return sw, workers, frames
}

// cpuTime is the CPU time (user and system) this process has used, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestForwardLaneAllocs is TestForwardAllocs for a worker of lane 1 of a
// two-queue port, writing to the second queue of two-queue egress ports.
func TestForwardLaneAllocs(t *testing.T) {
	sw, ws, frames := laneBenchSwitch(t, 64, 64, 2)
	w := ws[1]
	load(w, frames[1])
	w.forward(len(frames[1]), false)
	allocs := testing.AllocsPerRun(100, func() {
		load(w, frames[1])
		w.forward(len(frames[1]), false)
	})
	if allocs != 0 {
		t.Errorf("lane 1 forward allocates %v times per batch, want 0", allocs)
	}
	// Lane 1 wrote through queue 1 only.
	tq := sw.ports[1].queues
	if q0, q1 := tq[0].(*laneSink).frames, tq[1].(*laneSink).frames; q0 != 0 || q1 == 0 {
		t.Errorf("trunk queues got %d and %d frames; lane 1 must write to queue 1 only", q0, q1)
	}
}

// BenchmarkForwardParallel forwards 64-frame batches from port a to t
// and the tunnel with 1 and 2 lanes of port a running at once, each on
// its own goroutine with its own worker and hosts. b.N batches are shared
// among the lanes, so ns/frame is wall time per frame: with no contention
// between lanes it halves from 1 to 2 lanes, given two idle cores.
//
// cpu-ns/frame is the process's CPU time per frame. Contention (lock
// waits, cache lines bouncing between cores) raises it whether or not the
// cores are busy with something else. So does running two threads at once
// on cores that share resources (SMT siblings, a busy host), which the
// switch cannot help: "separate=2" runs two lanes on two separate
// switches, which share nothing at all, as the yardstick for lanes=2.
func BenchmarkForwardParallel(b *testing.B) {
	for _, c := range []struct {
		name            string
		lanes, switches int
	}{{"lanes=1", 1, 1}, {"lanes=2", 2, 1}, {"separate=2", 1, 2}} {
		b.Run(c.name, func(b *testing.B) {
			var ws []*worker
			var frames [][][]byte
			for range c.switches {
				_, w, f := laneBenchSwitch(b, 64, 64, c.lanes)
				ws, frames = append(ws, w...), append(frames, f...)
			}
			n := len(ws)
			for k, w := range ws { // warm up: staging growth
				load(w, frames[k])
				w.forward(len(frames[k]), false)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for k, w := range ws {
				wg.Go(func() {
					for i := k; i < b.N; i += n {
						load(w, frames[k])
						w.forward(len(frames[k]), false)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			total := float64(b.N * 64)
			perFrame := float64(b.Elapsed().Nanoseconds()) / total
			b.ReportMetric(perFrame, "ns/frame")
			b.ReportMetric(float64(cpuTime()-cpu0)/total, "cpu-ns/frame")
			b.ReportMetric(1e3/perFrame, "Mpps")
		})
	}
}
