package dataplane

import (
	"encoding/binary"

	"github.com/vxswitch/vxswitch/fdb"
)

// Ethernet and 802.1Q layout (IEEE 802.3, 802.1Q):
//
//	dst(6) | src(6) | [TPID 0x8100(2) | TCI(2)] | EtherType(2) | payload
const (
	EthHdrLen   = 14
	VLANTagLen  = 4
	ethDstOff   = 0
	ethSrcOff   = 6
	ethTypeOff  = 12
	ethTCIOff   = 14
	tpid8021Q   = 0x8100
	vidMask     = 0x0fff
	macPairLen  = 12
	maxValidVID = MaxVLAN
)

// Headroom is the space the switch leaves in front of every frame it
// reads: room to push an 802.1Q tag in place and for the tunnel's VXLAN
// header (and, later, virtio-net headers) without copying the frame.
const Headroom = 64

// frame is a view of one Ethernet frame. It is checked once by classify and
// read through accessors after that.
type frame []byte

func (f frame) dst() fdb.MAC       { return fdb.MAC(f[ethDstOff : ethDstOff+6]) }
func (f frame) src() fdb.MAC       { return fdb.MAC(f[ethSrcOff : ethSrcOff+6]) }
func (f frame) etherType() uint16  { return binary.BigEndian.Uint16(f[ethTypeOff:]) }
func (f frame) tagged() bool       { return f.etherType() == tpid8021Q }
func (f frame) vid() uint16        { return binary.BigEndian.Uint16(f[ethTCIOff:]) & vidMask }
func (f frame) l2PayloadLen() int  { return len(f) - EthHdrLen }
func isMulticast(m *fdb.MAC) bool  { return m[0]&1 != 0 }
func putTCI(b []byte, vlan uint16) { binary.BigEndian.PutUint16(b, vlan&vidMask) }

// classify decides the VLAN of a frame arriving on a port with config c
// and strips an 802.1Q tag in place. It returns the new start of the
// untagged frame in buf (start or start+4) and the VLAN, or a drop reason.
// It never allocates.
func classify(c *PortConfig, buf []byte, start, end int) (newStart int, vlan uint16, drop DropReason, ok bool) {
	f := frame(buf[start:end])
	if len(f) < EthHdrLen {
		return start, 0, DropShort, false
	}
	tagged := f.tagged()
	var vid uint16
	if tagged {
		if len(f) < EthHdrLen+VLANTagLen {
			return start, 0, DropBadVLANHeader, false
		}
		vid = f.vid()
		if vid > maxValidVID {
			return start, 0, DropVLANNotAllowed, false
		}
	}
	switch c.Mode {
	case ModeAccess:
		// Priority-tagged frames (VID 0) are accepted as the access VLAN.
		if tagged && vid != 0 {
			return start, 0, DropVLANNotAllowed, false
		}
		vlan = c.Tag
	case ModeTrunk:
		vlan = vid // untagged and priority-tagged frames are VLAN 0
		if !c.Trunks.Empty() && !c.Trunks.Has(vlan) {
			return start, 0, DropVLANNotAllowed, false
		}
	default: // native-untagged, native-tagged
		if !tagged || vid == 0 || vid == c.Tag {
			vlan = c.Tag
		} else if c.Trunks.Empty() || c.Trunks.Has(vid) {
			vlan = vid
		} else {
			return start, 0, DropVLANNotAllowed, false
		}
	}
	if tagged {
		// Move the MACs over the tag: the frame is now untagged.
		copy(buf[start+VLANTagLen:start+VLANTagLen+macPairLen], buf[start:start+macPairLen])
		start += VLANTagLen
	}
	return start, vlan, 0, true
}

// egressTagged reports whether a port with config c sends VLAN vlan with
// an 802.1Q tag. VLAN 0 always leaves untagged.
func egressTagged(c *PortConfig, vlan uint16) bool {
	if vlan == 0 {
		return false
	}
	switch c.Mode {
	case ModeAccess:
		return false
	case ModeNativeUntagged:
		return vlan != c.Tag
	default: // trunk, native-tagged
		return true
	}
}

// pushTag turns the untagged frame buf[start:end] into a tagged one in
// place, using 4 bytes of headroom; it returns the new start.
func pushTag(buf []byte, start int, vlan uint16) int {
	ns := start - VLANTagLen
	copy(buf[ns:ns+macPairLen], buf[start:start+macPairLen])
	binary.BigEndian.PutUint16(buf[ns+ethTypeOff:], tpid8021Q)
	putTCI(buf[ns+ethTCIOff:], vlan)
	return ns
}

// copyTagged writes a tagged copy of the untagged frame f into dst at
// offset off and returns its length.
func copyTagged(dst []byte, off int, f []byte, vlan uint16) int {
	copy(dst[off:off+macPairLen], f[:macPairLen])
	binary.BigEndian.PutUint16(dst[off+ethTypeOff:], tpid8021Q)
	putTCI(dst[off+ethTCIOff:], vlan)
	n := copy(dst[off+macPairLen+VLANTagLen:], f[macPairLen:])
	return macPairLen + VLANTagLen + n
}
