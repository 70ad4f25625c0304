package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/busypoll"
	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/vnet"
)

// DefaultBatchSize is how many frames a port moves per system call unless
// its options say otherwise.
const DefaultBatchSize = 64

// SystemOptions tunes a system port (an existing interface reached through
// an AF_PACKET socket). The zero value is ready to use.
type SystemOptions struct {
	// BatchSize is the most frames one recvmmsg/sendmmsg call moves;
	// 0 means DefaultBatchSize.
	BatchSize int
	// SocketBuffer is the socket's receive and send buffer in bytes; 0
	// means 4 MiB, enough for a burst of a few thousand frames while the
	// reader is busy. The kernel default (about 200 KiB) holds only ~270
	// small frames.
	SocketBuffer int
	// Queues is the number of sockets: 0 or 1 opens one socket; more (up
	// to MaxQueues) opens that many in one PACKET_FANOUT group, returned
	// as a MultiQueuePort (see openFanout).
	Queues int
	// RingFrames is the number of slots of each socket's receive ring
	// (see port_afpacket_ring_linux.go); 0 means DefaultRingFrames. A
	// negative value opens no ring: frames are received with recvmmsg.
	RingFrames int
}

// PortDrops counts frames a port dropped on its own, below the forwarding
// pipeline's counters.
type PortDrops struct {
	// RxTooBig counts received frames that did not fit the caller's buffer:
	// dropped whole, never truncated.
	RxTooBig uint64
	// TxError counts frames the kernel refused (EMSGSIZE over the MTU,
	// ENOBUFS when the device queue is full, EINVAL for a runt).
	TxError uint64
	// TxDown counts frames not sent because the device was down.
	TxDown uint64
	// RxOffload counts received frames whose offload work could not be
	// done: a super-frame that cannot be segmented (GSO type unknown or
	// UFO, headers malformed or unsupported, such as IPv6 extension
	// headers), a checksum to finish that lies outside the frame, or a
	// frame the kernel could not describe in a virtio_net_hdr. Dropped
	// whole, never forwarded half done.
	RxOffload uint64
	// RxOverflow counts frames the kernel dropped because the port's
	// receive ring (or socket buffer) was full: the reader fell behind.
	RxOverflow uint64
}

// A DropCounter reports the drops a port counted itself. Both port types
// of this package implement it.
type DropCounter interface {
	DropCounts() PortDrops
}

// downPoll is how often a ReadBatch on a device that went down checks
// whether the device was deleted. The kernel wakes readers when a device
// goes down (ENETDOWN) but not when a down device is unregistered, so this
// polling is the only way to notice; it runs only while the device is down.
const downPoll = 50 * time.Millisecond

// sizeofAuxdata is sizeof(struct tpacket_auxdata); x/sys has the type
// but not its size.
const sizeofAuxdata = int(unsafe.Sizeof(unix.TpacketAuxdata{}))

// auxSpace is the control buffer per message for PACKET_AUXDATA.
var auxSpace = unix.CmsgSpace(sizeofAuxdata)

// afpacketPort is a system port: an AF_PACKET SOCK_RAW socket bound to one
// interface, promiscuous, non-blocking and registered with Go's netpoller.
type afpacketPort struct {
	name    string
	ifindex int
	file    *os.File
	rc      syscall.RawConn
	batch   int

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Receive side: used by the one goroutine that calls ReadBatch.
	rx    *mmsg.Reader
	rxHdr []byte // one virtio_net_hdr per message, vnet.HdrLen each
	down  bool   // ENETDOWN seen: a read deadline polls for deletion
	// q holds super-frames being cut and the frames behind them.
	q rxBacklog
	// superReads > 0 is super-frame mode: receive into q's 64 KiB slots,
	// superBatch messages at a time. Seeing a super-frame sets it to
	// superStay; each receive without one counts it down.
	superReads int
	rxErr      error // an error a non-waiting receive ran into, for the next call
	// A receive that does not wait (rc.Control(tryFn)), made once.
	tryFn        func(fd uintptr)
	tryN, tryGot int
	probe        *busypoll.Probe
	tryErr       error
	// The receive ring, if the port has one; ringMu keeps Close from
	// unmapping it under a ReadBatch.
	ringMu  sync.Mutex
	ring    *rxRing
	waitFn  func(fd uintptr) bool
	waitErr error

	// Send side: txMu serialises WriteBatch and guards the rest (see
	// port_afpacket_tx_linux.go).
	txMu sync.Mutex
	tx   *mmsg.Writer
	txw  txStage

	rxTooBig, rxOffload, txError, txDown atomic.Uint64
	rxOverflow                           atomic.Uint64 // from PACKET_STATISTICS
}

var (
	_ Port        = (*afpacketPort)(nil)
	_ ReadReadier = (*afpacketPort)(nil)
)

