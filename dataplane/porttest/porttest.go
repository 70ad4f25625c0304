// Package porttest has in-memory fakes of dataplane.Port and
// dataplane.Tunnel for tests of the forwarding pipeline. They copy frames
// and so allocate; use Sink for allocation tests.
package porttest

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vxswitch/vxswitch/dataplane"
)

// Port is a fake port: Inject queues frames for ReadBatch, Written
// receives a copy of every frame WriteBatch sends.
type Port struct {
	in      chan []byte
	Written chan []byte
	// Frames counts the frames WriteBatch was given.
	Frames atomic.Uint64
	// ReadReadyCalls counts ReadReady calls (busy polling).
	ReadReadyCalls atomic.Uint64
	closeOnce      sync.Once
	closed         chan struct{}
	gone           chan struct{}
	goneOnce       sync.Once
}

var (
	_ dataplane.Port        = (*Port)(nil)
	_ dataplane.ReadReadier = (*Port)(nil)
)

// ReadReady reports whether frames are queued for ReadBatch.
func (p *Port) ReadReady() bool {
	p.ReadReadyCalls.Add(1)
	return len(p.in) > 0
}

// New makes a fake port.
func New() *Port {
	return &Port{in: make(chan []byte, 1024), Written: make(chan []byte, 1024), closed: make(chan struct{}), gone: make(chan struct{})}
}

// Inject queues frames to be read by the switch.
func (p *Port) Inject(frames ...[]byte) {
	for _, f := range frames {
		p.in <- f
	}
}

// Vanish makes ReadBatch return ErrPortGone, as if the device was deleted.
func (p *Port) Vanish() { p.goneOnce.Do(func() { close(p.gone) }) }

func (p *Port) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	var f []byte
	select {
	case f = <-p.in:
	case <-p.closed:
		return 0, net.ErrClosed
	case <-p.gone:
		return 0, dataplane.ErrPortGone
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][off:], f)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case f = <-p.in:
		default:
			return n, nil
		}
	}
}

func (p *Port) WriteBatch(bufs [][]byte) (int, error) {
	p.Frames.Add(uint64(len(bufs)))
	for _, b := range bufs {
		select {
		case p.Written <- append([]byte(nil), b...):
		default:
		}
	}
	return len(bufs), nil
}

func (p *Port) BatchSize() int { return 64 }

func (p *Port) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

// Sink is a port that never reads and counts what it is sent, without
// allocating.
type Sink struct {
	Frames atomic.Uint64
	closed chan struct{}
	once   sync.Once
}

var _ dataplane.Port = (*Sink)(nil)

func NewSink() *Sink { return &Sink{closed: make(chan struct{})} }

func (s *Sink) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	<-s.closed
	return 0, net.ErrClosed
}

func (s *Sink) WriteBatch(bufs [][]byte) (int, error) {
	s.Frames.Add(uint64(len(bufs)))
	return len(bufs), nil
}

func (s *Sink) BatchSize() int { return 64 }

func (s *Sink) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// Sent is one frame the switch gave the fake tunnel.
type Sent struct {
	Frame []byte
	Meta  dataplane.TunnelMeta
}

// Tunnel is a fake tunnel: Inject delivers decapsulated frames to the
// switch, Written receives what the switch sends, with its VNI and VTEP.
type Tunnel struct {
	in      chan Sent
	Written chan Sent
	// Frames counts the frames WriteBatch was given.
	Frames    atomic.Uint64
	closed    chan struct{}
	closeOnce sync.Once
}

var _ dataplane.Tunnel = (*Tunnel)(nil)

func NewTunnel() *Tunnel {
	return &Tunnel{in: make(chan Sent, 1024), Written: make(chan Sent, 1024), closed: make(chan struct{})}
}

// Inject delivers frame as if it arrived from vtep in vni.
func (t *Tunnel) Inject(frame []byte, vni uint32, vtep netip.Addr) {
	t.in <- Sent{Frame: frame, Meta: dataplane.TunnelMeta{VNI: vni, VTEP: vtep}}
}

func (t *Tunnel) ReadBatch(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	var s Sent
	select {
	case s = <-t.in:
	case <-t.closed:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][off:], s.Frame)
		meta[n] = s.Meta
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case s = <-t.in:
		default:
			return n, nil
		}
	}
}

func (t *Tunnel) WriteBatch(bufs [][]byte, offs []int, meta []dataplane.TunnelMeta) (int, error) {
	t.Frames.Add(uint64(len(bufs)))
	for i, b := range bufs {
		if offs[i] < dataplane.TunnelHeadroom {
			panic("porttest: frame without tunnel headroom")
		}
		select {
		case t.Written <- Sent{Frame: append([]byte(nil), b[offs[i]:]...), Meta: meta[i]}:
		default:
		}
	}
	return len(bufs), nil
}

func (t *Tunnel) BatchSize() int { return 64 }

func (t *Tunnel) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return nil
}

// Multi is a fake port with several queues (a dataplane.MultiQueuePort).
// Each queue is a Port of its own: Inject on Queue(i) to have lane i read
// it. Every queue sends what is written to it to the one Written channel,
// and counts it in its own Frames.
type Multi struct {
	*Port  // queue 0, which the Port methods use
	queues []*Port
	qs     []dataplane.Queue
}

var _ dataplane.MultiQueuePort = (*Multi)(nil)

// NewMulti makes a fake port with n queues.
func NewMulti(n int) *Multi {
	m := &Multi{}
	written := make(chan []byte, 4096)
	for range n {
		q := New()
		q.Written = written
		m.queues = append(m.queues, q)
		m.qs = append(m.qs, q)
	}
	m.Port = m.queues[0]
	return m
}

// Queue returns queue i.
func (m *Multi) Queue(i int) *Port { return m.queues[i] }

func (m *Multi) Queues() []dataplane.Queue { return m.qs }

// Close closes every queue.
func (m *Multi) Close() error {
	for _, q := range m.queues {
		q.Close()
	}
	return nil
}

// MultiTunnel is a fake tunnel with several queues (a
// dataplane.MultiQueueTunnel), each a Tunnel of its own, all sending to
// one Written channel.
type MultiTunnel struct {
	*Tunnel // queue 0
	queues  []*Tunnel
	qs      []dataplane.TunnelQueue
}

var _ dataplane.MultiQueueTunnel = (*MultiTunnel)(nil)

// NewMultiTunnel makes a fake tunnel with n queues.
func NewMultiTunnel(n int) *MultiTunnel {
	m := &MultiTunnel{}
	written := make(chan Sent, 4096)
	for range n {
		q := NewTunnel()
		q.Written = written
		m.queues = append(m.queues, q)
		m.qs = append(m.qs, q)
	}
	m.Tunnel = m.queues[0]
	return m
}

// Queue returns queue i.
func (m *MultiTunnel) Queue(i int) *Tunnel { return m.queues[i] }

func (m *MultiTunnel) Queues() []dataplane.TunnelQueue { return m.qs }

// Close closes every queue.
func (m *MultiTunnel) Close() error {
	for _, q := range m.queues {
		q.Close()
	}
	return nil
}
