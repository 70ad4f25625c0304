package overlay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
)

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
	lo3 = netip.MustParseAddr("127.0.0.3")
	lo4 = netip.MustParseAddr("127.0.0.4")
)

func TestEndpointRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
	}{
		{"IPv4", "127.0.0.1", "127.0.0.2"},
		{"IPv6", "::1", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eps []*Endpoint
			if tc.a == tc.b {
				// One address: two ports, the remote registered with its own.
				eps = append(listenEndpoints(t, vnis(7, 8), tc.a), listenEndpoints(t, vnis(7, 8), tc.b)...)
			} else {
				eps = listenEndpoints(t, vnis(7, 8), tc.a, tc.b)
			}
			a, b := eps[0], eps[1]
			a.AddVTEP(b.LocalAddr().Addr(), b.LocalAddr().Port(), nil, SourceStatic)
			b.AddVTEP(a.LocalAddr().Addr(), a.LocalAddr().Port(), nil, SourceStatic)

			sizes := []int{60, 64, 1514, 9014, 14}
			var frames [][]byte
			var meta []dataplane.TunnelMeta
			for i, s := range sizes {
				f := testFrame(t, uint16(1000+i), byte(i), s)
				if s == 14 {
					f = f[:14] // an Ethernet header and nothing else is still a frame
				}
				frames = append(frames, f)
				meta = append(meta, dataplane.TunnelMeta{VNI: uint32(7 + i%2), VTEP: b.LocalAddr().Addr()})
			}
			tb := newTxBatch(frames, meta)
			n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta)
			if err != nil || n != len(frames) {
				t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(frames))
			}
			for i, f := range frames {
				hdr := tb.bufs[i][testOff-VXLANHdrLen : testOff]
				if vni, r := ParseHeader(append(bytes.Clone(hdr), f...)); vni != meta[i].VNI || r != DropNone {
					t.Errorf("header written for frame %d: % x", i, hdr)
				}
			}

			// Receive into buffers with sentinels before the header room.
			rb := newRxBatch(8, 9100)
			for _, buf := range rb.bufs {
				for j := range testOff - VXLANHdrLen {
					buf[j] = 0xa5
				}
			}
			var got []received
			for len(got) < len(frames) {
				n, err := b.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					got = append(got, received{bytes.Clone(rb.bufs[i][testOff : testOff+rb.sizes[i]]), rb.meta[i]})
					if !bytes.Equal(rb.bufs[i][:testOff-VXLANHdrLen], bytes.Repeat([]byte{0xa5}, testOff-VXLANHdrLen)) {
						t.Errorf("ReadBatch wrote before off-%d in buffer %d", VXLANHdrLen, i)
					}
				}
			}
			// Frames of different flows may leave by different send sockets
			// and so arrive in another order; the sizes tell them apart.
			slices.SortFunc(got, func(x, y received) int {
				return slices.Index(sizes, len(x.frame)) - slices.Index(sizes, len(y.frame))
			})
			for i := range frames {
				if !bytes.Equal(got[i].frame, frames[i]) {
					t.Errorf("frame %d: got %d bytes, want %d bytes %x...", i, len(got[i].frame), len(frames[i]), frames[i][:14])
				}
				want := dataplane.TunnelMeta{VNI: meta[i].VNI, VTEP: a.LocalAddr().Addr()}
				if got[i].meta != want {
					t.Errorf("frame %d meta = %+v, want %+v", i, got[i].meta, want)
				}
			}
			st := b.Stats()
			var wantBytes uint64
			for _, f := range frames {
				wantBytes += uint64(len(f))
			}
			if st.RxPackets != uint64(len(frames)) || st.RxBytes != wantBytes {
				t.Errorf("b rx = %d pkts %d bytes, want %d, %d", st.RxPackets, st.RxBytes, len(frames), wantBytes)
			}
			if st := a.Stats(); st.TxPackets != uint64(len(frames)) || st.TxBytes != wantBytes ||
				st.VTEPs[0].TxPackets != uint64(len(frames)) {
				t.Errorf("a tx = %+v", st)
			}
		})
	}
}

