package vnet

import "encoding/binary"

// Segment does in software what the header h asks of the hardware: it
// splits the super-frame frame into frames that each carry at most
// h.GSOSize payload bytes, as the kernel's TSO/USO would.
//
// frame is an Ethernet frame, with up to two 802.1Q/802.1ad tags, carrying
// TCP (h.GSOType GSOTCPv4 or GSOTCPv6, optionally with GSOECN) or UDP
// (GSOUDPL4) directly over IPv4 or IPv6. Each segment is written as a full
// frame at out[i][outOff:], its length in sizes[i], for i < n. The Ethernet
// and IP headers and the TCP or UDP header are copied into every segment
// and fixed: IPv4 total length, identification (+1 per segment) and header
// checksum; IPv6 payload length; TCP sequence number, FIN and PSH on the
// last segment only, CWR on the first only; UDP length. The TCP or UDP
// checksum is computed in full, so the segments need no further offload.
//
// Segment finds the headers by parsing the frame. It does not trust
// h.HdrLen (on receive the kernel fills it with the length of the skb's
// linear part, which may include payload) nor h.CsumStart.
//
// A frame with GSONone is copied to out[0][outOff:] as the one segment, its
// checksum finished if h asks for it (see FinishChecksum); callers that can
// forward in place should call FinishChecksum instead and save the copy.
//
// Segment returns ErrTooManySegments if min(len(out), len(sizes)) is less
// than the number of segments, ErrShortBuffer if an out[i] has no room for
// its segment after outOff, ErrUFO for gso_type UDP, and ErrGSOType,
// ErrGSOSize, ErrMalformed or ErrUnsupported for frames it cannot split,
// and ErrBadCsumOffsets for a GSONone frame whose checksum field lies
// outside it.
// On error n is 0 and nothing in out is meaningful. frame is never
// modified. Segment does not allocate and never panics.
func Segment(frame []byte, h Hdr, out [][]byte, sizes []int, outOff int) (n int, err error) {
	slots := min(len(out), len(sizes))
	if outOff < 0 {
		return 0, ErrShortBuffer
	}
	switch h.GSO() {
	case GSONone:
		return copyOne(frame, h, out, sizes, outOff, slots)
	case GSOTCPv4, GSOTCPv6, GSOUDPL4:
	case GSOUDP:
		return 0, ErrUFO
	default:
		return 0, ErrGSOType
	}
	mss := int(h.GSOSize)
	if mss == 0 {
		return 0, ErrGSOSize
	}
	l, err := parse(frame)
	if err != nil {
		return 0, err
	}
	switch h.GSO() {
	case GSOTCPv4:
		if l.v6 || l.proto != protoTCP {
			return 0, ErrMalformed
		}
	case GSOTCPv6:
		if !l.v6 || l.proto != protoTCP {
			return 0, ErrMalformed
		}
	case GSOUDPL4:
		if l.proto != protoUDP {
			return 0, ErrMalformed
		}
	}

	payload := l.end - l.data
	n = max(1, (payload+mss-1)/mss)
	if n > slots {
		return 0, ErrTooManySegments
	}
	// The largest segment must fit the 16-bit length fields: IPv4 total
	// length, IPv6 payload length, UDP length.
	if l.data-l.ip+min(payload, mss) > 0xffff {
		return 0, ErrGSOSize
	}
	// Check every buffer before writing any.
	for i := range n {
		seg := l.data + min(mss, payload-i*mss)
		if outOff > len(out[i]) || len(out[i])-outOff < seg {
			return 0, ErrShortBuffer
		}
	}

	src, dst := l.addrs(frame)
	psum := pseudoSum(src, dst, l.proto, 0) // each segment adds its length
	var id uint16
	if !l.v6 {
		id = binary.BigEndian.Uint16(frame[l.ip+ipv4IDOff:])
	}
	var seq uint32
	var flags uint8
	if l.proto == protoTCP {
		seq = binary.BigEndian.Uint32(frame[l.l4+tcpSeqOff:])
		flags = frame[l.l4+tcpFlagsOff]
	}

	for i := range n {
		lo := l.data + i*mss
		hi := min(lo+mss, l.end)
		seg := out[i][outOff : outOff+l.data+hi-lo]
		copy(seg, frame[:l.data])
		copy(seg[l.data:], frame[lo:hi])
		sizes[i] = len(seg)

		if l.v6 {
			binary.BigEndian.PutUint16(seg[l.ip+ipv6PayloadLenOff:], uint16(len(seg)-l.ip-ipv6HdrLen))
		} else {
			ip := seg[l.ip:l.l4]
			binary.BigEndian.PutUint16(ip[ipv4TotalLenOff:], uint16(len(seg)-l.ip))
			binary.BigEndian.PutUint16(ip[ipv4IDOff:], id+uint16(i))
			ip[ipv4CsumOff], ip[ipv4CsumOff+1] = 0, 0
			binary.BigEndian.PutUint16(ip[ipv4CsumOff:], ^checksum(ip, 0))
		}

		l4 := seg[l.l4:]
		var csumOff int
		if l.proto == protoTCP {
			csumOff = tcpCsumOff
			binary.BigEndian.PutUint32(l4[tcpSeqOff:], seq+uint32(i*mss))
			f := flags
			if i != n-1 {
				f &^= tcpFlagFIN | tcpFlagPSH
			}
			if i != 0 {
				f &^= tcpFlagCWR
			}
			l4[tcpFlagsOff] = f
		} else {
			csumOff = udpCsumOff
			binary.BigEndian.PutUint16(l4[udpLenOff:], uint16(len(l4)))
		}
		l4[csumOff], l4[csumOff+1] = 0, 0
		c := ^checksum(l4, add16(psum, uint16(len(l4))))
		if c == 0 && l.proto == protoUDP {
			c = 0xffff // RFC 768: 0 would mean "no checksum"
		}
		binary.BigEndian.PutUint16(l4[csumOff:], c)
	}
	return n, nil
}

// copyOne is Segment for a frame that is not a super-frame.
func copyOne(frame []byte, h Hdr, out [][]byte, sizes []int, outOff, slots int) (int, error) {
	if slots < 1 {
		return 0, ErrTooManySegments
	}
	if outOff > len(out[0]) || len(out[0])-outOff < len(frame) {
		return 0, ErrShortBuffer
	}
	seg := out[0][outOff : outOff+len(frame)]
	copy(seg, frame)
	if err := FinishChecksum(seg, h); err != nil {
		return 0, err
	}
	sizes[0] = len(seg)
	return 1, nil
}
