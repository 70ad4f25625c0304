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
	in        chan []byte
	Written   chan []byte
	closeOnce sync.Once
	closed    chan struct{}
	gone      chan struct{}
	goneOnce  sync.Once
}

var _ dataplane.Port = (*Port)(nil)

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
	in        chan Sent
	Written   chan Sent
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