func vnis(v ...uint32) func(int, *Config) {
	return func(_ int, c *Config) { c.VNIs = v }
}

// rawSender is a plain UDP socket that sends hand-made VXLAN packets.
func rawSender(t *testing.T, from netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetWriteBuffer(4 << 20); err != nil {
		t.Log(err)
	}
	if err := c.SetReadBuffer(4 << 20); err != nil {
		t.Log(err)
	}
	return c
}

func vxlanPacket(vni uint32, inner []byte) []byte {
	p := make([]byte, VXLANHdrLen, VXLANHdrLen+len(inner))
	PutHeader(p, vni)
	return append(p, inner...)
}

func TestEndpointDrops(t *testing.T) {
	e := listenEndpoints(t, vnis(7), "127.0.0.1")[0]
	s := rawSender(t, lo3)
	dst := e.LocalAddr()
	send := func(p []byte) {
		t.Helper()
		if _, err := s.WriteToUDPAddrPort(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	good := testFrame(t, 1, 0xee, 64)
	noI := vxlanPacket(7, good)
	noI[0] = 0x00
	tests := []struct {
		name   string
		pkt    []byte
		reason DropReason
	}{
		{"unknown VNI", vxlanPacket(8, good), DropUnknownVNI},
		{"no I flag", noI, DropNoIFlag},
		{"empty", nil, DropShort},
		{"header only", vxlanPacket(7, nil), DropShort},
		{"inner 13 bytes", vxlanPacket(7, good[:13]), DropShort},
		{"larger than the buffer", vxlanPacket(7, make([]byte, 9200)), DropTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := drops(e, tt.reason)
			send(tt.pkt)
			send(vxlanPacket(7, good))
			got := readN(t, e, 1, 5*time.Second)
			if len(got) != 1 || !bytes.Equal(got[0].frame, good) {
				t.Fatalf("good packet behind the bad one: got %d frames", len(got))
			}
			if d := drops(e, tt.reason) - before; d != 1 {
				t.Errorf("%s drops += %d, want 1", tt.reason, d)
			}
		})
	}
	if got := totalDrops(e); got != uint64(len(tests)) {
		t.Errorf("total drops %d, want %d", got, len(tests))
	}
}

// TestEndpointGarbage sends 100k random packets interleaved with good
// ones at full speed: every garbage packet is dropped under the reason an
// independent model predicts, and every good one arrives intact.
func TestEndpointGarbage(t *testing.T) {
	const total, every = 100_000, 100 // every 100th packet is good
	e := listenEndpoints(t, vnis(7, 0x123456), "127.0.0.1")[0]
	s := rawSender(t, lo3)
	dst := e.LocalAddr()
	rng := rand.New(rand.NewPCG(1, 2))
	carried := map[uint32]bool{7: true, 0x123456: true}

	done := make(chan []received)
	go func() {
		var out []received
		rb := newRxBatch(64, 2048)
		for {
			n, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
			if err != nil {
				done <- out
				return
			}
			for i := range n {
				out = append(out, received{bytes.Clone(rb.bufs[i][testOff : testOff+rb.sizes[i]]), rb.meta[i]})
			}
		}
	}()

	var want [numDropReasons]uint64
	var wantGood [][]byte
	pkt := make([]byte, 256)
	const burst = 2000 // then wait for the endpoint, so the socket never overflows
	for i := range total {
		if i%every == 0 {
			f := testFrame(t, uint16(i), byte(i), 60+i%100)
			send := vxlanPacket(7, f)
			wantGood = append(wantGood, f)
			if _, err := s.WriteToUDPAddrPort(send, dst); err != nil {
				t.Fatal(err)
			}
		} else {
			p := pkt[:rng.IntN(len(pkt))]
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			if len(p) > 0 && rng.IntN(4) == 0 {
				p[0] |= vxlanFlagI // make deeper checks likely too
				if len(p) > 7 && rng.IntN(2) == 0 {
					binary.BigEndian.PutUint32(p[4:], 7<<8)
				}
			}
			switch vni := uint32(0); {
			case len(p) < VXLANHdrLen+EthHdrLen:
				want[DropShort]++
			case p[0]&0x08 == 0:
				want[DropNoIFlag]++
			case !carried[func() uint32 { vni = uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6]); return vni }()]:
				want[DropUnknownVNI]++
			default:
				wantGood = append(wantGood, bytes.Clone(p[VXLANHdrLen:]))
			}
			if _, err := s.WriteToUDPAddrPort(p, dst); err != nil {
				t.Fatal(err)
			}
		}
		if (i+1)%burst == 0 {
			sent := uint64(i + 1)
			waitFor(t, "the endpoint to catch up", func() bool {
				return e.ctr.rxPackets.Load()+totalDrops(e) >= sent
			})
		}
	}
	waitFor(t, "all packets", func() bool { return e.ctr.rxPackets.Load()+totalDrops(e) >= total })
	e.Close()
	got := <-done
	for r := range numDropReasons {
		if g := drops(e, r); g != want[r] {
			t.Errorf("%s: %d drops, want %d", r, g, want[r])
		}
	}
	if len(got) != len(wantGood) {
		t.Fatalf("got %d good frames, want %d", len(got), len(wantGood))
	}
	for i := range got {
		if !bytes.Equal(got[i].frame, wantGood[i]) || got[i].meta.VTEP != lo3 {
			t.Fatalf("good frame %d differs (from %s)", i, got[i].meta.VTEP)
		}
	}
	t.Logf("drops: short %d, no_i_flag %d, unknown_vni %d; good %d", want[DropShort], want[DropNoIFlag], want[DropUnknownVNI], len(got))
}

