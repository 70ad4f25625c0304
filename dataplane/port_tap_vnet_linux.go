package dataplane

import "github.com/vxswitch/vxswitch/internal/vnet"

// The internal port's offload work on receive. The TAP offers checksum
// offload and TSO, so the kernel hands over frames whose checksum is left
// to finish (NEEDS_CSUM) and TCP super-frames of up to 64 KiB (gso_size
// set), as a system port's packet socket does; the cutting is the system
// port's rxBacklog, with one slot.
//
// A read lands in the caller's buffer, the slot catching whatever does
// not fit. A super-frame cannot be cut where it lies (its segments need
// the buffers behind it), so it is gathered into the slot, the read stops,
// and the backlog cuts it into the buffers left; segments that do not fit
// this call wait for the next, which returns them before reading again.
// So the slot is free whenever the TAP is read.

// finish completes, in place, a checksum the kernel left to the device
// (h from the frame's virtio_net_hdr). It reports false when the frame
// must be dropped: the checksum field is not inside the frame.
func (p *tapPort) finish(frame []byte, h vnet.Hdr) bool {
	if h.Flags&vnet.FlagNeedsCsum == 0 {
		return true
	}
	if vnet.FinishChecksum(frame, h) != nil {
		return false
	}
	p.rxFinished++
	return true
}

// toBacklog gathers a super-frame of size bytes, read into buf and on into
// the backlog's slot, into the slot, and queues it there to be cut.
func (p *tapPort) toBacklog(buf []byte, size int, h vnet.Hdr) {
	slot := p.q.slots[0]
	if size > len(buf) {
		head := len(buf)
		copy(slot[head:size], slot[:size-head]) // copy handles the overlap
		copy(slot, buf)
	} else {
		copy(slot, buf[:size])
	}
	p.rxSuper++
	p.q.commit(h, size)
}
