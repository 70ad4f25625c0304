package overlay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/internal/busypoll"
	"github.com/vxswitch/vxswitch/internal/mmsg"
)

const (
	// rxSocketBuffer is asked for as SO_RCVBUF of the receive socket; the
	// kernel caps it at net.core.rmem_max unless we are root, when
	// SO_RCVBUFFORCE is tried first.
	rxSocketBuffer = 4 << 20
	// txSocketRecvBuffer keeps what strays onto a send socket (nothing
	// reads them) small.
	txSocketRecvBuffer = 4096

	// rxMaxMsgs bounds the messages of one recvmmsg: each needs a
	// scratch slot. A larger BatchSize is still filled when messages
	// carry coalesced datagrams.
	rxMaxMsgs = 64
	// rxSlotSize is the room of one received message: the largest UDP
	// payload (65535 - 8) fits, so a coalesced message is never cut.
	rxSlotSize = 1 << 16
	// rxSlotStride puts the slots three cache lines apart beyond 64 KiB,
	// so that their starts do not all fall into the same cache sets.
	rxSlotStride = rxSlotSize + 192
	// rxGROLinger is how many recvmmsg calls without a coalesced message
	// it takes to go back from receiving into the slots to receiving
	// into the caller's buffers (see rxSplit).
	rxGROLinger = 8
)

// ErrNoHeadroom is returned by ReadBatch when off < VXLANHdrLen: the
// header is received in front of the frame, so it needs the room.
var ErrNoHeadroom = errors.New("vxlan: ReadBatch offset smaller than the VXLAN header")

