package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/vnet"
)

// The system port's receive ring (PACKET_RX_RING, TPACKET_V2).
//
// recvmmsg costs about 1 µs per frame on this kind of machine: each frame
// is an skb queued on the socket, dequeued, copied out and freed inside the
// call. With a ring the kernel copies each frame into a slot of memory
// shared with us as it arrives, and reading a frame is a load of its
// status word: no system call while frames keep coming (FACTS.md: 40-170
// ns per frame). TPACKET_V3 packs frames tighter but hands a block over
// only when it is full or its timer (1 ms or more) fires, which a ping
// would wait for; a V2 slot is handed over, and the reader woken, per
// frame.
//
// Slots are 2 KiB: a 1500-byte frame with its VLAN tag, the virtio_net_hdr
// and the ring's own headers. A bigger frame (a TSO super-frame, a jumbo
// frame) is too big for a slot; with PACKET_COPY_THRESH the kernel then
// queues the whole frame on the socket as before, and marks the slot it
// holds in the ring's order TP_STATUS_COPY. The slot is a placeholder:
// the frame is read from the socket queue with recvmsg when the walk
// reaches it, so frames stay in order whatever their size.

const (
	// ringFrameSize is the room of one slot.
	ringFrameSize = 2048
	// DefaultRingFrames is the number of slots unless SystemOptions says
	// otherwise: 4 MiB of ring, 2 ms of 64-byte frames at 1 Mpps, as much
	// as the 4 MiB socket buffer held before.
	DefaultRingFrames = 2048
	// ringBlockSize is what the kernel allocates at once for the ring: a
	// power-of-two number of pages holding a whole number of slots.
	ringBlockSize = 64 << 10
)

// rxRing is a mapped TPACKET_V2 receive ring. It is read only by the
// goroutine that calls ReadBatch, under the port's ringMu.
type rxRing struct {
	mem    []byte
	frames int
	head   int // next slot to look at
}

// setupRing gives the unbound socket fd a receive ring of frames slots
// and maps it. It must come after PACKET_VNET_HDR (the kernel refuses that
// once a ring exists) and before bind, so that nothing is queued on the
// socket before the ring is there to hold the placeholders.
func setupRing(fd, frames int) (*rxRing, error) {
	per := ringBlockSize / ringFrameSize
	blocks := (frames + per - 1) / per
	frames = blocks * per
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("set PACKET_VERSION TPACKET_V2: %w", err)
	}
	req := unix.TpacketReq{
		Block_size: ringBlockSize,
		Block_nr:   uint32(blocks),
		Frame_size: ringFrameSize,
		Frame_nr:   uint32(frames),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set PACKET_RX_RING (%d slots of %d bytes): %w", frames, ringFrameSize, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return nil, fmt.Errorf("set PACKET_COPY_THRESH: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED|unix.MAP_POPULATE)
	if err != nil {
		// MAP_LOCKED can fail under RLIMIT_MEMLOCK; the kernel's ring
		// pages are pinned anyway, so lose only the flag.
		mem, err = unix.Mmap(fd, 0, blocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return nil, fmt.Errorf("mmap the receive ring: %w", err)
	}
	return &rxRing{mem: mem, frames: frames}, nil
}

// slot returns slot i and its header.
func (r *rxRing) slot(i int) ([]byte, *unix.Tpacket2Hdr) {
	s := r.mem[i*ringFrameSize : (i+1)*ringFrameSize : (i+1)*ringFrameSize]
	return s, (*unix.Tpacket2Hdr)(unsafe.Pointer(&s[0]))
}

// ready reports whether the kernel has handed the head slot over.
func (r *rxRing) ready() bool {
	_, h := r.slot(r.head)
	return atomic.LoadUint32(&h.Status)&unix.TP_STATUS_USER != 0
}

// release hands the head slot back to the kernel and moves on.
func (r *rxRing) release(h *unix.Tpacket2Hdr) {
	atomic.StoreUint32(&h.Status, unix.TP_STATUS_KERNEL)
	if r.head++; r.head == r.frames {
		r.head = 0
	}
}

func (r *rxRing) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// readRing is ReadBatch with a ring: frames from the backlog first, then
// from the ring, waiting in the netpoller while there is nothing.
func (p *afpacketPort) readRing(bufs [][]byte, sizes []int, off int) (int, error) {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	if p.ring.mem == nil {
		return 0, net.ErrClosed
	}
	sizes = sizes[:len(bufs)]
	for {
		// takeRing stops only when bufs is full, an error waits or the
		// ring is empty, so with nothing taken it is time to wait.
		out := p.takeRing(bufs, sizes, off)
		if out > 0 {
			p.backUp()
			return out, nil
		}
		if err := p.rxErr; err != nil {
			p.rxErr = nil
			return 0, err
		}
		if err := p.waitRing(); err != nil {
			if err = p.readError(err); err != nil {
				return 0, err
			}
		}
	}
}

