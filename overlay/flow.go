package overlay

import "encoding/binary"

const (
	ethTypeOff  = 12
	ethTypeVLAN = 0x8100
	ethTypeQinQ = 0x88a8
	ethTypeIPv4 = 0x0800
	ethTypeIPv6 = 0x86dd

	ipProtoTCP     = 6
	ipProtoUDP     = 17
	ipProtoSCTP    = 132
	ipProtoUDPLite = 136
)

// flowHash returns a seeded hash of the inner frame's flow, for the outer
// UDP source port (RFC 7348 §5: entropy for ECMP and RSS in the underlay).
// It mixes the MAC addresses and EtherType, skips one 802.1Q/802.1ad tag
// (trunk VNIs carry tagged frames), and for IPv4 and IPv6 adds the
// addresses, the protocol and, for TCP, UDP, SCTP and UDP-Lite, the ports.
// Fragments of IPv4 datagrams leave the ports out so that every fragment
// of a datagram takes the same path. IPv6 extension headers are not
// walked. f must be at least EthHdrLen bytes; the function reads nothing
// beyond len(f) and does not allocate.
func flowHash(f []byte, seed uint64) uint32 {
	h := seed
	h = mix(h, binary.LittleEndian.Uint64(f[0:8]))
	h = mix(h, uint64(binary.LittleEndian.Uint32(f[8:12])))
	l3 := EthHdrLen
	et := binary.BigEndian.Uint16(f[ethTypeOff:])
	if (et == ethTypeVLAN || et == ethTypeQinQ) && len(f) >= EthHdrLen+4 {
		et = binary.BigEndian.Uint16(f[ethTypeOff+4:])
		l3 += 4
	}
	h = mix(h, uint64(et))
	l4, proto := -1, uint8(0)
	switch et {
	case ethTypeIPv4:
		if len(f) < l3+20 {
			break
		}
		ip := f[l3:]
		ihl := int(ip[0]&0x0f) * 4
		proto = ip[9]
		h = mix(h, binary.LittleEndian.Uint64(ip[12:20])) // source, destination
		fragment := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
		if ihl >= 20 && !fragment {
			l4 = l3 + ihl
		}
	case ethTypeIPv6:
		if len(f) < l3+40 {
			break
		}
		ip := f[l3:]
		proto = ip[6]
		h = mix(h, binary.LittleEndian.Uint64(ip[8:16]))
		h = mix(h, binary.LittleEndian.Uint64(ip[16:24]))
		h = mix(h, binary.LittleEndian.Uint64(ip[24:32]))
		h = mix(h, binary.LittleEndian.Uint64(ip[32:40]))
		h = mix(h, uint64(binary.BigEndian.Uint32(ip[0:4])&0xfffff)) // flow label
		l4 = l3 + 40
	}
	if proto != 0 {
		h = mix(h, uint64(proto))
	}
	switch proto {
	case ipProtoTCP, ipProtoUDP, ipProtoSCTP, ipProtoUDPLite:
		if l4 >= 0 && len(f) >= l4+4 {
			h = mix(h, uint64(binary.LittleEndian.Uint32(f[l4:l4+4])))
		}
	}
	return uint32(fmix64(h))
}

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>32
}

// fmix64 is MurmurHash3's finaliser: every input bit affects every output
// bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// pick folds a 32-bit hash into [0, n) without a division.
func pick(h uint32, n int) int {
	return int(uint64(h) * uint64(n) >> 32)
}