// endpointSys holds the sockets and the per-direction scratch space.
//
// With Config.Queues > 1 there are several receive sockets, bound to the
// one address with SO_REUSEPORT (the kernel spreads packets over them by
// a hash of addresses and ports, so a flow stays on one), and as many
// send lanes, each with send sockets of its own: a Queue pairs receive
// socket i with lane i, and the switch's lane i reads and writes through
// it, so no two lanes of the switch share a socket, a lock or scratch
// space here. Counters and the VTEP table are shared (atomics, and an
// immutable snapshot).
type endpointSys struct {
	local  netip.AddrPort
	rx     *net.UDPConn // rxq[0]'s socket
	rxq    []*rxQueue
	tx     []txSocket // lanes[0]'s send sockets
	lanes  []*txLane
	queues []dataplane.TunnelQueue // rxq[i] and lanes[i] as Queues
	seed   uint64

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// rxQueue is one receive socket and ReadBatch's scratch space for it.
type rxQueue struct {
	e    *Endpoint
	conn *net.UDPConn

	mu    sync.Mutex // guards b, r, slots, split, gro (ReadBatch scratch)
	b     *mmsg.Batch
	r     *mmsg.Reader
	slots []byte // one rxSlotSize slot per message of b, rxSlotStride apart
	split rxSplit
	gro   int // > 0: receive into the slots; counts down calls without GRO

	probe *busypoll.Probe // for ReadReady, by the queue's one reader
	rc    syscall.RawConn // the socket's, for busy polling's waker
}

// txLane is one set of send sockets and WriteBatch's scratch space for
// them.
type txLane struct {
	mu sync.Mutex // guards x
	x  txScratch
}

// A Queue is one receive socket of an Endpoint and one send lane, for
// one goroutine of the switch that reads through it and writes through
// it. It implements dataplane.TunnelQueue; ReadBatch and WriteBatch are
// the Endpoint's (whose own are Queue 0's).
type Queue struct {
	rx *rxQueue
	tx *txLane
}

var (
	_ dataplane.TunnelQueue      = (*Queue)(nil)
	_ dataplane.MultiQueueTunnel = (*Endpoint)(nil)
	_ dataplane.ReadReadier      = (*Endpoint)(nil)
	_ dataplane.ReadReadier      = (*Queue)(nil)
	_ dataplane.PollConner       = (*Endpoint)(nil)
	_ dataplane.PollConner       = (*Queue)(nil)
)

// ReadBatch is Endpoint.ReadBatch on this queue's receive socket.
func (q *Queue) ReadBatch(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	return q.rx.read(bufs, sizes, meta, off)
}

// ReadReady is Endpoint.ReadReady on this queue's receive socket.
func (q *Queue) ReadReady() bool { return q.rx.ready() }

// PollConn is the queue's receive socket (dataplane.PollConner).
func (q *Queue) PollConn() syscall.RawConn { return q.rx.rc }

// WriteBatch is Endpoint.WriteBatch through this queue's send sockets.
func (q *Queue) WriteBatch(bufs [][]byte, offs []int, meta []dataplane.TunnelMeta) (int, error) {
	return q.tx.write(bufs, offs, meta)
}

// Queues returns the endpoint's queues (Config.Queues of them); the
// first is the one its own ReadBatch and WriteBatch use.
func (e *Endpoint) Queues() []dataplane.TunnelQueue { return e.sys.queues }

// Listen opens an endpoint: cfg.Queues receive sockets bound to
// cfg.Local:cfg.Port (with SO_REUSEPORT when more than one) and, per
// queue, cfg.SendSockets send sockets bound to cfg.Local and source ports
// in cfg.SrcPortMin..cfg.SrcPortMax. All sockets are non-blocking and sit
// in Go's netpoller, so Close unblocks a ReadBatch.
func Listen(cfg Config) (*Endpoint, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{cfg: cfg, table: newVTEPTable(cfg.Port)}
	s := &e.sys
	s.seed = cfg.HashSeed
	for s.seed == 0 {
		s.seed = rand.Uint64()
	}
	network := "udp6"
	if cfg.Local.Is4() {
		network = "udp4"
	}
	laddr := netip.AddrPortFrom(cfg.Local, cfg.Port)
	conns, err := listenRx(network, laddr, cfg.Queues)
	if err != nil {
		return nil, err
	}
	s.rx = conns[0]
	s.local = s.rx.LocalAddr().(*net.UDPAddr).AddrPort()
	e.ctr.groOn = !cfg.NoOffload
	for i, c := range conns {
		q, groOn, err := e.newRxQueue(c, i, len(conns))
		if err != nil {
			e.closeSockets()
			return nil, err
		}
		e.ctr.groOn = e.ctr.groOn && groOn
		s.rxq = append(s.rxq, q)
	}
	for range cfg.Queues {
		socks, err := openSendSockets(cfg, network)
		if err != nil {
			e.closeSockets()
			return nil, err
		}
		l := &txLane{}
		l.x.init(e, socks)
		s.lanes = append(s.lanes, l)
	}
	s.tx = s.lanes[0].x.socks
	for i := range s.rxq {
		s.queues = append(s.queues, &Queue{rx: s.rxq[i], tx: s.lanes[i]})
	}

	e.table.setVNIs(cfg.VNIs)
	for _, r := range cfg.Remotes {
		e.table.add(r, 0, nil, SourceStatic)
	}
	var ports []uint16
	for _, l := range s.lanes {
		for _, t := range l.x.socks {
			ports = append(ports, t.port)
		}
	}
	cfg.Logger.Info("vxlan endpoint listening", "local", s.local, "queues", cfg.Queues, "source_ports", ports,
		"vnis", cfg.VNIs, "remotes", cfg.Remotes, "accept", cfg.Accept)
	return e, nil
}

// listenRx binds n receive sockets to laddr: one plain socket when n is
// 1, as always; otherwise n sockets with SO_REUSEPORT. SO_REUSEPORT would
// also let a second agent on the same address and port bind beside us
// and take a share of the packets, so the address is first bound once
// without it: if anything holds it, that fails as a single socket does.
func listenRx(network string, laddr netip.AddrPort, n int) ([]*net.UDPConn, error) {
	ua := net.UDPAddrFromAddrPort(laddr)
	probe, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, fmt.Errorf("vxlan: listen on %s: %w", laddr, err)
	}
	if n <= 1 {
		return []*net.UDPConn{probe}, nil
	}
	probe.Close()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	conns := make([]*net.UDPConn, 0, n)
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), network, ua.String())
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("vxlan: listen on %s (SO_REUSEPORT, socket %d of %d): %w", laddr, i+1, n, err)
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	return conns, nil
}

// newRxQueue sets up receive socket i of n (buffer, UDP GRO) and its
// scratch space. groOn reports whether UDP GRO is on for it.
func (e *Endpoint) newRxQueue(c *net.UDPConn, i, n int) (q *rxQueue, groOn bool, err error) {
	cfg := e.cfg
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, false, fmt.Errorf("vxlan: socket %s: %w", e.sys.local, err)
	}
	if err := setRecvBuffer(rc, rxSocketBuffer); err != nil {
		cfg.Logger.Warn("vxlan: cannot enlarge the receive buffer", "socket", i, "err", err)
	}
	if !cfg.NoOffload {
		if err := setGRO(rc); err != nil {
			cfg.Logger.Warn("vxlan: no UDP GRO on the receive socket; receiving datagram by datagram",
				"socket", i, "sockets", n, "err", err)
		} else {
			groOn = true
		}
	}
	nmsg := min(cfg.BatchSize, rxMaxMsgs)
	q = &rxQueue{e: e, conn: c, probe: busypoll.NewProbe(rc), rc: rc}
	q.b = mmsg.NewBatch(nmsg, mmsg.Options{Iovs: 2, Addrs: true, Control: unix.CmsgSpace(4)})
	q.r = mmsg.NewReader(rc, q.b)
	q.slots = make([]byte, (nmsg-1)*rxSlotStride+rxSlotSize)
	q.split.msgs = make([]rxMsg, 0, nmsg)
	return q, groOn, nil
}

