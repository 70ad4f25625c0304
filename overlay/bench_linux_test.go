package overlay

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/internal/mmsg"
)

// Measured on the 2-core VM (kernel 6.18, Go 1.26) while other work kept
// the load average at 4-9, so the spread is wide. Before (d4a0368, no
// GSO/GRO) and after (UDP GSO + GRO) ran interleaved, five times each:
//
//	go test -c ./overlay && ./overlay.test -test.run XXX \
//	    -test.bench '^Benchmark(ReadBatch|WriteBatch|RoundTrip)$' -test.benchtime=3000x
//
// median [range] in packets/s, batches of 64, 0 allocs/op everywhere:
//
//	                                  before                after
//	WriteBatch   64 B, 1 VTEP, 1 flow   729k [679k-852k]     3.02M [2.23M-3.57M]
//	WriteBatch   64 B, 1 VTEP, 64 flows 489k [434k-638k]      751k [649k-878k]
//	WriteBatch   64 B, 3 VTEPs, 1 flow  685k [428k-822k]     4.06M [2.94M-4.48M]
//	WriteBatch   64 B, 3 VTEPs, 64 fl.  635k [481k-690k]     1.19M [919k-1.41M]
//	WriteBatch 1400 B, 1 VTEP, 1 flow   839k [655k-966k]     2.73M [2.22M-3.06M]
//	WriteBatch 1400 B, 1 VTEP, 64 flows 526k [482k-600k]      629k [575k-794k]
//	WriteBatch 1400 B, 3 VTEPs, 1 flow  784k [593k-1.03M]    3.30M [2.61M-3.34M]
//	WriteBatch 1400 B, 3 VTEPs, 64 fl.  666k [585k-818k]     1.24M [826k-1.37M]
//	ReadBatch    64 B, plain sender    4.81M [4.62M-5.86M]   4.57M [4.11M-5.19M]
//	ReadBatch    64 B, GSO sender      4.66M [3.52M-5.33M]  15.48M [7.91M-17.07M]
//	ReadBatch  1400 B, plain sender    4.16M [3.65M-4.69M]   4.26M [3.77M-4.50M]
//	ReadBatch  1400 B, GSO sender      4.02M [2.82M-4.52M]   8.57M [8.22M-9.37M]
//	RoundTrip    64 B                   451k [260k-499k]      759k [680k-909k]
//	RoundTrip  1400 B                   430k [393k-493k]      712k [415k-791k]
//
// WriteBatch counts copies sent (3 VTEPs: three per frame). Its sinks
// have no UDP_GRO, so the kernel cuts each GSO message into datagrams on
// their side, inside our sendmmsg: the gain is the stack traversed once
// per message instead of per datagram. 64 flows spread a batch over the
// 16 send sockets, so GSO messages hold about 4 datagrams; one flow (a
// TCP stream) fills them. ReadBatch times the receive side only: before,
// a GSO sender's messages reach the socket already cut into datagrams;
// after, they arrive whole and are split in user space (one copy each),
// and plain datagrams still land in the caller's buffers without a copy.
var benchSizes = []int{64, 1400}

const benchBatch = 64

// BenchmarkWriteBatch: encapsulate and send batches of 64 frames over
// loopback to sockets that never read (their queues overflow, so the cost
// is ours and the kernel's send path, not a reader's). flows=1 is one
// inner flow (one send socket, e.g. a TCP stream); flows=64 spreads the
// batch over the send sockets.
func BenchmarkWriteBatch(b *testing.B) {
	for _, size := range benchSizes {
		for _, vteps := range []int{1, 3} {
			for _, flows := range []int{1, 64} {
				b.Run(fmt.Sprintf("size=%d/vteps=%d/flows=%d", size, vteps, flows), func(b *testing.B) {
					benchWrite(b, size, vteps, flows)
				})
			}
		}
	}
}

func benchWrite(b *testing.B, size, vteps, flows int) {
	a := listenEndpoints(b, vnis(7), "127.0.0.1")[0]
	for i := range vteps {
		addr := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
		sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sink.Close() })
		_ = sink.SetReadBuffer(1)
		a.AddVTEP(addr, sink.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil, SourceStatic)
	}
	var frames [][]byte
	var meta []dataplane.TunnelMeta
	for i := range benchBatch {
		frames = append(frames, testFrame(b, uint16(i%flows), byte(i), size))
		meta = append(meta, dataplane.TunnelMeta{VNI: 7})
	}
	tb := newTxBatch(frames, meta)
	b.SetBytes(int64(size * benchBatch * vteps))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch*vteps)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(totalDrops(a))/float64(b.N*benchBatch*vteps), "drops/pkt")
}

