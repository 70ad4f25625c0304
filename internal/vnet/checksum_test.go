package vnet

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// refChecksum is the obviously-correct model of checksum: RFC 1071 over
// big-endian byte pairs, an odd last byte padded with zero, folded at the
// end. It is kept here, beside the fast one, to check it and to measure it
// against.
func refChecksum(b []byte, initial uint16) uint16 {
	sum := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

func TestChecksumMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<16+8)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	ones := make([]byte, len(buf))
	for i := range ones {
		ones[i] = 0xff
	}
	zeros := make([]byte, len(buf))
	for _, data := range []struct {
		name string
		b    []byte
	}{{"random", buf}, {"ones", ones}, {"zeros", zeros}} {
		t.Run(data.name, func(t *testing.T) {
			lengths := []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1499, 1500, 8999, 9000,
				simdMin - 1, simdMin, simdMin + 1, 65535, 65536}
			for n := 0; n < 300; n++ {
				lengths = append(lengths, n)
			}
			for range 200 {
				lengths = append(lengths, rng.IntN(9000))
			}
			for _, n := range lengths {
				for align := range 8 {
					b := data.b[align : align+n]
					for _, initial := range []uint16{0, 1, 0x8000, 0xfffe, 0xffff, uint16(rng.Uint32())} {
						want := refChecksum(b, initial)
						if got := checksum(b, initial); got != want {
							t.Fatalf("len %d align %d initial %#04x: checksum = %#04x, model = %#04x", n, align, initial, got, want)
						}
						if got := checksumGo(b, initial); got != want {
							t.Fatalf("len %d align %d initial %#04x: checksumGo = %#04x, model = %#04x", n, align, initial, got, want)
						}
					}
				}
			}
		})
	}
}

func TestPseudoSum(t *testing.T) {
	src := []byte{192, 0, 2, 1}
	dst := []byte{192, 0, 2, 200}
	// RFC 9293 §3.1: src, dst, zero, PTCL, TCP length.
	ph := append(append(append([]byte{}, src...), dst...), 0, 6, 0x05, 0xdc)
	if got, want := pseudoSum(src, dst, 6, 1500), refChecksum(ph, 0); got != want {
		t.Errorf("IPv4 pseudoSum = %#04x, want %#04x", got, want)
	}
	src6 := []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	dst6 := []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	// RFC 8200 §8.1: src, dst, 32-bit length, 24 zero bits, next header.
	ph6 := append(append(append([]byte{}, src6...), dst6...), 0, 1, 0x00, 0x10, 0, 0, 0, 17)
	if got, want := pseudoSum(src6, dst6, 17, 0x10010), refChecksum(ph6, 0); got != want {
		t.Errorf("IPv6 pseudoSum = %#04x, want %#04x", got, want)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, size := range []int{64, 1500, 9000, 65536} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		for _, impl := range []struct {
			name string
			fn   func([]byte, uint16) uint16
		}{{"fast", checksum}, {"go", checksumGo}, {"model", refChecksum}} {
			b.Run(fmt.Sprintf("impl=%s/size=%d", impl.name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var s uint16
				for b.Loop() {
					s += impl.fn(buf, s)
				}
				b.ReportMetric(float64(size)*8*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gbit/s")
			})
		}
	}
}
