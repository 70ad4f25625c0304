package vnet

import (
	"encoding/binary"
	"math/bits"

	"github.com/tailscale/wireguard-go/tun"
)

// simdMin is the length from which checksum hands b to tun.Checksum
// (Tailscale's wireguard-go: AVX2 or SSE2 assembly on amd64, picked at
// start from the CPU's features; plain Go elsewhere): 4.7 times as fast
// as checksumGo over a 1500-byte or larger buffer on this project's test
// machine, but slower on short ones (11.7 against 9.5 ns at 64 bytes).
// The checksums of every hot path (segmenting, verifying before merging,
// finishing a partial checksum) are over whole payloads.
const simdMin = 128

// checksum returns the 16-bit one's complement sum (RFC 1071) of b, added to
// initial, folded but not complemented. Put ^checksum(...) in a header.
func checksum(b []byte, initial uint16) uint16 {
	if len(b) >= simdMin {
		return tun.Checksum(b, initial)
	}
	return checksumGo(b, initial)
}

// checksumGo is checksum in plain Go, for short buffers.
//
// The sum is byte-order independent (RFC 1071 §2(B)): b is added as
// little-endian 64-bit words with carries folded back in, and the folded
// result is byte-swapped into network order at the end. An odd trailing
// byte is the high byte of a zero-padded 16-bit word.
func checksumGo(b []byte, initial uint16) uint16 {
	// acc holds the sum in "little-endian space"; initial is swapped in.
	acc := uint64(bits.ReverseBytes16(initial))
	var carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), carry)
		b = b[64:]
	}
	if len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	if len(b) >= 16 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		b = b[16:]
	}
	if len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b[0:4])), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b[0:2])), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0]), carry)
	}
	// A carry out of bit 63 is worth 1 in one's complement arithmetic. If
	// adding it carries again, acc is 0 and adding 1 cannot overflow.
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry
	return bits.ReverseBytes16(fold64(acc))
}

// fold64 folds a 64-bit one's complement sum to 16 bits.
func fold64(s uint64) uint16 {
	s = s>>32 + s&0xffffffff // < 2^33
	s = s>>16 + s&0xffff     // < 2^17 + 2^16
	s = s>>16 + s&0xffff     // < 2^16 + 3
	s = s>>16 + s&0xffff     // <= 0xffff
	return uint16(s)
}

// add16 is one's complement addition of two folded sums.
func add16(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s>>16 + s&0xffff)
}

// pseudoSum returns the folded sum of the TCP/UDP pseudo-header (RFC 9293
// §3.1, RFC 768, RFC 8200 §8.1): source and destination address (4 or 16
// bytes each), protocol and upper-layer length.
func pseudoSum(src, dst []byte, proto uint8, length int) uint16 {
	s := checksum(src, 0)
	s = checksum(dst, s)
	return add16(s, fold64(uint64(proto)+uint64(length)))
}
