package dataplane

import "github.com/vxswitch/vxswitch/internal/vnet"

// finish completes, in place, the offload work the kernel left on a frame
// read from the TAP, as its virtio_net_hdr (in p.rhdr) says. The TAP offers
// checksum offload only, so that is a checksum to finish (NEEDS_CSUM); a
// super-frame cannot come (no TSO) and is refused. It reports false when
// the frame must be dropped.
func (p *tapPort) finish(frame []byte) bool {
	h, err := vnet.Decode(p.rhdr[:])
	if err != nil || h.GSO() != vnet.GSONone {
		return false
	}
	if h.Flags&vnet.FlagNeedsCsum == 0 {
		return true
	}
	if vnet.FinishChecksum(frame, h) != nil {
		return false
	}
	p.rxFinished++
	return true
}