func TestEndpointAcceptMembers(t *testing.T) {
	e := listenEndpoints(t, func(_ int, c *Config) {
		c.VNIs = []uint32{7}
		c.Accept = AcceptMembers
		c.Remotes = []netip.Addr{lo2}
	}, "127.0.0.1")[0]
	good := vxlanPacket(7, testFrame(t, 1, 1, 64))
	from2, from3 := rawSender(t, lo2), rawSender(t, lo3)
	send := func(c *net.UDPConn) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort(good, e.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send(from3) // stranger: dropped
	send(from2) // static remote
	if got := readN(t, e, 1, 5*time.Second); len(got) != 1 || got[0].meta.VTEP != lo2 {
		t.Fatalf("got %+v, want one frame from %s", got, lo2)
	}
	if d := drops(e, DropUnknownSender); d != 1 {
		t.Errorf("unknown_sender = %d, want 1", d)
	}
	e.AddVTEP(lo3, 0, []uint32{7}, SourceGossip)
	send(from3)
	if got := readN(t, e, 1, 5*time.Second); len(got) != 1 || got[0].meta.VTEP != lo3 {
		t.Fatalf("after AddVTEP: got %+v, want one frame from %s", got, lo3)
	}
	e.RemoveVTEP(lo3, SourceGossip)
	send(from3)
	send(from2)
	if got := readN(t, e, 1, 5*time.Second); len(got) != 1 || got[0].meta.VTEP != lo2 {
		t.Fatalf("after RemoveVTEP: got %+v, want one frame from %s", got, lo2)
	}
	if d := drops(e, DropUnknownSender); d != 2 {
		t.Errorf("unknown_sender = %d, want 2", d)
	}
}

// TestEndpointFlood: head-end replication reaches every VTEP of the VNI
// and none of another VNI; RemoveVTEP stops traffic to a VTEP at once.
func TestEndpointFlood(t *testing.T) {
	eps := listenEndpoints(t, vnis(7, 8), "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	a, b, c, d := eps[0], eps[1], eps[2], eps[3]
	a.AddVTEP(lo2, 0, []uint32{7, 8}, SourceGossip)
	a.AddVTEP(lo3, 0, []uint32{7}, SourceGossip)
	a.AddVTEP(lo4, 0, []uint32{8}, SourceGossip)

	flood := func(vni uint32, tag byte) {
		t.Helper()
		var frames [][]byte
		var meta []dataplane.TunnelMeta
		for i := range 5 {
			frames = append(frames, testFrame(t, uint16(i), tag, 100))
			meta = append(meta, dataplane.TunnelMeta{VNI: vni})
		}
		tb := newTxBatch(frames, meta)
		if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != 5 || err != nil {
			t.Fatalf("flood WriteBatch = %d, %v", n, err)
		}
	}
	marker := func(to netip.Addr) {
		t.Helper()
		tb := newTxBatch([][]byte{testFrame(t, 0, 0xff, 64)}, []dataplane.TunnelMeta{{VNI: 8, VTEP: to}})
		if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != 1 || err != nil {
			t.Fatalf("marker WriteBatch = %d, %v", n, err)
		}
	}
	expect := func(e *Endpoint, vni uint32, tag byte, n int) {
		t.Helper()
		got := readN(t, e, n, 5*time.Second)
		if len(got) != n {
			t.Fatalf("%s got %d frames, want %d", e.LocalAddr(), len(got), n)
		}
		for _, r := range got {
			if r.meta.VNI != vni || r.frame[14+20+8] != tag || r.meta.VTEP != lo1 {
				t.Fatalf("%s got VNI %d tag %#x from %s, want VNI %d tag %#x", e.LocalAddr(), r.meta.VNI, r.frame[42], r.meta.VTEP, vni, tag)
			}
		}
	}

	flood(7, 0x07)
	marker(lo4) // d must see the marker first: nothing of VNI 7 before it
	expect(b, 7, 0x07, 5)
	expect(c, 7, 0x07, 5)
	expect(d, 8, 0xff, 1)

	flood(8, 0x08)
	marker(lo3)
	expect(b, 8, 0x08, 5)
	expect(d, 8, 0x08, 5)
	expect(c, 8, 0xff, 1)

	a.RemoveVTEP(lo3, SourceGossip)
	flood(7, 0x17)
	marker(lo3) // unicast to an address not in the table still goes out
	expect(b, 7, 0x17, 5)
	expect(c, 8, 0xff, 1)

	infos := a.VTEPs()
	if len(infos) != 2 || infos[0].Addr != lo2 || infos[0].TxPackets != 15 || infos[1].Addr != lo4 || infos[1].TxPackets != 6 {
		t.Errorf("VTEPs() = %+v", infos)
	}
	if st := a.Stats(); st.TxPackets != 15+5+5+3 {
		t.Errorf("TxPackets = %d, want %d", st.TxPackets, 28)
	}
}

// TestEndpointSourcePort: the outer source port depends on the inner
// flow only, stays in the configured range, and flows spread over the
// send sockets.
func TestEndpointSourcePort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max uint16
		sockets  int
	}{
		{"default range", 0, 0, 0},
		{"narrow range", 40100, 40131, 8},
		{"one port", 40200, 40200, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := listenEndpoints(t, func(_ int, c *Config) {
				c.VNIs = []uint32{7}
				c.SrcPortMin, c.SrcPortMax, c.SendSockets = tc.min, tc.max, tc.sockets
			}, "127.0.0.1")[0]
			lo, hi := a.cfg.SrcPortMin, a.cfg.SrcPortMax
			peer := rawSender(t, lo2)
			a.AddVTEP(lo2, peer.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil, SourceStatic)

			const flows = 200
			var frames [][]byte
			var meta []dataplane.TunnelMeta
			for round := range 2 {
				for f := range flows {
					frames = append(frames, testFrame(t, uint16(f), byte(round), 80))
					meta = append(meta, dataplane.TunnelMeta{VNI: 7})
				}
			}
			tb := newTxBatch(frames, meta)
			if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != len(frames) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			portOf := map[uint16]uint16{} // inner flow -> outer source port
			distinct := map[uint16]bool{}
			buf := make([]byte, 2048)
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			for range frames {
				n, from, err := peer.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				flow := binary.BigEndian.Uint16(buf[VXLANHdrLen+14+20 : n])
				p := from.Port()
				if p < lo || p > hi {
					t.Fatalf("source port %d outside %d-%d", p, lo, hi)
				}
				if old, ok := portOf[flow]; ok && old != p {
					t.Fatalf("flow %d left from ports %d and %d", flow, old, p)
				}
				portOf[flow] = p
				distinct[p] = true
			}
			wantDistinct := min(len(a.sys.tx), 6)
			if len(distinct) < wantDistinct {
				t.Errorf("%d flows used %d source ports, want at least %d", flows, len(distinct), wantDistinct)
			}
			t.Logf("%d flows over %d ports (%d sockets)", flows, len(distinct), len(a.sys.tx))
		})
	}
}

