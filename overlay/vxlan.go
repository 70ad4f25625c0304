package overlay

import "encoding/binary"

// VXLAN header, RFC 7348 §5:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The I flag must be set for a valid VNI. Reserved bits are zero on send
// and ignored on receive.
const (
	// VXLANHdrLen is the size of the VXLAN header in front of the inner
	// Ethernet frame.
	VXLANHdrLen = 8
	// EthHdrLen is the size of an untagged Ethernet header; an inner frame
	// shorter than this is dropped.
	EthHdrLen = 14
	// MinPacketLen is the shortest UDP payload accepted: the VXLAN header
	// plus an Ethernet header.
	MinPacketLen = VXLANHdrLen + EthHdrLen
	// MaxVNI is the largest 24-bit VNI.
	MaxVNI = 1<<24 - 1
	// DefaultPort is the IANA-assigned VXLAN UDP port. (The Linux vxlan
	// device defaults to 8472 unless given "dstport 4789".)
	DefaultPort = 4789
	// OverheadIPv4 and OverheadIPv6 are what the underlay adds to an
	// untagged inner frame's L3 MTU: inner Ethernet 14 + VXLAN 8 + UDP 8 +
	// outer IP 20 or 40.
	OverheadIPv4 = 50
	OverheadIPv6 = 70

	vxlanFlagsOff = 0
	vxlanVNIOff   = 4
	vxlanFlagI    = 0x08
)

// Header is a view of the 8 bytes of a VXLAN header. Check IsValid before
// using the accessors.
type Header []byte

// IsValid reports whether h is long enough to hold a header.
func (h Header) IsValid() bool { return len(h) >= VXLANHdrLen }

// Flags returns the flags byte (I = 0x08).
func (h Header) Flags() uint8 { return h[vxlanFlagsOff] }

// HasI reports whether the I flag (valid VNI) is set.
func (h Header) HasI() bool { return h[vxlanFlagsOff]&vxlanFlagI != 0 }

// VNI returns the 24-bit VNI.
func (h Header) VNI() uint32 {
	return binary.BigEndian.Uint32(h[vxlanVNIOff:]) >> 8
}

// PutHeader writes a VXLAN header for vni into b[:VXLANHdrLen]: flags
// 0x08, VNI, every reserved bit zero. vni must be at most MaxVNI; higher
// bits are cut off. It panics if len(b) < VXLANHdrLen.
func PutHeader(b []byte, vni uint32) {
	_ = b[VXLANHdrLen-1]
	binary.BigEndian.PutUint32(b[0:], vxlanFlagI<<24)
	binary.BigEndian.PutUint32(b[vxlanVNIOff:], vni<<8)
}

// ParseHeader checks the UDP payload b of a VXLAN packet and returns its
// VNI. It returns DropShort when b cannot hold the header and an Ethernet
// header, DropNoIFlag when the I flag is clear, and DropNone otherwise.
// The inner frame is b[VXLANHdrLen:]. Reserved bits are ignored, as RFC
// 7348 asks. Whether the VNI is carried is the caller's business.
func ParseHeader(b []byte) (vni uint32, reason DropReason) {
	if len(b) < MinPacketLen {
		return 0, DropShort
	}
	h := Header(b)
	if !h.HasI() {
		return 0, DropNoIFlag
	}
	return h.VNI(), DropNone
}
