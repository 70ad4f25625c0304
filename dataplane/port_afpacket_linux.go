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

	"github.com/vxswitch/vxswitch/internal/mmsg"
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
	rx   *mmsg.Reader
	down bool // ENETDOWN seen: a read deadline polls for deletion

	// Send side: txMu serialises WriteBatch and guards tx.
	txMu sync.Mutex
	tx   *mmsg.Writer

	rxTooBig, txError, txDown atomic.Uint64
}

var _ Port = (*afpacketPort)(nil)

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
func OpenSystem(ifname string, opts SystemOptions) (Port, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.SocketBuffer <= 0 {
		opts.SocketBuffer = 4 << 20
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("system port %q: no such interface: %w", ifname, err)
	}
	// Protocol 0 until bind: the socket receives nothing, from no
	// interface, until it is bound to ours.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("system port %q: AF_PACKET socket: %w", ifname, err)
	}
	if err := setupPacketSocket(fd, ifi.Index, opts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("system port %q: %w", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "afpacket:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("system port %q: %w", ifname, err)
	}
	p := &afpacketPort{
		name:    ifname,
		ifindex: ifi.Index,
		file:    f,
		rc:      rc,
		batch:   opts.BatchSize,
		rx:      mmsg.NewReader(rc, mmsg.NewBatch(opts.BatchSize, mmsg.Options{Control: auxSpace})),
		tx:      mmsg.NewWriter(rc, mmsg.NewBatch(opts.BatchSize, mmsg.Options{})),
	}
	return p, nil
}

func setupPacketSocket(fd, ifindex int, opts SystemOptions) error {
	for _, o := range []struct {
		name      string
		level, op int
	}{
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING},
		{"PACKET_AUXDATA", unix.SOL_PACKET, unix.PACKET_AUXDATA},
		{"PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.op, 1); err != nil {
			return fmt.Errorf("set %s: %w", o.name, err)
		}
	}
	// FORCE needs CAP_NET_ADMIN; without it the kernel caps the size at
	// net.core.[rw]mem_max, which is good enough.
	for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], opts.SocketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], opts.SocketBuffer)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind AF_PACKET to ifindex %d: %w", ifindex, err)
	}
	mreq := &unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
		return fmt.Errorf("set promiscuous (PACKET_ADD_MEMBERSHIP): %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (p *afpacketPort) BatchSize() int { return p.batch }

// DropCounts returns the frames the port dropped itself.
func (p *afpacketPort) DropCounts() PortDrops {
	return PortDrops{RxTooBig: p.rxTooBig.Load(), TxError: p.txError.Load(), TxDown: p.txDown.Load()}
}

// ReadBatch receives up to min(len(bufs), BatchSize()) frames with one
// recvmmsg call, waiting in the netpoller until at least one frame is
// there. Frames that do not fit are dropped and counted (RxTooBig); if all
// of a batch were dropped it waits again. While the device is down it
// keeps waiting (frames flow again when it comes back up); once the device
// is deleted or leaves the namespace it returns ErrPortGone.
func (p *afpacketPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	n := min(len(bufs), p.batch)
	if n == 0 {
		return 0, nil
	}
	b := p.rx.Batch()
	for i := range n {
		b.SetBuf(i, bufs[i][off:])
	}
	defer b.Release(n) // one defer per batch, not per frame
	for {
		got, err := p.rx.Read(n, unix.MSG_TRUNC)
		if err != nil {
			if err = p.readError(err); err != nil {
				return 0, err
			}
			continue
		}
		if p.down {
			p.down = false
			_ = p.file.SetReadDeadline(time.Time{})
		}
		out := 0
		for i := range got {
			frame := bufs[i][off:]
			size := b.Len(i)
			if b.Truncated(i) || size > len(frame) {
				p.rxTooBig.Add(1)
				continue
			}
			if tpid, tci, ok := auxVLAN(b.Control(i)); ok {
				if size, ok = insertVLAN(frame, size, tpid, tci); !ok {
					p.rxTooBig.Add(1)
					continue
				}
			}
			if out != i {
				// A frame before this one was dropped: keep the
				// returned frames dense. Drops are rare, so is the copy.
				copy(bufs[out][off:], frame[:size])
			}
			sizes[out] = size
			out++
		}
		if out > 0 {
			return out, nil
		}
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

// WriteBatch sends every frame with sendmmsg, BatchSize() frames per call,
// waiting for the socket to drain when its buffer is full. A frame the
// kernel refuses is skipped and counted (TxError); when the device queue
// is full (ENOBUFS) or the device is down, the rest of the batch is dropped
// and counted rather than tried frame by frame. It returns the number of
// frames the kernel took, and ErrPortGone once the device is deleted.
func (p *afpacketPort) WriteBatch(bufs [][]byte) (int, error) {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	b := p.tx.Batch()
	sent := 0
	for start := 0; start < len(bufs); start += p.batch {
		k := min(len(bufs)-start, p.batch)
		for i := range k {
			b.SetBuf(i, bufs[start+i])
		}
		for from := 0; from < k; {
			next, err := p.tx.Write(from, k, 0)
			sent += next - from
			from = next
			if err == nil {
				break
			}
			switch {
			case p.closed.Load():
				b.Release(k)
				return sent, net.ErrClosed
			case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
				b.Release(k)
				return sent, ErrPortGone
			case errors.Is(err, unix.ENETDOWN):
				p.txDown.Add(uint64(len(bufs) - start - from))
				b.Release(k)
				return sent, nil
			case errors.Is(err, unix.ENOBUFS):
				p.txError.Add(uint64(k - from))
				from = k
			default: // EMSGSIZE, EINVAL, ...: this frame only
				p.txError.Add(1)
				from++
			}
		}
		b.Release(k)
	}
	return sent, nil
}

// Close closes the socket; a ReadBatch in progress returns net.ErrClosed.
// It is safe to call more than once.
func (p *afpacketPort) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.closeErr = p.file.Close()
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
			if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tpid = unix.ETH_P_8021Q
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = aux.Vlan_tpid
			}
			return tpid, aux.Vlan_tci, true
		}
		ctrl = rest
	}
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