// TestEndpointUnreachable: remotes that cannot be reached (no listener,
// no route, wrong family, a receiver that never reads) cost a counter,
// never a stall, and the reachable VTEP gets every frame.
func TestEndpointUnreachable(t *testing.T) {
	eps := listenEndpoints(t, vnis(7), "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	deaf := rawSender(t, lo4) // bound, never read: its buffer fills up
	_ = deaf.SetReadBuffer(1)
	a.AddVTEP(lo2, 0, nil, SourceStatic)
	a.AddVTEP(netip.MustParseAddr("127.0.0.9"), 0, nil, SourceStatic) // no listener
	a.AddVTEP(netip.MustParseAddr("192.0.2.1"), 0, nil, SourceStatic) // no route from 127.0.0.1: EINVAL
	a.AddVTEP(netip.MustParseAddr("2001:db8::1"), 0, nil, SourceStatic)
	a.AddVTEP(lo4, deaf.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil, SourceStatic)

	const batches, per = 200, 32
	received := make(chan int)
	go func() {
		n := 0
		rb := newRxBatch(64, 2048)
		for {
			got, err := b.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
			if err != nil {
				received <- n
				return
			}
			n += got
		}
	}()
	var frames [][]byte
	var meta []dataplane.TunnelMeta
	for i := range per {
		frames = append(frames, testFrame(t, uint16(i), 1, 200))
		meta = append(meta, dataplane.TunnelMeta{VNI: 7})
	}
	tb := newTxBatch(frames, meta)
	start := time.Now()
	for range batches {
		n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta)
		if err != nil || n != per {
			t.Fatalf("WriteBatch = %d, %v; want %d", n, err, per)
		}
		// Pace a little so b's socket keeps up; the point is a's sends.
		waitFor(t, "b", func() bool {
			return b.ctr.rxPackets.Load()+totalDrops(b) >= a.table.load().byAddr[lo2].stats.txPackets.Load()
		})
	}
	elapsed := time.Since(start)
	b.Close()
	if n := <-received; n != batches*per {
		t.Errorf("reachable VTEP got %d frames, want %d", n, batches*per)
	}
	if d := drops(a, DropTxUnreachable); d != batches*per {
		t.Errorf("tx_unreachable = %d, want %d", d, batches*per)
	}
	if d := drops(a, DropTxBadDest); d != batches*per {
		t.Errorf("tx_bad_dest = %d, want %d", d, batches*per)
	}
	if elapsed > 5*time.Second {
		t.Errorf("%d batches took %v", batches, elapsed)
	}
	for _, v := range a.VTEPs() {
		t.Logf("%s: tx %d drops %d", v.Addr, v.TxPackets, v.TxDrops)
	}
}

