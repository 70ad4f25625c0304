package vnet

import (
	"bytes"
	"encoding/binary"
)

// MaxCoalesced is the largest IP packet a Coalescer builds: the IPv4 total
// length and the IPv6 payload length are 16-bit fields.
const MaxCoalesced = 65535

// tcpFlagsMergeable are the TCP flags a segment may carry and still be
// merged: ACK always, PSH on the last segment of a run. Any other flag
// (SYN, FIN, RST, URG, ECE, CWR) means the segment must reach the peer's
// stack as it is, as the kernel's GRO does.
const (
	tcpFlagACK        = 0x10
	tcpFlagsMergeable = tcpFlagACK | tcpFlagPSH
)

// Coalescer merges runs of consecutive TCP segments of one flow into one
// super-frame with a virtio-net header that asks for GSO (userspace GRO),
// so that a TAP or an AF_PACKET socket with a virtio-net header takes up to
// 64 KiB in one write, and the receiving stack handles one packet instead of
// one per segment. It is what the kernel's GRO does for a NIC.
//
// Only what GRO itself would merge is merged: untagged Ethernet, IPv4
// without options or fragments, or IPv6 without extension headers; TCP
// with only ACK (and PSH on the last segment); the same addresses, ports,
// IP and TCP header fields and options; contiguous sequence numbers; every
// segment the size of the first, the last one no bigger. Each segment's
// checksum is verified before it joins a run, so a merged frame (which the
// receiver trusts, being CHECKSUM_PARTIAL) never hides a corrupt segment.
// Anything else passes through alone and unchanged.
//
// Use: call Append for each frame in order; when it returns false, write
// the run Flush returns and Append the frame again (it then starts a new
// run and is accepted). Flush at the end of the batch. The frame Flush
// returns may be the coalescer's own buffer: write it before the next
// Append. A Coalescer does not allocate after NewCoalescer and is not safe
// for concurrent use.
type Coalescer struct {
	buf   []byte // the merged frame, once a second segment joined
	n     int    // bytes in buf; 0 while the run is first alone
	first []byte // the run's first frame; nil when the run is empty
	segs  int
	open  bool // more segments may join
	l     layout
	gso   int    // payload bytes of the first segment
	next  uint32 // sequence number the next segment must carry
	psh   bool
}

// NewCoalescer returns a Coalescer with a buffer for the largest frame it
// builds.
func NewCoalescer() *Coalescer {
	return &Coalescer{buf: make([]byte, ethHdrLen+MaxCoalesced)}
}

// Segments reports how many frames the current run holds.
func (c *Coalescer) Segments() int { return c.segs }

// Append adds f to the current run, or starts a run with f when there is
// none. It returns false when f cannot join the current run; the caller
// then writes Flush's result and calls Append(f) again. f must stay
// unchanged until the run is flushed.
func (c *Coalescer) Append(f []byte) bool {
	if c.first == nil {
		c.start(f)
		return true
	}
	if !c.open {
		return false
	}
	l, ok := mergeable(f)
	if !ok || l.data != c.l.data || l.v6 != c.l.v6 {
		return false
	}
	p := l.end - l.data
	if p > c.gso || c.size()+p > ethHdrLen+MaxCoalesced {
		return false
	}
	if !sameFlow(c.first, f, &c.l) || binary.BigEndian.Uint32(f[l.l4+tcpSeqOff:]) != c.next {
		return false
	}
	if !validTCP(f, &l) {
		return false
	}
	if c.n == 0 {
		if !validTCP(c.first, &c.l) {
			c.open = false
			return false
		}
		c.n = copy(c.buf, c.first)
	}
	c.n += copy(c.buf[c.n:], f[l.data:l.end])
	c.segs++
	c.next += uint32(p)
	if f[l.l4+tcpFlagsOff]&tcpFlagPSH != 0 {
		c.psh = true
		c.open = false
	}
	if p < c.gso {
		c.open = false
	}
	return true
}

// size is the length of the run's frame so far.
func (c *Coalescer) size() int {
	if c.n == 0 {
		return len(c.first)
	}
	return c.n
}

func (c *Coalescer) start(f []byte) {
	c.first, c.n, c.segs, c.psh = f, 0, 1, false
	l, ok := mergeable(f)
	c.open = ok && f[l.l4+tcpFlagsOff]&tcpFlagPSH == 0
	if !ok {
		return
	}
	c.l = l
	c.gso = l.end - l.data
	c.next = binary.BigEndian.Uint32(f[l.l4+tcpSeqOff:]) + uint32(c.gso)
}

