package overlay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"

	"github.com/vxswitch/vxswitch/dataplane"
)

// drain reads from e until n frames arrived.
func drain(tb testing.TB, e *Endpoint, rb *rxBatch, n int) {
	for n > 0 {
		got, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
		if err != nil {
			tb.Fatal(err)
		}
		n -= got
	}
}

func floodBatch(tb testing.TB, n, size int, vni uint32, to netip.Addr) *txBatch {
	var frames [][]byte
	var meta []dataplane.TunnelMeta
	for i := range n {
		frames = append(frames, testFrame(tb, uint16(i), byte(i), size))
		meta = append(meta, dataplane.TunnelMeta{VNI: vni, VTEP: to})
	}
	return newTxBatch(frames, meta)
}

// oneFlow makes every frame of b one inner flow: one send socket, so
// WriteBatch sends the batch as GSO messages of up to 64 datagrams.
func oneFlow(b *txBatch) *txBatch {
	for i := range b.bufs {
		binary.BigEndian.PutUint16(b.bufs[i][testOff+14+20:], 9)
	}
	return b
}

// TestEndpointAllocs holds the promise that WriteBatch and ReadBatch do
// not allocate in steady state, for unicast and for a flood to 3 VTEPs,
// with GSO on the send side and GRO on the receive side (over loopback a
// GSO message reaches a GRO socket whole), and with both off. Both calls
// sit in one measured function: zero for the pair is zero for each.
func TestEndpointAllocs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noOffload bool
		flows     int // 64: spread over the send sockets; 1: one socket
		rxBufs    int // fewer than 64: datagrams wait for the next ReadBatch
	}{
		{"offload, 64 flows", false, 64, 64},
		{"offload, 1 flow", false, 1, 64},
		{"offload, 1 flow, 16 buffers", false, 1, 16},
		{"no offload", true, 64, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps := listenEndpoints(t, func(_ int, c *Config) {
				c.VNIs = []uint32{7}
				c.NoOffload = tc.noOffload
			}, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
			a := eps[0]
			for _, e := range eps[1:] {
				a.AddVTEP(e.LocalAddr().Addr(), 0, nil, SourceStatic)
			}
			rb := newRxBatch(tc.rxBufs, 2048)
			batch := func(to netip.Addr) *txBatch {
				b := floodBatch(t, 64, 200, 7, to)
				if tc.flows == 1 {
					oneFlow(b)
				}
				return b
			}

			uni := batch(lo2)
			if n := testing.AllocsPerRun(100, func() {
				if n, err := a.WriteBatch(uni.bufs, uni.offs, uni.meta); n != 64 || err != nil {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
				drain(t, eps[1], rb, 64)
			}); n != 0 {
				t.Errorf("unicast WriteBatch+ReadBatch of 64: %v allocations per run, want 0", n)
			}

			flood := batch(netip.Addr{})
			if n := testing.AllocsPerRun(100, func() {
				if n, err := a.WriteBatch(flood.bufs, flood.offs, flood.meta); n != 64 || err != nil {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
				for _, e := range eps[1:] {
					drain(t, e, rb, 64)
				}
			}); n != 0 {
				t.Errorf("flood to 3 VTEPs WriteBatch+ReadBatch of 64: %v allocations per run, want 0", n)
			}

			sa, sb := a.Stats(), eps[1].Stats()
			t.Logf("sent %d GSO messages (%d datagrams), %d plain; received %d coalesced messages (%d datagrams)",
				sa.TxGSOMessages, sa.TxGSODatagrams, sa.TxPlainDatagrams, sb.RxGROMessages, sb.RxGRODatagrams)
			if offload := sa.TxGSOMessages != 0 && sb.RxGROMessages != 0; offload == tc.noOffload {
				t.Errorf("GSO messages %d, coalesced messages received %d; want offload %v", sa.TxGSOMessages, sb.RxGROMessages, !tc.noOffload)
			}
		})
	}
}

// TestXNetReadBatchAllocs measures what golang.org/x/net/ipv4's ReadBatch
// allocates per message, against ReadBatch here (0). On Go 1.26 and
// x/net v0.62 it is 2 per message (the *net.UDPAddr and its IP), i.e. 128
// allocations for a batch of 64, which is why overlay uses internal/mmsg.
func TestXNetReadBatchAllocs(t *testing.T) {
	eps := listenEndpoints(t, vnis(7), "127.0.0.1", "127.0.0.2")
	a := eps[0]
	const n = 64
	tx := floodBatch(t, n, 200, 7, lo2)

	rcv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo3, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	_ = rcv.SetReadBuffer(4 << 20)
	a.AddVTEP(lo3, rcv.LocalAddr().(*net.UDPAddr).AddrPort().Port(), []uint32{7}, SourceGossip)
	pc := ipv4.NewPacketConn(rcv)
	msgs := make([]ipv4.Message, n)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	toLo3 := floodBatch(t, n, 200, 7, lo3)
	xnet := testing.AllocsPerRun(50, func() {
		if _, err := a.WriteBatch(toLo3.bufs, toLo3.offs, toLo3.meta); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < n; {
			k, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	})
	rb := newRxBatch(n, 2048)
	ours := testing.AllocsPerRun(50, func() {
		if _, err := a.WriteBatch(tx.bufs, tx.offs, tx.meta); err != nil {
			t.Fatal(err)
		}
		drain(t, eps[1], rb, n)
	})
	t.Logf("allocations per message received: x/net ipv4.PacketConn.ReadBatch %.2f, overlay ReadBatch %.2f (WriteBatch included in both: 0)",
		xnet/n, ours/n)
	if ours != 0 {
		t.Errorf("overlay: %v allocations per batch, want 0", ours)
	}
	if xnet == 0 {
		t.Log("x/net ReadBatch no longer allocates: internal/mmsg may be unnecessary")
	}
}
