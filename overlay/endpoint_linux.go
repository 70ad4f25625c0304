package overlay

import (
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
type endpointSys struct {
	local netip.AddrPort
	rx    *net.UDPConn

	rxMu    sync.Mutex // guards rxB, rxR, rxSlots, rxSplit, rxGRO (ReadBatch scratch)
	rxB     *mmsg.Batch
	rxR     *mmsg.Reader
	rxSlots []byte // one rxSlotSize slot per message of rxB, rxSlotStride apart
	rxSplit rxSplit
	rxGRO   int // > 0: receive into the slots; counts down calls without GRO

	tx   []txSocket
	txMu sync.Mutex // guards txs (WriteBatch scratch)
	txs  txScratch
	seed uint64

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// Listen opens an endpoint: the receive socket bound to cfg.Local:cfg.Port
// and cfg.SendSockets send sockets bound to cfg.Local and source ports in
// cfg.SrcPortMin..cfg.SrcPortMax. All sockets are non-blocking and sit in
// Go's netpoller, so Close unblocks a ReadBatch.
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
	s.rx, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, fmt.Errorf("vxlan: listen on %s: %w", laddr, err)
	}
	s.local = s.rx.LocalAddr().(*net.UDPAddr).AddrPort()
	rc, err := s.rx.SyscallConn()
	if err != nil {
		s.rx.Close()
		return nil, fmt.Errorf("vxlan: socket %s: %w", laddr, err)
	}
	if err := setRecvBuffer(rc, rxSocketBuffer); err != nil {
		cfg.Logger.Warn("vxlan: cannot enlarge the receive buffer", "err", err)
	}
	if !cfg.NoOffload {
		if err := setGRO(rc); err != nil {
			cfg.Logger.Warn("vxlan: no UDP GRO on the receive socket; receiving datagram by datagram", "err", err)
		} else {
			e.ctr.groOn = true
		}
	}
	nmsg := min(cfg.BatchSize, rxMaxMsgs)
	s.rxB = mmsg.NewBatch(nmsg, mmsg.Options{Iovs: 2, Addrs: true, Control: unix.CmsgSpace(4)})
	s.rxR = mmsg.NewReader(rc, s.rxB)
	s.rxSlots = make([]byte, (nmsg-1)*rxSlotStride+rxSlotSize)
	s.rxSplit.msgs = make([]rxMsg, 0, nmsg)

	s.tx, err = openSendSockets(cfg, network)
	if err != nil {
		s.rx.Close()
		return nil, err
	}
	s.txs.init(e)

	e.table.setVNIs(cfg.VNIs)
	for _, r := range cfg.Remotes {
		e.table.add(r, 0, nil, SourceStatic)
	}
	ports := make([]uint16, len(s.tx))
	for i, t := range s.tx {
		ports[i] = t.port
	}
	cfg.Logger.Info("vxlan endpoint listening", "local", s.local, "source_ports", ports,
		"vnis", cfg.VNIs, "remotes", cfg.Remotes, "accept", cfg.Accept)
	return e, nil
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
		errs := []error{s.rx.Close()}
		for _, t := range s.tx {
			errs = append(errs, t.conn.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// ReadBatch receives VXLAN packets with one recvmmsg call each time the
// socket is readable and puts up to min(len(bufs), BatchSize()) inner
// frames at bufs[i][off:]; off must be at least VXLANHdrLen. It blocks
// until at least one packet passes, and returns net.ErrClosed after
// Close. It does not allocate. Meant for one goroutine at a time.
//
// With UDP_GRO on, one message may hold several datagrams of a flow,
// coalesced by the kernel; each is checked, counted and delivered on its
// own, and those that do not fit this call's buffers are delivered by the
// next call without a system call. Datagrams are received straight into
// the caller's buffers (at off-VXLANHdrLen, so the inner frame lands at
// off without a copy) until coalesced messages show up, then into
// scratch slots and copied out; see rxSplit for why.
func (e *Endpoint) ReadBatch(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off int) (int, error) {
	if off < VXLANHdrLen {
		return 0, ErrNoHeadroom
	}
	n := min(len(bufs), len(sizes), len(meta), e.cfg.BatchSize)
	if n == 0 {
		return 0, nil
	}
	s := &e.sys
	s.rxMu.Lock()
	for {
		if s.closed.Load() {
			s.rxMu.Unlock()
			return 0, net.ErrClosed
		}
		if s.rxSplit.pending() {
			if w := e.deliver(bufs, sizes, meta, off, n); w > 0 {
				s.rxMu.Unlock()
				return w, nil
			}
			continue
		}
		m := min(n, s.rxB.Cap())
		scratch := s.rxGRO > 0
		for i := range m {
			slot := s.slot(i)
			p0 := bufs[i][off-VXLANHdrLen:]
			switch {
			case scratch:
				s.rxB.SetBuf(i, slot)
			case len(p0) >= len(slot):
				s.rxB.SetBuf(i, p0)
			default:
				s.rxB.SetBufs(i, p0, slot[len(p0):])
			}
		}
		got, err := s.rxR.Read(m, 0)
		if err != nil {
			s.rxB.Release(m)
			s.rxMu.Unlock()
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				return 0, net.ErrClosed
			}
			return 0, fmt.Errorf("vxlan: recvmmsg on %s: %w", s.local, err)
		}
		var w int
		if !scratch && !s.anyGRO(got) {
			w = e.decap(bufs, sizes, meta, off, got) // the common case, as before GRO
		} else {
			e.collect(bufs, off, got, scratch)
			w = e.deliver(bufs, sizes, meta, off, n)
		}
		s.rxB.Release(m)
		if w > 0 {
			s.rxMu.Unlock()
			return w, nil
		}
	}
}

// anyGRO reports whether one of the got messages of s.rxB holds
// coalesced datagrams.
func (s *endpointSys) anyGRO(got int) bool {
	for i := range got {
		if s.rxB.Hdr(i).Hdr.Controllen != 0 && groSize(s.rxB.Control(i)) > 0 {
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
func (e *Endpoint) decap(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, got int) int {
	b := e.sys.rxB
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
func (s *endpointSys) slot(i int) []byte {
	return s.rxSlots[i*rxSlotStride : i*rxSlotStride+rxSlotSize : i*rxSlotStride+rxSlotSize]
}

// collect lists the got messages of s.rxB in s.rxSplit, reading each one's
// UDP_GRO segment size, counts the coalesced ones, and picks the layout of
// the next recvmmsg.
func (e *Endpoint) collect(bufs [][]byte, off, got int, scratch bool) {
	s := &e.sys
	b := s.rxB
	var groMsgs, groDgrams uint64 // coalesced messages, their datagrams
	msgs := s.rxSplit.msgs[:got]
	for i := range msgs {
		n := b.Len(i)
		g := groSize(b.Control(i))
		msgs[i].set(s.slot(i), bufs[i][off-VXLANHdrLen:], !scratch, n, g, b.AddrPort(i).Addr().Unmap(), b.Truncated(i))
		if msgs[i].gso < n {
			groMsgs++
			groDgrams += uint64((n + g - 1) / g)
		}
	}
	s.rxSplit.msgs, s.rxSplit.head = msgs, 0
	switch {
	case groMsgs > 0:
		s.rxGRO = rxGROLinger
		e.ctr.rxGROMsgs.Add(groMsgs)
		e.ctr.rxGRODgrams.Add(groDgrams)
	case s.rxGRO > 0:
		s.rxGRO--
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

// deliver hands pending datagrams to the caller through s.rxSplit and
// does the counting.
func (e *Endpoint) deliver(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, n int) int {
	var drops [numDropReasons]uint64
	w, bytes := e.sys.rxSplit.fill(bufs, sizes, meta, off, n, e.table.load(), e.cfg.Accept == AcceptMembers, &drops)
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