// Flush ends the run and returns it: the frame to write and the virtio-net
// header to write in front of it. A run of one frame comes back unchanged
// with a zero header; a merged run as one frame with GSO asked for. An
// empty run returns a nil frame.
func (c *Coalescer) Flush() (Hdr, []byte) {
	first, n := c.first, c.n
	c.first, c.n, c.segs, c.open = nil, 0, 0, false
	if first == nil {
		return Hdr{}, nil
	}
	if n == 0 {
		return Hdr{}, first
	}
	f, l := c.buf[:n], &c.l
	h := Hdr{
		Flags:      FlagNeedsCsum,
		GSOType:    GSOTCPv4,
		HdrLen:     uint16(l.data),
		GSOSize:    uint16(c.gso),
		CsumStart:  uint16(l.l4),
		CsumOffset: tcpCsumOff,
	}
	if l.v6 {
		h.GSOType = GSOTCPv6
		binary.BigEndian.PutUint16(f[l.ip+ipv6PayloadLenOff:], uint16(n-l.l4))
	} else {
		binary.BigEndian.PutUint16(f[l.ip+ipv4TotalLenOff:], uint16(n-l.ip))
		f[l.ip+ipv4CsumOff], f[l.ip+ipv4CsumOff+1] = 0, 0
		binary.BigEndian.PutUint16(f[l.ip+ipv4CsumOff:], ^checksum(f[l.ip:l.l4], 0))
	}
	if c.psh {
		f[l.l4+tcpFlagsOff] |= tcpFlagPSH
	}
	// NEEDS_CSUM: the field holds the pseudo-header sum; the rest is left
	// to the receiver, which trusts it, every segment having been checked.
	src, dst := l.addrs(f)
	binary.BigEndian.PutUint16(f[l.l4+tcpCsumOff:], pseudoSum(src, dst, protoTCP, n-l.l4))
	return h, f
}

// mergeable parses f and says whether it is a TCP segment GRO would merge:
// untagged, IPv4 without options and fragments or IPv6 without extension
// headers, only ACK/PSH set, some payload, and no padding after the IP
// packet.
func mergeable(f []byte) (layout, bool) {
	if len(f) < ethHdrLen {
		return layout{}, false
	}
	// Look at the protocol before parsing: most frames that are not TCP
	// (all of a UDP or ARP stream) stop here.
	switch binary.BigEndian.Uint16(f[ethTypeOff:]) {
	case etherTypeIPv4:
		if len(f) < ethHdrLen+ipv4MinHdrLen || f[ethHdrLen+ipv4ProtoOff] != protoTCP {
			return layout{}, false
		}
	case etherTypeIPv6:
		if len(f) < ethHdrLen+ipv6HdrLen || f[ethHdrLen+ipv6NextHdrOff] != protoTCP {
			return layout{}, false
		}
	default:
		return layout{}, false
	}
	l, err := parse(f)
	if err != nil || l.proto != protoTCP || l.end != len(f) || l.data >= l.end {
		return l, false
	}
	if !l.v6 && l.l4-l.ip != ipv4MinHdrLen {
		return l, false
	}
	fl := f[l.l4+tcpFlagsOff]
	return l, fl&^tcpFlagsMergeable == 0 && fl&tcpFlagACK != 0
}

// sameFlow compares every header field of b with run's first segment a
// that must match for b to be merged into it: Ethernet header; IPv4
// version, TOS, flags, TTL, protocol and addresses (not length, ID or
// checksum) or IPv6 version, traffic class, flow label, next header, hop
// limit and addresses; TCP ports, ACK number, data offset, flags (PSH
// aside), window and options (not sequence number or checksum).
func sameFlow(a, b []byte, l *layout) bool {
	if !bytes.Equal(a[:l.ip], b[:l.ip]) {
		return false
	}
	ip, t := l.ip, l.l4
	if l.v6 {
		if !bytes.Equal(a[ip:ip+ipv6PayloadLenOff], b[ip:ip+ipv6PayloadLenOff]) ||
			!bytes.Equal(a[ip+ipv6NextHdrOff:t], b[ip+ipv6NextHdrOff:t]) {
			return false
		}
	} else {
		if a[ip] != b[ip] || a[ip+1] != b[ip+1] ||
			!bytes.Equal(a[ip+ipv4FragOff:ip+ipv4CsumOff], b[ip+ipv4FragOff:ip+ipv4CsumOff]) ||
			!bytes.Equal(a[ip+ipv4SrcOff:t], b[ip+ipv4SrcOff:t]) {
			return false
		}
	}
	const ackOff, winOff = 8, 14
	return bytes.Equal(a[t:t+tcpSeqOff], b[t:t+tcpSeqOff]) &&
		bytes.Equal(a[t+ackOff:t+tcpFlagsOff], b[t+ackOff:t+tcpFlagsOff]) &&
		(a[t+tcpFlagsOff]|tcpFlagPSH) == (b[t+tcpFlagsOff]|tcpFlagPSH) &&
		bytes.Equal(a[t+winOff:t+tcpCsumOff], b[t+winOff:t+tcpCsumOff]) &&
		bytes.Equal(a[t+tcpMinHdrLen:l.data], b[t+tcpMinHdrLen:l.data])
}

// validTCP says whether the TCP checksum of a parsed frame verifies.
func validTCP(f []byte, l *layout) bool {
	src, dst := l.addrs(f)
	return checksum(f[l.l4:l.end], pseudoSum(src, dst, protoTCP, l.end-l.l4)) == 0xffff
}
