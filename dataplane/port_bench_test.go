package dataplane

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

var ptBenchSizes = []int{64, 1514}

// ptGenerate sends batches of 64 frames of size bytes on packet socket fd
// with sendmmsg until stop is called, which returns the frames sent.
func ptGenerate(b *testing.B, fd, size int) (stop func() uint64) {
	b.Helper()
	if err := unix.SetNonblock(fd, true); err != nil {
		b.Fatal(err)
	}
	const n = 64
	gen := mmsg.NewBatch(n, mmsg.Options{})
	for i := range n {
		gen.SetBuf(i, ptFrame(b, ptMACB, ptMACA, size, uint32(i)))
	}
	var done atomic.Bool
	var sent uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !done.Load() {
			m, err := gen.Send(fd, 0, n, 0)
			if err == nil {
				sent += uint64(m)
			}
		}
	})
	return func() uint64 { done.Store(true); wg.Wait(); return sent }
}

// BenchmarkSystemRead reads frames that a sendmmsg generator sends from
// the other end of a veth; both share the machine's cores.
func BenchmarkSystemRead(b *testing.B) {
	for _, size := range ptBenchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			local, peer, ns := ptVeth(b, 1500)
			p := ptOpenSystem(b, local, SystemOptions{})
			stop := ptGenerate(b, ptPacketSocket(b, ns, peer), size)
			bufs, sizes := ptBufs(p.BatchSize(), 2048)
			var frames int
			b.ReportAllocs()
			for b.Loop() {
				n, err := p.ReadBatch(bufs, sizes, ptOff)
				if err != nil {
					b.Fatal(err)
				}
				frames += n
			}
			sent := stop()
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(frames)/float64(b.N), "pkts/op")
			if sent > 0 {
				b.ReportMetric(100*(1-float64(frames)/float64(sent)), "%lost")
			}
		})
	}
}

// BenchmarkSystemWrite sends batches of 64 frames into a veth whose other
// end is in a namespace that drops them.
func BenchmarkSystemWrite(b *testing.B) {
	for _, size := range ptBenchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			local, _, _ := ptVeth(b, 1500)
			p := ptOpenSystem(b, local, SystemOptions{})
			frames := make([][]byte, p.BatchSize())
			for i := range frames {
				frames[i] = ptFrame(b, ptMACA, ptMACB, size, uint32(i))
			}
			b.ReportAllocs()
			b.SetBytes(int64(size * len(frames)))
			for b.Loop() {
				if n, err := p.WriteBatch(frames); n != len(frames) || err != nil {
					b.Fatalf("WriteBatch = %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// ptBenchTAP makes an up TAP in this namespace with IPv6 off.
func ptBenchTAP(b *testing.B) (*tapPort, string) {
	b.Helper()
	name := ptName(b, "i")
	p := ptOpenInternal(b, name, InternalOptions{})
	testutil.Run(b, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	if err := SetupInternalLink(name, 0, "", nil); err != nil {
		b.Fatal(err)
	}
	return p, name
}

// BenchmarkInternalRead reads frames that a sendmmsg generator transmits
// on the TAP's kernel side.
func BenchmarkInternalRead(b *testing.B) {
	for _, size := range ptBenchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p, name := ptBenchTAP(b)
			stop := ptGenerate(b, ptPacketSocket(b, "", name), size)
			bufs, sizes := ptBufs(p.BatchSize(), 2048)
			var frames int
			b.ReportAllocs()
			for b.Loop() {
				n, err := p.ReadBatch(bufs, sizes, ptOff)
				if err != nil {
					b.Fatal(err)
				}
				frames += n
			}
			sent := stop()
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(frames)/float64(b.N), "pkts/op")
			if sent > 0 {
				b.ReportMetric(100*(1-float64(frames)/float64(sent)), "%lost")
			}
		})
	}
}

// BenchmarkInternalWrite writes batches of 64 frames into the TAP; the
// kernel drops them (unknown EtherType, not its MAC).
func BenchmarkInternalWrite(b *testing.B) {
	for _, size := range ptBenchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p, _ := ptBenchTAP(b)
			frames := make([][]byte, p.BatchSize())
			for i := range frames {
				frames[i] = ptFrame(b, ptMACA, ptMACB, size, uint32(i))
			}
			b.ReportAllocs()
			b.SetBytes(int64(size * len(frames)))
			for b.Loop() {
				if n, err := p.WriteBatch(frames); n != len(frames) || err != nil {
					b.Fatalf("WriteBatch = %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
