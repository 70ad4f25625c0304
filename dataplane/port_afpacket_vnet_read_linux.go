package dataplane

import (
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/vnet"
)

// The system port's receive path. Every message carries a virtio_net_hdr
// (PACKET_VNET_HDR), read into a per-message scratch by a second iovec, so
// the frame itself lands where it is wanted without a copy.
//
// Where frames are received:
//
//   - Straight into the caller's buffers (readDirect), when each can hold
//     a 64 KiB super-frame, as the switch's can. Plain frames are finished
//     in place. A super-frame cannot be cut where it lies (its segments
//     need the slots of the frames behind it), so it and the rest of that
//     receive are copied into the port's backlog, and the port switches to
//     super-frame mode.
//   - Into the backlog's 64 KiB slots (readBacklog), in super-frame mode
//     (superBatch messages at a time), or always when the caller's buffers
//     are smaller than a super-frame: the port delivers wire-sized frames,
//     so small buffers are within the Port contract and must not cost the
//     first super-frame. Frames are cut or copied from there into bufs.
//
// Whatever the backlog still holds when bufs is full is returned first by
// the next call.

const (
	// superBatch is how many messages one receive takes in super-frame
	// mode: 8 super-frames are 512 KiB, over 300 wire frames, and stay in
	// the cache while they are cut.
	superBatch = 8
	// superStay is how many receives without a super-frame it takes to
	// leave super-frame mode.
	superStay = 16
)

// ReadReady reports whether ReadBatch would return at once: frames are
// left in the backlog, an error waits to be reported, or the socket has
// something to read.
func (p *afpacketPort) ReadReady() bool {
	if p.closed.Load() {
		return true // ReadBatch says so
	}
	if p.ring != nil {
		p.ringMu.Lock()
		defer p.ringMu.Unlock()
		return !p.q.empty() || p.rxErr != nil || (p.ring.mem != nil && p.ring.ready())
	}
	return !p.q.empty() || p.rxErr != nil || p.probe.Readable()
}

// PollConn is the socket, which is readable when its ring holds a frame
// or its queue does (PollConner).
func (p *afpacketPort) PollConn() syscall.RawConn { return p.rc }

// ReadBatch receives frames with recvmmsg, waiting in the netpoller until
// at least one is there, and returns them finished: checksums completed,
// super-frames cut into segments, VLAN tags back in place. A super-frame
// may yield more frames than bufs has room for; the rest are kept and
// returned first by the next call. Frames that do not fit are dropped and
// counted (RxTooBig), as are frames whose offload work cannot be done
// (RxOffload); if all of a batch were dropped it waits again. While the
// device is down it keeps waiting (frames flow again when it comes back
// up); once the device is deleted or leaves the namespace it returns
// ErrPortGone.
func (p *afpacketPort) ReadBatch(bufs [][]byte, sizes []int, off int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if p.ring != nil {
		return p.readRing(bufs, sizes, off)
	}
	sizes = sizes[:len(bufs)]
	out := p.q.drain(bufs, sizes, off)
	for out < len(bufs) {
		if out == 0 && p.rxErr != nil {
			err := p.rxErr
			p.rxErr = nil
			return 0, err
		}
		// Wait only while there is nothing to return. In super-frame mode
		// keep receiving while there is room; otherwise one receive per
		// call, as the frames that are ready all come in one.
		wait := out == 0
		n := min(len(bufs)-out, p.batch)
		var got int
		var err error
		switch {
		case p.superReads > 0:
			err = p.readBacklog(min(n, superBatch), wait)
		case !holdSuper(bufs[out:out+n], off):
			err = p.readBacklog(n, wait)
		default:
			got, err = p.readDirect(bufs[out:out+n], sizes[out:], off, wait)
		}
		if err != nil {
			if !wait {
				if !errors.Is(err, unix.EAGAIN) {
					p.rxErr = p.readError(err)
				}
				break
			}
			if err = p.readError(err); err != nil {
				return 0, err
			}
			continue
		}
		p.backUp()
		out += got
		out += p.q.drain(bufs[out:], sizes[out:], off)
		if p.superReads == 0 && out > 0 {
			break
		}
	}
	return out, nil
}

// holdSuper reports whether every buffer can take a super-frame after off.
func holdSuper(bufs [][]byte, off int) bool {
	for _, b := range bufs {
		if len(b)-off < maxSuperFrame {
			return false
		}
	}
	return true
}

// recv receives up to n messages into the rx batch: waiting in the
// netpoller, or, when wait is false, only those already there (EAGAIN if
// none).
func (p *afpacketPort) recv(n int, wait bool) (int, error) {
	if wait {
		return p.rx.Read(n, unix.MSG_TRUNC)
	}
	p.tryN, p.tryGot, p.tryErr = n, 0, nil
	if err := p.rc.Control(p.tryFn); err != nil {
		return 0, err
	}
	return p.tryGot, p.tryErr
}