// rawBlaster fills a socket's queue with VXLAN packets with sendmmsg, so
// that receive benchmarks can time the receive side alone. With gso set
// it sends them as UDP_SEGMENT messages (at most 64 datagrams and 64 KiB
// each), which the kernel hands whole to a receiver with UDP_GRO and
// splits for any other.
type rawBlaster struct {
	conn *net.UDPConn
	w    *mmsg.Writer
	n    int // messages
}

func newRawBlaster(b *testing.B, from netip.Addr, to netip.AddrPort, size, n int, gso bool) *rawBlaster {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	_ = c.SetWriteBuffer(4 << 20)
	rc, err := c.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var pkts [][]byte
	for i := range n {
		pkts = append(pkts, vxlanPacket(7, testFrame(b, uint16(i), byte(i), size)))
	}
	if !gso {
		batch := mmsg.NewBatch(n, mmsg.Options{Addrs: true})
		for i, p := range pkts {
			batch.SetBuf(i, p)
			batch.SetAddrPort(i, to)
		}
		return &rawBlaster{conn: c, w: mmsg.NewWriter(rc, batch), n: n}
	}
	seg := len(pkts[0])
	per := min(64, 65507/seg)
	msgs := (n + per - 1) / per
	batch := mmsg.NewBatch(msgs, mmsg.Options{Addrs: true, Control: unix.CmsgSpace(2)})
	for m := range msgs {
		var buf []byte
		for _, p := range pkts[m*per : min(n, (m+1)*per)] {
			buf = append(buf, p...)
		}
		batch.SetBuf(m, buf)
		batch.SetAddrPort(m, to)
		data, space := mmsg.PutCmsg(batch.ControlBuf(m), unix.SOL_UDP, unix.UDP_SEGMENT, 2)
		binary.NativeEndian.PutUint16(data, uint16(seg))
		batch.SetControlLen(m, space)
	}
	return &rawBlaster{conn: c, w: mmsg.NewWriter(rc, batch), n: msgs}
}

func (r *rawBlaster) blast(b *testing.B) {
	if next, err := r.w.Write(0, r.n, 0); next != r.n || err != nil {
		b.Fatalf("blast: %d, %v", next, err)
	}
}

// BenchmarkReadBatch: receive and decapsulate batches of 64 packets that
// are already queued on the socket (queued with the timer stopped).
// sender=plain queues 64 datagrams; sender=gso sends them as UDP_SEGMENT
// messages, which a receiver with UDP_GRO gets coalesced.
func BenchmarkReadBatch(b *testing.B) {
	for _, size := range benchSizes {
		for _, gso := range []bool{false, true} {
			name := fmt.Sprintf("size=%d/sender=plain", size)
			if gso {
				name = fmt.Sprintf("size=%d/sender=gso", size)
			}
			b.Run(name, func(b *testing.B) {
				e := listenEndpoints(b, vnis(7), "127.0.0.1")[0]
				bl := newRawBlaster(b, lo2, e.LocalAddr(), size, benchBatch, gso)
				rb := newRxBatch(benchBatch, 2048)
				b.SetBytes(int64(size * benchBatch))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					bl.blast(b)
					b.StartTimer()
					drain(b, e, rb, benchBatch)
				}
				b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "pkts/s")
			})
		}
	}
}

// BenchmarkXNetReadBatch is BenchmarkReadBatch through x/net's
// ipv4.PacketConn.ReadBatch, for comparison (no decap: a lower bound).
func BenchmarkXNetReadBatch(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo1, 0)))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadBuffer(4 << 20)
			bl := newRawBlaster(b, lo2, c.LocalAddr().(*net.UDPAddr).AddrPort(), size, benchBatch, false)
			pc := ipv4.NewPacketConn(c)
			msgs := make([]ipv4.Message, benchBatch)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{make([]byte, 2048)}
			}
			b.SetBytes(int64(size * benchBatch))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				bl.blast(b)
				b.StartTimer()
				for got := 0; got < benchBatch; {
					n, err := pc.ReadBatch(msgs, 0)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkRoundTrip: one goroutine encapsulates and sends 64 frames,
// then receives and decapsulates them on the other endpoint.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			eps := listenEndpoints(b, vnis(7), "127.0.0.1", "127.0.0.2")
			tb := floodBatch(b, benchBatch, size, 7, lo2)
			rb := newRxBatch(benchBatch, 2048)
			b.SetBytes(int64(size * benchBatch))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eps[0].WriteBatch(tb.bufs, tb.offs, tb.meta); err != nil {
					b.Fatal(err)
				}
				drain(b, eps[1], rb, benchBatch)
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