// LocalAddr returns the address and port the endpoint receives on.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.sys.local }

// Close closes every socket. A ReadBatch in progress returns
// net.ErrClosed, and so do later ReadBatch and WriteBatch calls. Close is
// idempotent.
func (e *Endpoint) Close() error {
	s := &e.sys
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = e.closeSockets()
	})
	return s.closeErr
}

// closeSockets closes every socket the endpoint has opened so far.
func (e *Endpoint) closeSockets() error {
	s := &e.sys
	var errs []error
	for _, q := range s.rxq {
		errs = append(errs, q.conn.Close())
	}
	for _, l := range s.lanes {
		for _, t := range l.x.socks {
			errs = append(errs, t.conn.Close())
		}
	}
	return errors.Join(errs...)
}

// ReadReady reports, without blocking, whether ReadBatch would return at
// once: datagrams are left from a GRO'd receive, or the socket has one.
// For busy polling (dataplane.ReadReadier).
func (e *Endpoint) ReadReady() bool { return e.sys.rxq[0].ready() }

// PollConn is the first receive socket (dataplane.PollConner).
func (e *Endpoint) PollConn() syscall.RawConn { return e.sys.rxq[0].rc }

func (q *rxQueue) ready() bool {
	q.mu.Lock()
	pending := q.split.pending()
	q.mu.Unlock()
	return pending || q.probe.Readable()
}

// ReadBatch receives VXLAN packets with one recvmmsg call each time the
// socket is readable and puts up to min(len(bufs), BatchSize()) inner
// frames at bufs[i][off:]; off must be at least VXLANHdrLen. It blocks
// until at least one packet passes, and returns net.ErrClosed after
// Close. It does not allocate. Meant for one goroutine at a time; it
// reads the first receive socket (see Queues for the others).
//
// With UDP_GRO on, one message may hold several datagrams of a flow,
// coalesced by the kernel; each is checked, counted and delivered on its
// own, and those that do not fit this call's buffers are delivered by the
// next call without a system call. Datagrams are received straight into
// the caller's buffers (at off-VXLANHdrLen, so the inner frame lands at
// off without a copy) until coalesced messages show up, then into
// scratch slots and copied out; see rxSplit for why.
func (e *Endpoint) ReadBatch(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	return e.sys.rxq[0].read(bufs, sizes, meta, off)
}

// read is ReadBatch on socket q.
func (q *rxQueue) read(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	e := q.e
	if off < VXLANHdrLen {
		return 0, ErrNoHeadroom
	}
	n := min(len(bufs), len(sizes), len(meta), e.cfg.BatchSize)
	if n == 0 {
		return 0, nil
	}
	s := &e.sys
	q.mu.Lock()
	for {
		if s.closed.Load() {
			q.mu.Unlock()
			return 0, net.ErrClosed
		}
		if q.split.pending() {
			if w := q.deliver(bufs, sizes, meta, off, n); w > 0 {
				q.mu.Unlock()
				return w, nil
			}
			continue
		}
		m := min(n, q.b.Cap())
		scratch := q.gro > 0
		for i := range m {
			slot := q.slot(i)
			p0 := bufs[i][off-VXLANHdrLen:]
			switch {
			case scratch:
				q.b.SetBuf(i, slot)
			case len(p0) >= len(slot):
				q.b.SetBuf(i, p0)
			default:
				q.b.SetBufs(i, p0, slot[len(p0):])
			}
		}
		got, err := q.r.Read(m, 0)
		if err != nil {
			q.b.Release(m)
			q.mu.Unlock()
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				return 0, net.ErrClosed
			}
			return 0, fmt.Errorf("vxlan: recvmmsg on %s: %w", s.local, err)
		}
		var w int
		if !scratch && !q.anyGRO(got) {
			w = q.decap(bufs, sizes, meta, off, got) // the common case, as before GRO
		} else {
			q.collect(bufs, off, got, scratch)
			w = q.deliver(bufs, sizes, meta, off, n)
		}
		q.b.Release(m)
		if w > 0 {
			q.mu.Unlock()
			return w, nil
		}
	}
}

// anyGRO reports whether one of the got messages of q.b holds
// coalesced datagrams.
func (q *rxQueue) anyGRO(got int) bool {
	for i := range got {
		if q.b.Hdr(i).Hdr.Controllen != 0 && groSize(q.b.Control(i)) > 0 {
			return true
		}
	}
	return false
}