func TestEndpointClose(t *testing.T) {
	e := listenEndpoints(t, vnis(7), "127.0.0.1")[0]
	before := runtime.NumGoroutine()
	errc := make(chan error)
	go func() {
		rb := newRxBatch(4, 128)
		_, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the result is the same if it has not yet
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != net.ErrClosed {
			t.Errorf("ReadBatch after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	tb := newTxBatch([][]byte{testFrame(t, 1, 1, 64)}, []dataplane.TunnelMeta{{VNI: 7, VTEP: lo2}})
	if _, err := e.WriteBatch(tb.bufs, tb.offs, tb.meta); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close = %v, want net.ErrClosed", err)
	}
	rb := newRxBatch(1, 128)
	if _, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff); err != net.ErrClosed {
		t.Errorf("ReadBatch after Close = %v", err)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestEndpointHeadroom(t *testing.T) {
	eps := listenEndpoints(t, vnis(7), "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	rb := newRxBatch(1, 128)
	if _, err := b.ReadBatch(rb.bufs, rb.sizes, rb.meta, VXLANHdrLen-1); err != ErrNoHeadroom {
		t.Errorf("ReadBatch(off=7) = %v, want ErrNoHeadroom", err)
	}
	f := testFrame(t, 1, 1, 64)
	bufs := [][]byte{append(make([]byte, 4), f...), make([]byte, 20), append(make([]byte, VXLANHdrLen), f...)}
	offs := []int{4, 10, VXLANHdrLen}
	meta := []dataplane.TunnelMeta{{VNI: 7, VTEP: lo2}, {VNI: 7, VTEP: lo2}, {VNI: 1 << 24, VTEP: lo2}}
	if n, err := a.WriteBatch(bufs, offs, meta); n != 0 || err != nil {
		t.Errorf("WriteBatch of bad frames = %d, %v", n, err)
	}
	if d := drops(a, DropTxNoHeadroom); d != 2 {
		t.Errorf("tx_no_headroom = %d, want 2", d)
	}
	if d := drops(a, DropTxBadVNI); d != 1 {
		t.Errorf("tx_bad_vni = %d, want 1", d)
	}
	// off == VXLANHdrLen exactly is enough, both ways.
	meta[2].VNI = 7
	if n, err := a.WriteBatch(bufs[2:], offs[2:], meta[2:]); n != 1 || err != nil {
		t.Fatalf("WriteBatch(off=8) = %d, %v", n, err)
	}
	buf := make([]byte, VXLANHdrLen+128)
	sizes := []int{0}
	m := []dataplane.TunnelMeta{{}}
	n, err := b.ReadBatch([][]byte{buf}, sizes, m, VXLANHdrLen)
	if n != 1 || err != nil || !bytes.Equal(buf[VXLANHdrLen:VXLANHdrLen+sizes[0]], f) {
		t.Errorf("ReadBatch(off=8) = %d, %v", n, err)
	}
}

// TestEndpointSkipsRefused: a datagram the kernel refuses in the middle
// of a sendmmsg run (EMSGSIZE here) is counted and skipped, and the
// datagrams after it in the same run still go out.
func TestEndpointSkipsRefused(t *testing.T) {
	eps := listenEndpoints(t, vnis(7), "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	var frames [][]byte
	var meta []dataplane.TunnelMeta
	for i, size := range []int{100, 101, 65530, 102, 65531, 103} {
		frames = append(frames, testFrame(t, 5, byte(i), size)) // one flow: one socket, one run
		meta = append(meta, dataplane.TunnelMeta{VNI: 7, VTEP: lo2})
	}
	tb := newTxBatch(frames, meta)
	if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != 4 || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want 4, nil", n, err)
	}
	if d := drops(a, DropTxTooBig); d != 2 {
		t.Errorf("tx_too_big = %d, want 2", d)
	}
	got := readN(t, b, 4, 5*time.Second)
	if len(got) != 4 {
		t.Fatalf("got %d frames, want 4", len(got))
	}
	for i, want := range []int{100, 101, 102, 103} {
		if len(got[i].frame) != want {
			t.Errorf("frame %d: %d bytes, want %d (in order)", i, len(got[i].frame), want)
		}
	}
}