// takeRing moves frames into bufs until bufs is full or the ring has no
// more, and returns how many. Plain frames are copied from their slot
// straight into bufs; super-frames, frames queued on the socket
// (TP_STATUS_COPY) and any frame behind one of them while it is not
// handed out yet go through the backlog, which cuts super-frames.
func (p *afpacketPort) takeRing(bufs [][]byte, sizes []int, off int) int {
	out := 0
	for {
		out += p.q.drain(bufs[out:], sizes[out:], off)
		if out == len(bufs) || !p.q.empty() || p.rxErr != nil || !p.ring.ready() {
			return out
		}
		slot, h := p.ring.slot(p.ring.head)
		if p.takeSlot(slot, h, bufs[out], off, &sizes[out]) {
			out++
		}
		p.ring.release(h)
	}
}

// takeSlot takes the frame in slot: into dst[off:] (setting *size and
// returning true) when it is a plain frame, into the backlog otherwise.
// Frames that cannot be taken are dropped and counted.
func (p *afpacketPort) takeSlot(slot []byte, h *unix.Tpacket2Hdr, dst []byte, off int, size *int) bool {
	status := atomic.LoadUint32(&h.Status)
	if status&unix.TP_STATUS_COPY != 0 {
		p.recvCopied()
		return false
	}
	mac, snap := int(h.Mac), int(h.Snaplen)
	if snap < int(h.Len) || mac < vnet.HdrLen || mac+snap > len(slot) {
		// Cut short, and the kernel could not queue it whole (the
		// socket buffer was full).
		p.rxTooBig.Add(1)
		return false
	}
	hdr, _ := vnet.Decode(slot[mac-vnet.HdrLen : mac])
	start := mac
	if tpid, tci, ok := statusVLAN(status, h.Vlan_tpid, h.Vlan_tci); ok {
		// Put the tag back by moving the addresses 4 bytes to the front,
		// over the virtio_net_hdr already read: no copy of the frame.
		const macs = 12
		if snap < macs {
			p.rxTooBig.Add(1)
			return false
		}
		start = mac - 4
		copy(slot[start:], slot[mac:mac+macs])
		binary.BigEndian.PutUint16(slot[start+macs:], tpid)
		binary.BigEndian.PutUint16(slot[start+macs+2:], tci)
		tagMoved(&hdr)
	}
	frame := slot[start : mac+snap]
	if hdr.GSO() != vnet.GSONone {
		buf, ok := p.q.next() // the backlog is empty here
		if !ok || len(frame) > len(buf) {
			p.rxTooBig.Add(1)
			return false
		}
		p.q.commit(hdr, copy(buf, frame))
		return false
	}
	if len(frame) > len(dst)-off {
		p.rxTooBig.Add(1)
		return false
	}
	n := copy(dst[off:], frame)
	if vnet.FinishChecksum(dst[off:off+n], hdr) != nil {
		p.rxOffload.Add(1)
		return false
	}
	*size = n
	return true
}

// recvCopied reads the frame a TP_STATUS_COPY slot stands for from the
// socket queue into the backlog (empty here), with its tag put back.
func (p *afpacketPort) recvCopied() {
	buf, _ := p.q.next()
	b := p.rx.Batch()
	b.SetBufs(0, p.hdr(0), buf)
	got, err := p.recv(1, false)
	b.Release(1)
	switch {
	case err != nil && !errors.Is(err, unix.EAGAIN):
		p.rxErr = p.readError(err)
		return
	case got == 0 || err != nil:
		// The placeholder's frame is not there; cannot happen, as the
		// kernel queues it before it hands the slot over.
		p.rxTooBig.Add(1)
		return
	}
	hdr, size, ok := p.received(0, len(buf))
	if !ok {
		return
	}
	if size, ok = p.retag(0, buf, size, &hdr); ok {
		p.q.commit(hdr, size)
	}
}

// waitRing waits in the netpoller until the ring has a frame or the socket
// an error (ENETDOWN when the device goes down), which it returns.
func (p *afpacketPort) waitRing() error {
	p.waitErr = nil
	if err := p.rc.Read(p.waitFn); err != nil {
		return err
	}
	return p.waitErr
}

// ringWaitDone is the netpoller's check: a frame, or a socket error. The
// error is read every time the ring is found empty, also before the first
// wait: one that came while frames were being taken woke nobody.
func (p *afpacketPort) ringWaitDone(fd uintptr) bool {
	if p.ring.ready() {
		return true
	}
	e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		p.waitErr = err
	case e != 0:
		p.waitErr = unix.Errno(e)
	default:
		return false
	}
	return true
}

// closeRing unmaps the ring once no ReadBatch can be using it; Close calls
// it after closing the socket, which ends a ReadBatch that is waiting.
func (p *afpacketPort) closeRing() {
	if p.ring == nil {
		return
	}
	p.ringMu.Lock()
	p.ring.unmap()
	p.ringMu.Unlock()
}