// decap handles a batch of plain datagrams received straight into the
// caller's buffers (the first layout of rxSplit, no GRO message): it
// validates them in place, moves the good ones to the front, fills sizes
// and meta, counts, and returns how many are good. It is what rxSplit.fill
// does for such a batch, at a third of the cost.
func (q *rxQueue) decap(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, got int) int {
	e, b := q.e, q.b
	snap := e.table.load()
	members := e.cfg.Accept == AcceptMembers
	var drops [numDropReasons]uint64
	var bytes uint64
	w := 0
	for j := range got {
		if b.Truncated(j) || b.Len(j) > len(bufs[j])-off+VXLANHdrLen { // spilled into the slot
			drops[DropTruncated]++
			continue
		}
		pkt := bufs[j][off-VXLANHdrLen : off-VXLANHdrLen+b.Len(j)]
		src := b.AddrPort(j).Addr().Unmap()
		if members && snap.byAddr[src] == nil {
			drops[DropUnknownSender]++
			continue
		}
		vni, r := ParseHeader(pkt)
		if r != DropNone {
			drops[r]++
			continue
		}
		if _, ok := snap.vnis[vni]; !ok {
			drops[DropUnknownVNI]++
			continue
		}
		inner := len(pkt) - VXLANHdrLen
		if w != j {
			if len(bufs[w]) < off+inner {
				drops[DropTruncated]++
				continue
			}
			copy(bufs[w][off:], pkt[VXLANHdrLen:])
		}
		sizes[w] = inner
		meta[w] = dataplane.TunnelMeta{VNI: vni, VTEP: src}
		bytes += uint64(inner)
		w++
	}
	if w > 0 {
		e.ctr.rxPackets.Add(uint64(w))
		e.ctr.rxBytes.Add(bytes)
	}
	for r, n := range drops {
		e.ctr.drop(DropReason(r), n)
	}
	return w
}

// slot returns message i's scratch slot.
func (q *rxQueue) slot(i int) []byte {
	return q.slots[i*rxSlotStride : i*rxSlotStride+rxSlotSize : i*rxSlotStride+rxSlotSize]
}

// collect lists the got messages of q.b in q.split, reading each one's
// UDP_GRO segment size, counts the coalesced ones, and picks the layout of
// the next recvmmsg.
func (q *rxQueue) collect(bufs [][]byte, off, got int, scratch bool) {
	e, b := q.e, q.b
	var groMsgs, groDgrams uint64 // coalesced messages, their datagrams
	msgs := q.split.msgs[:got]
	for i := range msgs {
		n := b.Len(i)
		g := groSize(b.Control(i))
		msgs[i].set(q.slot(i), bufs[i][off-VXLANHdrLen:], !scratch, n, g, b.AddrPort(i).Addr().Unmap(), b.Truncated(i))
		if msgs[i].gso < n {
			groMsgs++
			groDgrams += uint64((n + g - 1) / g)
		}
	}
	q.split.msgs, q.split.head = msgs, 0
	switch {
	case groMsgs > 0:
		q.gro = rxGROLinger
		e.ctr.rxGROMsgs.Add(groMsgs)
		e.ctr.rxGRODgrams.Add(groDgrams)
	case q.gro > 0:
		q.gro--
	}
}

// groSize returns the segment size from a UDP_GRO control message in
// control, or 0 when there is none.
func groSize(control []byte) int {
	for len(control) > 0 {
		level, typ, data, rest, ok := mmsg.NextCmsg(control)
		if !ok {
			return 0
		}
		if level == unix.SOL_UDP && typ == unix.UDP_GRO && len(data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(data)))
		}
		control = rest
	}
	return 0
}

// deliver hands pending datagrams to the caller through q.split and
// does the counting.
func (q *rxQueue) deliver(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, n int) int {
	e := q.e
	var drops [numDropReasons]uint64
	w, bytes := q.split.fill(bufs, sizes, meta, off, n, e.table.load(), e.cfg.Accept == AcceptMembers, &drops)
	if w > 0 {
		e.ctr.rxPackets.Add(uint64(w))
		e.ctr.rxBytes.Add(bytes)
	}
	for r, n := range drops {
		e.ctr.drop(DropReason(r), n)
	}
	return w
}

// setGRO turns UDP_GRO on: the kernel may then hand several datagrams of
// a flow over as one message with their segment size in a cmsg.
func setGRO(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
	})
	return errors.Join(err, serr)
}

// setRecvBuffer asks for a receive buffer of n bytes, forcing past
// rmem_max when privileged.
func setRecvBuffer(rc syscall.RawConn, n int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) == nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	})
	return errors.Join(err, serr)
}
