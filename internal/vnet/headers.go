package vnet

import "encoding/binary"

// Ethernet II (IEEE 802.3 §3.1.1), with up to two IEEE 802.1Q / 802.1ad
// tags between the source address and the EtherType:
//
//	+-------------+-------------+ - - - - - - - - - - - - +---------------+
//	| dst MAC (6) | src MAC (6) | TPID (2) | TCI (2) ...  | EtherType (2) |
//	+-------------+-------------+ - - - - - - - - - - - - +---------------+
const (
	ethHdrLen       = 14
	ethTypeOff      = 12
	vlanTagLen      = 4
	maxVLANTags     = 2
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherType8021Q  = 0x8100
	etherType8021AD = 0x88a8
)

// IPv4, RFC 791 §3.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options (IHL > 5)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv4MinHdrLen   = 20
	ipv4TotalLenOff = 2
	ipv4IDOff       = 4
	ipv4FragOff     = 6 // flags (3 bits) and fragment offset (13 bits)
	ipv4ProtoOff    = 9
	ipv4CsumOff     = 10
	ipv4SrcOff      = 12
	ipv4AddrLen     = 4
	ipv4FlagMF      = 0x2000
	ipv4FragMask    = 0x1fff
)

// IPv6, RFC 8200 §3:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Source Address (16 bytes)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Destination Address (16 bytes)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv6HdrLen        = 40
	ipv6PayloadLenOff = 4
	ipv6NextHdrOff    = 6
	ipv6SrcOff        = 8
	ipv6AddrLen       = 16
)

const (
	protoTCP = 6
	protoUDP = 17
)

// TCP, RFC 9293 §3.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options (Data Offset > 5)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpMinHdrLen  = 20
	tcpSeqOff     = 4
	tcpDataOffOff = 12
	tcpFlagsOff   = 13
	tcpCsumOff    = 16
	tcpFlagFIN    = 0x01
	tcpFlagPSH    = 0x08
	tcpFlagCWR    = 0x80
)

// UDP, RFC 768:
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|   Source Port   |   Dest. Port    |
//	+--------+--------+--------+--------+
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
const (
	udpHdrLen  = 8
	udpLenOff  = 4
	udpCsumOff = 6
)

// layout says where the headers of a parsed IP frame sit. All offsets count
// from the start of the Ethernet frame.
type layout struct {
	ip    int // IP header
	l4    int // TCP or UDP header
	data  int // payload, the end of all headers
	end   int // end of the IP packet; the frame may be padded beyond it
	v6    bool
	proto uint8
}

// parse finds the headers of an Ethernet frame carrying TCP or UDP directly
// over IPv4 or IPv6. An IP length field of 0 (BIG TCP) means the packet
// runs to the end of the frame.
func parse(f []byte) (layout, error) {
	var l layout
	if len(f) < ethHdrLen {
		return l, ErrMalformed
	}
	off := ethTypeOff
	et := binary.BigEndian.Uint16(f[off:])
	for i := 0; i < maxVLANTags && (et == etherType8021Q || et == etherType8021AD); i++ {
		off += vlanTagLen
		if len(f) < off+2 {
			return l, ErrMalformed
		}
		et = binary.BigEndian.Uint16(f[off:])
	}
	l.ip = off + 2
	switch et {
	case etherTypeIPv4:
		if len(f) < l.ip+ipv4MinHdrLen || f[l.ip]>>4 != 4 {
			return l, ErrMalformed
		}
		ihl := int(f[l.ip]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(f[l.ip+ipv4TotalLenOff:]))
		l.end = l.ip + total
		if total == 0 {
			l.end = len(f)
		}
		if ihl < ipv4MinHdrLen || l.end > len(f) || l.end < l.ip+ihl {
			return l, ErrMalformed
		}
		if binary.BigEndian.Uint16(f[l.ip+ipv4FragOff:])&(ipv4FlagMF|ipv4FragMask) != 0 {
			return l, ErrUnsupported
		}
		l.l4 = l.ip + ihl
		l.proto = f[l.ip+ipv4ProtoOff]
	case etherTypeIPv6:
		if len(f) < l.ip+ipv6HdrLen || f[l.ip]>>4 != 6 {
			return l, ErrMalformed
		}
		l.v6 = true
		l.l4 = l.ip + ipv6HdrLen
		payload := int(binary.BigEndian.Uint16(f[l.ip+ipv6PayloadLenOff:]))
		l.end = l.l4 + payload
		if payload == 0 {
			l.end = len(f)
		}
		if l.end > len(f) {
			return l, ErrMalformed
		}
		l.proto = f[l.ip+ipv6NextHdrOff]
	default:
		return l, ErrMalformed
	}
	switch l.proto {
	case protoTCP:
		if l.end < l.l4+tcpMinHdrLen {
			return l, ErrMalformed
		}
		doff := int(f[l.l4+tcpDataOffOff]>>4) * 4
		if doff < tcpMinHdrLen || l.end < l.l4+doff {
			return l, ErrMalformed
		}
		l.data = l.l4 + doff
	case protoUDP:
		if l.end < l.l4+udpHdrLen {
			return l, ErrMalformed
		}
		l.data = l.l4 + udpHdrLen
	default:
		if l.v6 {
			return l, ErrUnsupported // an extension header, most likely
		}
		return l, ErrMalformed
	}
	return l, nil
}

// addrs returns the source and destination addresses of the IP header.
func (l *layout) addrs(f []byte) (src, dst []byte) {
	if l.v6 {
		s := l.ip + ipv6SrcOff
		return f[s : s+ipv6AddrLen], f[s+ipv6AddrLen : s+2*ipv6AddrLen]
	}
	s := l.ip + ipv4SrcOff
	return f[s : s+ipv4AddrLen], f[s+ipv4AddrLen : s+2*ipv4AddrLen]
}

// Layout says where the headers of a TCP or UDP frame sit, as offsets from
// the start of the Ethernet frame, for callers that rewrite headers
// themselves (cutting a super-frame in parts).
type Layout struct {
	IP, L4 int   // IP and TCP/UDP headers
	Data   int   // payload: the end of all headers
	End    int   // end of the IP packet
	V6     bool  // IPv6, else IPv4
	Proto  uint8 // 6 (TCP) or 17 (UDP)
}

// ParseLayout parses f exactly as Segment does: Ethernet, up to two VLAN
// tags, IPv4 (no fragments) or IPv6 (no extension headers), TCP or UDP.
func ParseLayout(f []byte) (Layout, error) {
	l, err := parse(f)
	return Layout{IP: l.ip, L4: l.l4, Data: l.data, End: l.end, V6: l.v6, Proto: l.proto}, err
}
