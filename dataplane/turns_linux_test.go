package dataplane_test

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/dataplane/porttest"
	"github.com/vxswitch/vxswitch/fdb"
)

// floodPort always has a full batch of frame waiting: a port flooded
// beyond what the switch forwards. It counts the batches it was read.
type floodPort struct {
	frame   []byte
	batches atomic.Uint64
	closed  atomic.Bool
}

func (p *floodPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	if p.closed.Load() {
		return 0, net.ErrClosed
	}
	for i := range bufs {
		sizes[i] = copy(bufs[i][off:], p.frame)
	}
	p.batches.Add(1)
	return len(bufs), nil
}

func (p *floodPort) WriteBatch(bufs [][]byte) (int, error) { return len(bufs), nil }
func (p *floodPort) BatchSize() int                        { return 64 }
func (p *floodPort) Close() error                          { p.closed.Store(true); return nil }

// socketPort is a port read through Go's netpoller, as the real ports
// are: one end of a datagram socket pair. It notes, for each read, how
// many batches the flood port had been read by then.
type socketPort struct {
	f     *os.File
	rc    syscall.RawConn
	peer  int // the test writes frames here
	flood *floodPort
	mu    sync.Mutex
	at    []uint64 // flood.batches when each frame was read
	got   chan struct{}
	// closed: after Close, the os.File's RawConn says "use of closed
	// file", which is not os.ErrClosed; the port says net.ErrClosed.
	closed atomic.Bool
}

func newSocketPort(t *testing.T, flood *floodPort) *socketPort {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "socket-port")
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	return &socketPort{f: f, rc: rc, peer: fds[1], flood: flood, got: make(chan struct{}, 64)}
}

func (p *socketPort) PollConn() syscall.RawConn { return p.rc }

// ReadReady: as the real ports, so that with busy polling its reader
// spins instead of parking in the netpoller.
func (p *socketPort) ReadReady() bool {
	ready := true // closed: let ReadBatch say so
	p.rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0
	})
	return ready
}

func (p *socketPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	n := 0
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		for n < len(bufs) {
			r, err := unix.Read(int(fd), bufs[n][off:])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return n > 0
			case err != nil:
				rerr = err
				return true
			}
			sizes[n] = r
			n++
		}
		return true
	})
	if n > 0 {
		at := p.flood.batches.Load()
		p.mu.Lock()
		for range n {
			p.at = append(p.at, at)
			p.got <- struct{}{}
		}
		p.mu.Unlock()
		return n, nil
	}
	if p.closed.Load() {
		return 0, net.ErrClosed
	}
	if err == nil {
		err = rerr
	}
	return 0, err
}

func (p *socketPort) WriteBatch(bufs [][]byte) (int, error) { return len(bufs), nil }
func (p *socketPort) BatchSize() int                        { return 64 }
func (p *socketPort) Close() error {
	p.closed.Store(true)
	return p.f.Close()
}

// TestFloodedPortGivesTurns: with one P (workers: 1), a port that always
// has a full batch waiting must not hold up a port whose reader sleeps in
// Go's netpoller. Before busypoll.Watch, the sleeper ran only when sysmon
// polled the network, every 10 ms: hundreds of the flooded port's batches
// later. Now it runs within a couple of them. Counted in batches, not
// timed. With and without busy polling.
func TestFloodedPortGivesTurns(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, busyPoll := range []time.Duration{0, 20 * time.Millisecond} {
		flood := &floodPort{frame: eth(macB, macA, -1, 46)}
		sp := newSocketPort(t, flood)
		sw := dataplane.New(dataplane.Config{
			Bridge:   "turns",
			FDB:      fdb.New(fdb.Config{}),
			BusyPoll: busyPoll,
			Open: func(pc dataplane.PortConfig) (dataplane.Port, error) {
				switch pc.Name {
				case "flood":
					return flood, nil
				case "sock":
					return sp, nil
				}
				return porttest.NewSink(), nil
			},
		})
		for _, name := range []string{"sock", "sink", "flood"} {
			if _, err := sw.AddPort(access(name, 7)); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for flood.batches.Load() < 100 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		frame := eth(macA, fdb.MAC{2, 0, 0, 0, 0, 0xc}, -1, 46)
		// One frame not counted: with busy polling, a reader that parked
		// on the waker before the flood began polls again only after the
		// window (a limit of busy polling, see busypoll.Waker).
		if _, err := unix.Write(sp.peer, frame); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sp.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("busy-poll %v: first frame never read", busyPoll)
		}
		const rounds = 5
		var sentAt [rounds]uint64
		for i := range rounds {
			sentAt[i] = flood.batches.Load()
			if _, err := unix.Write(sp.peer, frame); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sp.got:
			case <-time.After(10 * time.Second):
				t.Fatalf("busy-poll %v: frame %d never read", busyPoll, i)
			}
		}
		sw.Close()
		// The flooded reader reads a batch (a few µs) at most between the
		// frame's arrival and its own yield; allow a scheduling hiccup.
		const maxBatches = 20
		for i := range rounds {
			if waited := sp.at[i+1] - sentAt[i]; waited > maxBatches {
				t.Errorf("busy-poll %v: frame %d read %d flooded batches after it was sent, want at most %d",
					busyPoll, i, waited, maxBatches)
			}
		}
		t.Logf("busy-poll %v: flooded batches between send and read: %v", busyPoll, diffs(sp.at[1:], sentAt[:]))
	}
}

func diffs(a, b []uint64) []uint64 {
	d := make([]uint64, len(b))
	for i := range b {
		d[i] = a[i] - b[i]
	}
	return d
}
