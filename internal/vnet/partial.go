package vnet

import "encoding/binary"

// FixPartialChecksum finishes the TCP or UDP checksum of a frame that a
// Linux sender left CHECKSUM_PARTIAL when no virtio-net header came with it
// to say so. That happens to the inner frames of VXLAN packets a kernel
// vxlan device sends over a veth: the outer UDP datagram reaches our socket
// as plain bytes, and the inner checksum field holds only the folded
// pseudo-header sum that the hardware (here: nobody) was to complete.
//
// It recognises that signature — the field equals the pseudo-header sum —
// and only then sums the segment and stores the checksum. A finished
// checksum equals the pseudo-header sum with odds of 1 in 65536; finishing
// such a frame again yields the same, correct value, so the check is safe.
// Frames that are not TCP or UDP over IPv4/IPv6 (802.1Q tags allowed), IPv4
// UDP without a checksum (0), and malformed frames are left alone.
//
// It returns whether it changed the frame. It does not allocate. The usual
// cost is a header parse and a pseudo-header sum.
func FixPartialChecksum(f []byte) bool {
	l, err := parse(f)
	if err != nil {
		return false
	}
	at := l.l4 + tcpCsumOff
	if l.proto == protoUDP {
		at = l.l4 + udpCsumOff
	}
	cur := binary.BigEndian.Uint16(f[at:])
	if cur == 0 && l.proto == protoUDP && !l.v6 {
		return false // IPv4 UDP without a checksum
	}
	src, dst := l.addrs(f)
	if cur != pseudoSum(src, dst, l.proto, l.end-l.l4) {
		return false
	}
	c := ^checksum(f[l.l4:l.end], 0) // the field holds the pseudo-header sum
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[at:], c)
	return true
}

// SegmentForMTU splits a TCP frame whose IP packet exceeds mtu into
// segments that fit it, as TSO would have: a frame that arrived as one
// piece although its sender meant it to be segmented (a TSO super-frame
// carried whole inside one VXLAN datagram, which a UDP socket cannot
// segment for us). The segments are written at out[i][outOff:] with
// sizes[i], every checksum computed. Non-TCP frames give ErrUnsupported;
// ErrTooManySegments means out has too few buffers.
func SegmentForMTU(frame []byte, mtu int, out [][]byte, sizes []int, outOff int) (int, error) {
	l, err := parse(frame)
	if err != nil {
		return 0, err
	}
	if l.proto != protoTCP {
		return 0, ErrUnsupported
	}
	mss := mtu - (l.data - l.ip)
	if mss <= 0 || mss > 0xffff {
		return 0, ErrGSOSize
	}
	h := Hdr{GSOType: GSOTCPv4, GSOSize: uint16(mss)}
	if l.v6 {
		h.GSOType = GSOTCPv6
	}
	return Segment(frame, h, out, sizes, outOff)
}
