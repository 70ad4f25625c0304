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
// the load average at 14-18, so the spread is wide:
//
//	go test -run XXX -bench . -benchtime=3000x -count=5 ./overlay/
//
// median [range], batches of 64, 0 allocs/op everywhere except x/net:
//
//	WriteBatch  64 B, 1 VTEP      338k pkts/s [224k-540k]
//	WriteBatch  64 B, 3 VTEPs     245k pkts/s [228k-485k] (copies sent)
//	WriteBatch 1500 B, 1 VTEP     143k pkts/s [96k-192k]
//	WriteBatch 1500 B, 3 VTEPs    366k pkts/s [230k-378k]
//	ReadBatch   64 B             4.8M pkts/s [3.5M-5.6M]   0 allocs/op
//	ReadBatch 1500 B             4.6M pkts/s [4.4M-4.7M]   0 allocs/op
//	x/net ReadBatch   64 B       3.6M pkts/s [1.8M-3.9M] 128 allocs/op (2 per message)
//	x/net ReadBatch 1500 B       2.1M pkts/s [1.6M-3.2M] 128 allocs/op
//	RoundTrip   64 B              246k pkts/s [84k-285k]
//	RoundTrip 1500 B              343k pkts/s [276k-454k]
//
// Sending is bound by the kernel's loopback path (each datagram runs the
// whole receive stack inside sendmmsg), as FACTS.md's 0.35-0.5 Mpps for
// raw UDP sendmmsg says; receiving queued datagrams is cheap, and ours
// beats x/net by 25-50 % while allocating nothing.
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