func (p *afpacketPort) tryRecv(fd uintptr) {
	p.tryGot, p.tryErr = p.rx.Batch().Recv(int(fd), p.tryN, unix.MSG_TRUNC)
}

// hdr returns message i's virtio_net_hdr scratch.
func (p *afpacketPort) hdr(i int) []byte {
	return p.rxHdr[i*vnet.HdrLen : (i+1)*vnet.HdrLen : (i+1)*vnet.HdrLen]
}

// readDirect receives up to len(bufs) messages into bufs[i][off:] and
// returns how many finished frames it left in bufs, dense from bufs[0].
// From the first super-frame on, frames go to the backlog instead.
func (p *afpacketPort) readDirect(bufs [][]byte, sizes []int, off int, wait bool) (int, error) {
	n := len(bufs)
	b := p.rx.Batch()
	for i := range n {
		b.SetBufs(i, p.hdr(i), bufs[i][off:])
	}
	defer b.Release(n) // one defer per batch, not per frame
	got, err := p.recv(n, wait)
	if err != nil {
		return 0, err
	}
	out := 0
	for i := range got {
		frame := bufs[i][off:]
		h, size, ok := p.received(i, len(frame))
		if !ok {
			continue
		}
		if h.GSO() != vnet.GSONone || !p.q.empty() {
			p.superReads = superStay
			p.toBacklog(i, frame[:size], h)
			continue
		}
		if size, ok = p.retag(i, frame, size, &h); !ok {
			continue
		}
		if vnet.FinishChecksum(frame[:size], h) != nil {
			p.rxOffload.Add(1)
			continue
		}
		if out != i {
			// A frame before this one was dropped: keep the returned
			// frames dense. Drops are rare, so is the copy.
			copy(bufs[out][off:], frame[:size])
		}
		sizes[out] = size
		out++
	}
	return out, nil
}

// toBacklog copies message i's frame into the backlog and puts its VLAN
// tag back there, where there is room for it.
func (p *afpacketPort) toBacklog(i int, frame []byte, h vnet.Hdr) {
	slot, ok := p.q.next()
	if !ok || len(frame) > len(slot) {
		// Cannot happen: the backlog is empty when a receive starts and
		// has a slot per message; slots hold the largest super-frame.
		p.rxTooBig.Add(1)
		return
	}
	size := copy(slot, frame)
	if size, ok = p.retag(i, slot, size, &h); ok {
		p.q.commit(h, size)
	}
}

// readBacklog receives up to n messages (n <= p.batch) straight into the
// empty backlog's slots.
func (p *afpacketPort) readBacklog(n int, wait bool) error {
	b := p.rx.Batch()
	for i := range n {
		b.SetBufs(i, p.hdr(i), p.q.slot(i))
	}
	defer b.Release(n)
	got, err := p.recv(n, wait)
	if err != nil {
		return err
	}
	sawSuper := false
	for i := range got {
		slot := p.q.slots[i]
		h, size, ok := p.received(i, len(slot))
		if !ok {
			continue
		}
		if size, ok = p.retag(i, slot, size, &h); !ok {
			continue
		}
		sawSuper = sawSuper || h.GSO() != vnet.GSONone
		p.q.commitSlot(i, h, size)
	}
	switch {
	case sawSuper:
		p.superReads = superStay
	case p.superReads > 0:
		p.superReads--
	}
	return nil
}

// received returns message i's virtio_net_hdr and frame length, or false
// (counted) when the frame was longer than room and so cut short.
func (p *afpacketPort) received(i, room int) (vnet.Hdr, int, bool) {
	b := p.rx.Batch()
	h, _ := vnet.Decode(p.hdr(i))
	size := b.Len(i) - vnet.HdrLen
	if b.Truncated(i) || size > room || size < 0 {
		p.rxTooBig.Add(1)
		return h, 0, false
	}
	return h, size, true
}

// retag puts message i's VLAN tag back into frame[:size], if the kernel
// took one out, and returns the new size. The kernel counts csum_start
// from the untagged frame, so it moves along with the payload. A frame
// without room for the tag is dropped and counted.
func (p *afpacketPort) retag(i int, frame []byte, size int, h *vnet.Hdr) (int, bool) {
	tpid, tci, ok := auxVLAN(p.rx.Batch().Control(i))
	if !ok {
		return size, true
	}
	if size, ok = insertVLAN(frame, size, tpid, tci); !ok {
		p.rxTooBig.Add(1)
		return size, false
	}
	tagMoved(h)
	return size, true
}

// tagMoved accounts for a VLAN tag put back in front of the headers: the
// kernel counts csum_start from the untagged frame.
func tagMoved(h *vnet.Hdr) {
	if h.Flags&vnet.FlagNeedsCsum != 0 {
		h.CsumStart += 4
	}
}

// backUp ends the polling for deletion that a device going down started,
// once frames flow again.
func (p *afpacketPort) backUp() {
	if p.down {
		p.down = false
		_ = p.file.SetReadDeadline(time.Time{})
	}
}
