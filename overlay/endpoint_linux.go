package overlay

import (
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
)

// ErrNoHeadroom is returned by ReadBatch when off < VXLANHdrLen: the
// header is received in front of the frame, so it needs the room.
var ErrNoHeadroom = errors.New("vxlan: ReadBatch offset smaller than the VXLAN header")

// endpointSys holds the sockets and the per-direction scratch space.
type endpointSys struct {
	local netip.AddrPort
	rx    *net.UDPConn

	rxMu sync.Mutex // guards rxB and rxR (ReadBatch scratch)
	rxB  *mmsg.Batch
	rxR  *mmsg.Reader

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
	s.rxB = mmsg.NewBatch(cfg.BatchSize, mmsg.Options{Addrs: true})
	s.rxR = mmsg.NewReader(rc, s.rxB)

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

// ReadBatch receives up to min(len(bufs), BatchSize()) VXLAN packets with
// one recvmmsg call each time the socket is readable. Each datagram is
// received at bufs[i][off-VXLANHdrLen:], so its inner frame lands at
// bufs[i][off:] with no copy; off must be at least VXLANHdrLen. Packets
// that are dropped leave a gap that the next good packet closes by a copy
// into the earlier buffer (only then is anything copied). It blocks until
// at least one packet passes, and returns net.ErrClosed after Close.
// It does not allocate. Meant for one goroutine at a time.
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
		for i := range n {
			s.rxB.SetBuf(i, bufs[i][off-VXLANHdrLen:])
		}
		got, err := s.rxR.Read(n, 0)
		if err != nil {
			s.rxB.Release(n)
			s.rxMu.Unlock()
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				return 0, net.ErrClosed
			}
			return 0, fmt.Errorf("vxlan: recvmmsg on %s: %w", s.local, err)
		}
		if w := e.decap(bufs, sizes, meta, off, got); w > 0 {
			s.rxB.Release(n)
			s.rxMu.Unlock()
			return w, nil
		}
	}
}

// decap validates the got datagrams in s.rxB, moves the good ones to the
// front, fills sizes and meta, counts, and returns how many are good.
func (e *Endpoint) decap(bufs [][]byte, sizes []int, meta []dataplane.TunnelMeta, off, got int) int {
	b := e.sys.rxB
	snap := e.table.load()
	members := e.cfg.Accept == AcceptMembers
	var drops [numDropReasons]uint64
	var bytes uint64
	w := 0
	for j := range got {
		if b.Truncated(j) {
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