// OpenSystem attaches a system port to the existing interface ifname: a
// veth, a TAP that QEMU or libvirt holds open, a physical NIC. The socket
// is bound to the interface, receives every frame on it (promiscuous),
// ignores the frames it sends itself (PACKET_IGNORE_OUTGOING) and sends
// past the qdisc (PACKET_QDISC_BYPASS: frames are not queued, and tcpdump
// on the interface does not see them). The socket is created in the
// calling thread's network namespace.
//
// Frames whose 802.1Q tag the kernel moved into metadata (it does so for
// every tagged frame it receives) get their tag back in place, so
// ReadBatch always returns frames as they were on the wire.
//
// The socket has PACKET_VNET_HDR: with checksum offload and TSO on (the
// default on veths and TAPs) the kernel hands over frames with unfinished
// checksums and TCP/UDP super-frames of up to 64 KB, and the virtio_net
// header in front of each says what is left to do. ReadBatch does it:
// checksums are finished in place, super-frames are cut into wire-sized
// segments (see rxBacklog), so what it returns is always what a wire
// would carry.
//
// Frames are received through a TPACKET_V2 ring shared with the kernel
// (see port_afpacket_ring_linux.go) unless opts.RingFrames < 0.
//
// With opts.Queues > 1 it opens that many such sockets in one fanout group
// (see openFanout) and returns them as a MultiQueuePort.
func OpenSystem(ifname string, opts SystemOptions) (Port, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.SocketBuffer <= 0 {
		opts.SocketBuffer = 4 << 20
	}
	if opts.Queues < 0 || opts.Queues > MaxQueues {
		return nil, fmt.Errorf("system port %q: %d queues: want 1-%d", ifname, opts.Queues, MaxQueues)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("system port %q: no such interface: %w", ifname, err)
	}
	if opts.Queues > 1 {
		return openFanout(ifname, ifi.Index, opts)
	}
	// Protocol 0 until bind: the socket receives nothing, from no
	// interface, until it is bound to ours.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("system port %q: AF_PACKET socket: %w", ifname, err)
	}
	ring, err := setupPacketSocket(fd, ifi.Index, opts)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("system port %q: %w", ifname, err)
	}
	p, err := newPacketQueue(ifname, ifi.Index, fd, ring, opts)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newPacketQueue makes the port of the set-up packet socket fd and its
// receive ring (nil for none); it owns both from then on, also when it
// fails.
func newPacketQueue(ifname string, ifindex, fd int, ring *rxRing, opts SystemOptions) (*afpacketPort, error) {
	f := os.NewFile(uintptr(fd), "afpacket:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		if ring != nil {
			ring.unmap()
		}
		return nil, fmt.Errorf("system port %q: %w", ifname, err)
	}
	p := &afpacketPort{
		name:    ifname,
		ifindex: ifindex,
		file:    f,
		rc:      rc,
		batch:   opts.BatchSize,
		rx:      mmsg.NewReader(rc, mmsg.NewBatch(opts.BatchSize, mmsg.Options{Iovs: 2, Control: auxSpace})),
		rxHdr:   make([]byte, opts.BatchSize*vnet.HdrLen),
		q:       newRxBacklog(opts.BatchSize),
		tx:      mmsg.NewWriter(rc, mmsg.NewBatch(opts.BatchSize, mmsg.Options{Iovs: 2})),
		ring:    ring,
	}
	p.tryFn = p.tryRecv
	p.waitFn = p.ringWaitDone
	p.txw = newTxStage(opts.BatchSize)
	p.probe = busypoll.NewProbe(rc)
	return p, nil
}

// setupPacketSocket sets the unbound packet socket fd up, binds it to
// ifindex and, unless opts.RingFrames < 0, gives it a receive ring.
func setupPacketSocket(fd, ifindex int, opts SystemOptions) (ring *rxRing, err error) {
	for _, o := range []struct {
		name      string
		level, op int
	}{
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING},
		{"PACKET_AUXDATA", unix.SOL_PACKET, unix.PACKET_AUXDATA},
		{"PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS},
		// Before bind, as the kernel requires: a virtio_net_hdr in front
		// of every frame, both ways.
		{"PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.op, 1); err != nil {
			return nil, fmt.Errorf("set %s: %w", o.name, err)
		}
	}
	// FORCE needs CAP_NET_ADMIN; without it the kernel caps the size at
	// net.core.[rw]mem_max, which is good enough.
	for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], opts.SocketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], opts.SocketBuffer)
		}
	}
	if opts.RingFrames >= 0 {
		frames := opts.RingFrames
		if frames == 0 {
			frames = DefaultRingFrames
		}
		if ring, err = setupRing(fd, frames); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				ring.unmap()
				ring = nil
			}
		}()
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind AF_PACKET to ifindex %d: %w", ifindex, err)
	}
	mreq := &unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
		return nil, fmt.Errorf("set promiscuous (PACKET_ADD_MEMBERSHIP): %w", err)
	}
	return ring, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (p *afpacketPort) BatchSize() int { return p.batch }

