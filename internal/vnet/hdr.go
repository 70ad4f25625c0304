package vnet

import (
	"encoding/binary"
	"errors"
)

// Hdr is the legacy struct virtio_net_hdr (include/uapi/linux/virtio_net.h,
// virtio 1.x spec §5.1.6), which the kernel puts in front of every frame on
// an AF_PACKET socket with PACKET_VNET_HDR and on a TAP fd with
// IFF_VNET_HDR:
//
//	 0               1               2               3
//	+---------------+---------------+-------------------------------+
//	|     flags     |   gso_type    |            hdr_len            |
//	+---------------+---------------+-------------------------------+
//	|           gso_size            |          csum_start           |
//	+-------------------------------+-------------------------------+
//	|          csum_offset          |
//	+-------------------------------+
//
// The 16-bit fields are little-endian here. For the legacy header the
// kernel uses the CPU's byte order, which is little-endian on x86-64 and
// arm64; on a big-endian CPU a TAP must be switched with TUNSETVNETLE, and
// AF_PACKET would need byte swapping this package does not do.
//
// Offsets (hdr_len, csum_start) count from the first byte of the Ethernet
// frame that follows the header.
type Hdr struct {
	Flags   uint8 // FlagNeedsCsum, FlagDataValid
	GSOType uint8 // GSONone, GSOTCPv4, ...; may carry GSOECN
	// HdrLen is meant to be the length of the headers in front of the
	// payload. On receive the kernel fills it with skb_headlen, the linear
	// part of the skb: for TCP sent by a local socket that is exactly the
	// headers (TestKernelTSO sees 66 and 86), but a forwarded or GRO-built
	// skb can carry payload there too. Segment therefore finds the headers
	// itself and treats HdrLen as a hint only.
	HdrLen     uint16
	GSOSize    uint16 // payload bytes per segment (the MSS for TCP)
	CsumStart  uint16 // where the checksummed region begins (the L4 header)
	CsumOffset uint16 // where in that region the checksum field sits
}

// HdrLen is the length in bytes of the legacy virtio_net_hdr. (The
// mergeable-buffers variant, virtio_net_hdr_mrg_rxbuf, adds num_buffers and
// is 12; TAP uses it only after TUNSETVNETHDRSZ 12.)
const HdrLen = 10

// Values of Hdr.Flags.
const (
	// FlagNeedsCsum: the checksum at CsumStart+CsumOffset holds only the
	// pseudo-header sum; the sum over CsumStart..end must be finished
	// (the skb is CHECKSUM_PARTIAL).
	FlagNeedsCsum = 1
	// FlagDataValid: the checksum has been verified already (receive side,
	// CHECKSUM_UNNECESSARY). Nothing to do.
	FlagDataValid = 2
)

// Values of Hdr.GSOType. Append only: these values are on the wire.
const (
	GSONone  = 0    // not a super-frame
	GSOTCPv4 = 1    // TCP over IPv4 (TSO)
	GSOUDP   = 3    // legacy UFO: one UDP datagram split into IP fragments
	GSOTCPv6 = 4    // TCP over IPv6 (TSO)
	GSOUDPL4 = 5    // UDP segmentation (USO): one datagram per GSOSize
	GSOECN   = 0x80 // flag: the TCP super-frame has CWR set (ECN)
)

// Byte offsets of the fields in the encoded header.
const (
	hdrFlagsOff      = 0
	hdrGSOTypeOff    = 1
	hdrHdrLenOff     = 2
	hdrGSOSizeOff    = 4
	hdrCsumStartOff  = 6
	hdrCsumOffsetOff = 8
)

// Errors returned by this package. They carry no detail so that returning
// them does not allocate; callers count them per reason.
var (
	// ErrShortHdr: fewer than HdrLen bytes to decode.
	ErrShortHdr = errors.New("vnet: virtio_net_hdr shorter than 10 bytes")
	// ErrBadCsumOffsets: csum_start/csum_offset point outside the frame.
	ErrBadCsumOffsets = errors.New("vnet: csum_start+csum_offset outside the frame")
	// ErrGSO: FinishChecksum was given a super-frame; use Segment.
	ErrGSO = errors.New("vnet: frame is a GSO super-frame; segment it instead")
	// ErrGSOType: gso_type is not one this package knows.
	ErrGSOType = errors.New("vnet: unknown gso_type")
	// ErrUFO: legacy UDP fragmentation offload (gso_type UDP) is refused;
	// it needs IP fragmentation, which a switch should not do.
	ErrUFO = errors.New("vnet: UFO (gso_type UDP, IP fragmentation) is not supported")
	// ErrGSOSize: a super-frame with gso_size 0, or one whose segments
	// would not fit the 16-bit IP or UDP length fields.
	ErrGSOSize = errors.New("vnet: bad gso_size")
	// ErrMalformed: the frame does not parse as Ethernet, optional 802.1Q
	// tags, IPv4/IPv6 and the TCP/UDP header gso_type calls for.
	ErrMalformed = errors.New("vnet: super-frame headers malformed or not as gso_type says")
	// ErrUnsupported: well-formed, but beyond what Segment does: IPv4
	// fragments, IPv6 extension headers.
	ErrUnsupported = errors.New("vnet: super-frame uses IPv4 fragments or IPv6 extension headers")
	// ErrTooManySegments: out (or sizes) has fewer slots than segments.
	ErrTooManySegments = errors.New("vnet: more segments than output buffers")
	// ErrShortBuffer: an output buffer is too small for its segment.
	ErrShortBuffer = errors.New("vnet: output buffer too small for a segment")
)

// Decode reads a virtio_net_hdr from the first HdrLen bytes of b.
// It checks only the length; Segment and FinishChecksum check the rest
// against the frame.
func Decode(b []byte) (Hdr, error) {
	if len(b) < HdrLen {
		return Hdr{}, ErrShortHdr
	}
	return Hdr{
		Flags:      b[hdrFlagsOff],
		GSOType:    b[hdrGSOTypeOff],
		HdrLen:     binary.LittleEndian.Uint16(b[hdrHdrLenOff:]),
		GSOSize:    binary.LittleEndian.Uint16(b[hdrGSOSizeOff:]),
		CsumStart:  binary.LittleEndian.Uint16(b[hdrCsumStartOff:]),
		CsumOffset: binary.LittleEndian.Uint16(b[hdrCsumOffsetOff:]),
	}, nil
}

// Encode writes h into the first HdrLen bytes of b. It panics if b is
// shorter, as binary.LittleEndian.PutUint16 does: the caller reserves the
// room, normally as headroom in front of the frame.
func (h Hdr) Encode(b []byte) {
	_ = b[HdrLen-1]
	b[hdrFlagsOff] = h.Flags
	b[hdrGSOTypeOff] = h.GSOType
	binary.LittleEndian.PutUint16(b[hdrHdrLenOff:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[hdrGSOSizeOff:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[hdrCsumStartOff:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[hdrCsumOffsetOff:], h.CsumOffset)
}

// GSO returns the GSO type without the ECN flag.
func (h Hdr) GSO() uint8 { return h.GSOType &^ GSOECN }