// DropCounts returns the frames the port dropped itself, and those the
// kernel dropped for it because its receive ring or queue was full.
func (p *afpacketPort) DropCounts() PortDrops {
	// PACKET_STATISTICS counts since it was last read, so each read adds
	// what is new; it fails once the socket is closed, which keeps the sum.
	_ = p.rc.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			p.rxOverflow.Add(uint64(st.Drops))
		}
	})
	return PortDrops{
		RxTooBig:   p.rxTooBig.Load() + p.q.tooBig.Load(),
		TxError:    p.txError.Load(),
		TxDown:     p.txDown.Load(),
		RxOffload:  p.rxOffload.Load() + p.q.offload.Load(),
		RxOverflow: p.rxOverflow.Load(),
	}
}

// readError decides what a failed read means: nil to read again, or the
// error for the caller.
func (p *afpacketPort) readError(err error) error {
	if p.closed.Load() {
		return net.ErrClosed
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && p.down,
		errors.Is(err, unix.ENETDOWN):
		// The device went down, or is down: ENETDOWN comes once, when it
		// goes down (also on the way to being deleted).
		if p.deviceGone() {
			return ErrPortGone
		}
		p.down = true
		_ = p.file.SetReadDeadline(time.Now().Add(downPoll))
		return nil
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return ErrPortGone
	case errors.Is(err, unix.EINTR), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
		return nil
	case errors.Is(err, unix.EINVAL):
		// The kernel could not put a frame's offload state into a
		// virtio_net_hdr (a GSO type virtio has no name for, such as a
		// tunnel's) and dropped the frame.
		p.rxOffload.Add(1)
		return nil
	}
	return fmt.Errorf("system port %q: recvmmsg: %w", p.name, err)
}

// deviceGone reports whether the socket lost its interface. When the
// device is unregistered (deleted, or moved to another namespace) the
// kernel unbinds the socket and getsockname reports ifindex -1.
func (p *afpacketPort) deviceGone() bool {
	var sa unix.Sockaddr
	var serr error
	err := p.rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) })
	if err != nil || serr != nil {
		return false // closed, or cannot tell: read again and see
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	return !ok || ll.Ifindex != p.ifindex
}

// Close closes the socket; a ReadBatch in progress returns net.ErrClosed.
// It is safe to call more than once.
func (p *afpacketPort) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.closeErr = p.file.Close()
		p.closeRing()
	})
	return p.closeErr
}

// auxVLAN returns the 802.1Q/802.1ad tag the kernel took out of a received
// frame, from its PACKET_AUXDATA control message. The kernel strips the
// outer tag of every tagged frame it receives (skb_vlan_untag, or the
// NIC's rx-vlan offload) before AF_PACKET sees it.
func auxVLAN(ctrl []byte) (tpid, tci uint16, ok bool) {
	for {
		level, typ, data, rest, more := mmsg.NextCmsg(ctrl)
		if !more {
			return 0, 0, false
		}
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && len(data) >= sizeofAuxdata {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&data[0]))
			return statusVLAN(aux.Status, aux.Vlan_tpid, aux.Vlan_tci)
		}
		ctrl = rest
	}
}

// statusVLAN reads the tag out of the status, TPID and TCI fields that
// both PACKET_AUXDATA and a ring slot's header carry: none unless
// TP_STATUS_VLAN_VALID, and 802.1Q unless the TPID is given.
func statusVLAN(status uint32, tpid, tci uint16) (uint16, uint16, bool) {
	if status&unix.TP_STATUS_VLAN_VALID == 0 {
		return 0, 0, false
	}
	if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
		tpid = unix.ETH_P_8021Q
	}
	return tpid, tci, true
}

// insertVLAN puts a VLAN tag (tpid, tci) back into frame[:size] after the
// two MAC addresses, moving the rest of the frame 4 bytes towards the end
// of the buffer, and returns the new size. It fails when the tagged frame
// does not fit the buffer or the frame is shorter than two addresses.
//
// The move costs a copy of the frame, only for tagged frames. Moving the
// 12 address bytes into the headroom instead would be cheaper, but the
// Port contract puts every frame at bufs[i][off:].
func insertVLAN(frame []byte, size int, tpid, tci uint16) (int, bool) {
	const macs = 12
	if size < macs || size+4 > len(frame) {
		return size, false
	}
	copy(frame[macs+4:size+4], frame[macs:size])
	binary.BigEndian.PutUint16(frame[macs:], tpid)
	binary.BigEndian.PutUint16(frame[macs+2:], tci)
	return size + 4, true
}
