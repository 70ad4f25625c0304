package overlay

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/internal/mmsg"
)

// plainPeer is a remote VTEP played by a plain UDP socket without
// UDP_GRO: it sees every datagram on its own, whatever the sender did.
type plainPeer struct {
	conn *net.UDPConn
	addr netip.AddrPort
}

func newPlainPeer(t *testing.T, addr netip.Addr) *plainPeer {
	c := rawSender(t, addr)
	return &plainPeer{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// read returns n datagrams, failing the test if they do not come.
func (p *plainPeer) read(t *testing.T, n int) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 1<<16)
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(out) < n {
		k, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: %d of %d datagrams: %v", p.addr, len(out), n, err)
		}
		out = append(out, bytes.Clone(buf[:k]))
	}
	_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if k, _, err := p.conn.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("%s: datagram %d of %d bytes beyond the %d expected", p.addr, n+1, k, n)
	}
	return out
}

// TestGSOSend: one WriteBatch with a mix of sizes, destinations, flows
// and a flood goes out partly as UDP_SEGMENT messages, and receivers
// without GRO see each datagram on its own, with its header and frame,
// in frame order per flow.
func TestGSOSend(t *testing.T) {
	a := listenEndpoints(t, vnis(7, 8), "127.0.0.1")[0]
	peers := []*plainPeer{newPlainPeer(t, lo2), newPlainPeer(t, lo3), newPlainPeer(t, lo4)}
	for _, p := range peers {
		a.AddVTEP(p.addr.Addr(), p.addr.Port(), []uint32{7, 8}, SourceGossip)
	}
	type sent struct {
		frame []byte
		vni   uint32
		to    []int // peers
	}
	var want []sent
	add := func(flow uint16, size int, vni uint32, to ...int) {
		f := testFrame(t, flow, byte(len(want)), size)
		want = append(want, sent{f, vni, to})
	}
	for i := range 12 { // one flow to peers 0 and 1, interleaved, one size
		add(1, 200, 7, i%2)
	}
	for range 3 {
		add(1, 1000, 7, 0)
	}
	add(1, 150, 7, 0) // shorter: may end the run of 1000s
	add(1, 1000, 7, 0)
	for range 70 { // more than 64 segments to one peer
		add(2, 64, 8, 2)
	}
	for i := range 6 { // a flood, then a unicast of the same flow
		add(3, 300, 7, 0, 1, 2)
		if i == 3 {
			add(3, 300, 7, 1)
		}
	}
	for i := range 40 { // many flows: spread over the send sockets
		add(uint16(100+i), 90, 7, 2)
	}
	add(4, 9000, 8, 1) // one jumbo among small ones
	for range 7 {
		add(4, 9000, 8, 1) // 8 x 9008 > 64 KiB: two messages
	}

	var frames [][]byte
	var meta []dataplane.TunnelMeta
	perPeer := make([][]sent, len(peers))
	for _, s := range want {
		frames = append(frames, s.frame)
		m := dataplane.TunnelMeta{VNI: s.vni}
		if len(s.to) == 1 {
			m.VTEP = peers[s.to[0]].addr.Addr()
		}
		meta = append(meta, m)
		for _, p := range s.to {
			perPeer[p] = append(perPeer[p], s)
		}
	}
	tb := newTxBatch(frames, meta)
	if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(frames))
	}
	for p, peer := range peers {
		got := peer.read(t, len(perPeer[p]))
		// Order holds per flow (one send socket per flow); flows may
		// interleave. Compare per flow.
		byFlow := func(ds [][]byte) map[uint16][][]byte {
			m := map[uint16][][]byte{}
			for _, d := range ds {
				flow := binary.BigEndian.Uint16(d[VXLANHdrLen+14+20:])
				m[flow] = append(m[flow], d)
			}
			return m
		}
		var wantD [][]byte
		for _, s := range perPeer[p] {
			wantD = append(wantD, vxlanPacket(s.vni, s.frame))
		}
		gotF, wantF := byFlow(got), byFlow(wantD)
		for flow, w := range wantF {
			g := gotF[flow]
			if len(g) != len(w) {
				t.Errorf("peer %d flow %d: %d datagrams, want %d", p, flow, len(g), len(w))
				continue
			}
			for i := range w {
				if !bytes.Equal(g[i], w[i]) {
					t.Errorf("peer %d flow %d datagram %d: %d bytes % x..., want %d bytes % x...",
						p, flow, i, len(g[i]), g[i][:min(len(g[i]), 24)], len(w[i]), w[i][:24])
				}
			}
		}
	}
	st := a.Stats()
	t.Logf("tx %d datagrams: %d in %d GSO messages, %d plain", st.TxPackets, st.TxGSODatagrams, st.TxGSOMessages, st.TxPlainDatagrams)
	if st.TxGSOMessages == 0 || !st.GSO {
		t.Errorf("no GSO message sent (GSO %v)", st.GSO)
	}
	if st.TxGSODatagrams+st.TxPlainDatagrams != st.TxPackets {
		t.Errorf("GSO %d + plain %d datagrams != tx %d", st.TxGSODatagrams, st.TxPlainDatagrams, st.TxPackets)
	}
	if d := totalDrops(a); d != 0 {
		t.Errorf("%d drops: %v", d, st.Drops)
	}
}

// TestNoOffload: with NoOffload every datagram goes alone and the
// receive socket has no UDP_GRO.
func TestNoOffload(t *testing.T) {
	eps := listenEndpoints(t, func(_ int, c *Config) {
		c.VNIs = []uint32{7}
		c.NoOffload = true
	}, "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	a.AddVTEP(lo2, 0, nil, SourceStatic)
	sendOneFlow(t, a, b, 1, 32, 100)
	sa, sb := a.Stats(), b.Stats()
	if sa.GSO || sa.GRO || sa.TxGSOMessages != 0 || sa.TxPlainDatagrams != 32 || sb.RxGROMessages != 0 {
		t.Errorf("a: GSO %v GRO %v gso msgs %d plain %d; b: gro msgs %d",
			sa.GSO, sa.GRO, sa.TxGSOMessages, sa.TxPlainDatagrams, sb.RxGROMessages)
	}
}

// sendOneFlow sends rounds batches of n frames of size bytes, all of one
// flow, from a to b, and reads them.
func sendOneFlow(t *testing.T, a, b *Endpoint, rounds, n, size int) {
	t.Helper()
	for round := range rounds {
		tb := floodBatch(t, n, size, 7, netip.Addr{})
		for i := range tb.bufs {
			binary.BigEndian.PutUint16(tb.bufs[i][testOff+14+20:], 9)
		}
		if w, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); w != n || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v", round, w, err)
		}
		if got := readN(t, b, n, 5*time.Second); len(got) != n {
			t.Fatalf("round %d: got %d frames, want %d", round, len(got), n)
		}
	}
}

// TestGSORefused: when the kernel refuses UDP GSO with EINVAL or EIO
// while plain sends work (here: SO_NO_CHECK, a socket that sends without
// UDP checksums, which GSO cannot do; on older kernels also a device
// without checksum offload, with EIO, but 6.18 sends GSO through a veth
// with "tx off" fine), the datagrams of the refused message go one by
// one and GSO is off from then on.
func TestGSORefused(t *testing.T) {
	eps := listenEndpoints(t, vnis(7), "127.0.0.1", "127.0.0.2")
	a, b := eps[0], eps[1]
	a.AddVTEP(lo2, 0, nil, SourceStatic)
	for _, s := range a.sys.tx {
		var serr error
		if err := s.rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
		}); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
	}
	sendOneFlow(t, a, b, 2, 8, 200)
	st := a.Stats()
	if st.GSO || st.TxGSOMessages != 0 || st.TxPlainDatagrams != 16 || totalDrops(a) != 0 {
		t.Errorf("GSO %v (want false), %d GSO messages (want 0), %d plain (want 16), drops %v",
			st.GSO, st.TxGSOMessages, st.TxPlainDatagrams, st.Drops)
	}
}

// gsoSender sends UDP_SEGMENT messages by hand: to a receiver with
// UDP_GRO on the same host the kernel hands each message over whole, as
// GRO would have coalesced it, so the receive path can be tested with
// exact message boundaries and no root.
type gsoSender struct {
	w *mmsg.Writer
	b *mmsg.Batch
}

func newGSOSender(t *testing.T, from netip.Addr) *gsoSender {
	c := rawSender(t, from)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := mmsg.NewBatch(1, mmsg.Options{Addrs: true, Control: unix.CmsgSpace(2)})
	return &gsoSender{w: mmsg.NewWriter(rc, b), b: b}
}

// send sends the datagrams as one message with segment size seg (every
// datagram but the last must be seg bytes).
func (g *gsoSender) send(t *testing.T, to netip.AddrPort, seg int, dgrams ...[]byte) {
	t.Helper()
	var buf []byte
	for _, d := range dgrams {
		buf = append(buf, d...)
	}
	g.b.SetBuf(0, buf)
	g.b.SetAddrPort(0, to)
	g.b.SetControlLen(0, 0)
	if len(dgrams) > 1 {
		data, space := mmsg.PutCmsg(g.b.ControlBuf(0), unix.SOL_UDP, unix.UDP_SEGMENT, 2)
		binary.NativeEndian.PutUint16(data, uint16(seg))
		g.b.SetControlLen(0, space)
	}
	if next, err := g.w.Write(0, 1, 0); next != 1 || err != nil {
		t.Fatalf("GSO send of %d x %d bytes: %d, %v", len(dgrams), seg, next, err)
	}
	g.b.Release(1)
}

// TestGROReceive: coalesced messages are split into their datagrams, each
// checked and counted on its own, across ReadBatch calls with fewer
// buffers than datagrams, into buffers smaller than the message, and
// mixed with plain datagrams, in both receive layouts.
func TestGROReceive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bufs    int // buffers per ReadBatch
		bufSize int // after testOff
	}{
		{"batch 64, 2 KiB", 64, 2048},
		{"batch 5, 2 KiB", 5, 2048},
		{"batch 1, 2 KiB", 1, 2048},
		{"batch 64, 64 KiB", 64, 1 << 16},
		{"batch 7, 9100 B", 7, 9100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := listenEndpoints(t, func(_ int, c *Config) {
				c.VNIs = []uint32{7}
				c.BatchSize = 64
			}, "127.0.0.1")[0]
			if !e.Stats().GRO {
				t.Skip("no UDP_GRO on this kernel")
			}
			g := newGSOSender(t, lo2)
			to := e.LocalAddr()
			var wantFrames [][]byte
			var wantDrops [numDropReasons]uint64
			tag := 0
			good := func(size int) []byte {
				tag++
				f := testFrame(t, 1, byte(tag), size)
				wantFrames = append(wantFrames, f)
				return vxlanPacket(7, f)
			}
			bad := func(size int, r DropReason) []byte {
				tag++
				p := vxlanPacket(7, testFrame(t, 1, byte(tag), size))
				switch r {
				case DropNoIFlag:
					p[0] = 0
				case DropUnknownVNI:
					PutHeader(p, 99)
				}
				wantDrops[r]++
				return p
			}
			plain := func(d []byte) { g.send(t, to, len(d), d) }

			// Rounds, each with what is described; layouts switch as
			// coalesced messages come and go.
			for round := range 12 {
				switch round % 4 {
				case 0: // plain datagrams only
					for range 3 {
						plain(good(100 + round))
					}
				case 1: // a coalesced message with bad ones inside, last shorter
					var ds [][]byte
					for i := range 20 {
						switch i {
						case 3:
							ds = append(ds, bad(1400, DropNoIFlag))
						case 7:
							ds = append(ds, bad(1400, DropUnknownVNI))
						case 0, 19:
							ds = append(ds, good(1400-50*(i/19)))
						default:
							ds = append(ds, good(1400))
						}
					}
					g.send(t, to, len(ds[0]), ds...)
				case 2: // 64 small ones, then a plain one, then jumbo ones
					var ds [][]byte
					for range 64 {
						ds = append(ds, good(64))
					}
					g.send(t, to, len(ds[0]), ds...)
					plain(good(500))
					ds = ds[:0]
					for range 3 {
						ds = append(ds, good(9000))
					}
					g.send(t, to, len(ds[0]), ds...)
				case 3: // a coalesced message of 2, and one of all bad
					g.send(t, to, 208, good(200), good(200))
					g.send(t, to, 308, bad(300, DropNoIFlag), bad(300, DropNoIFlag), bad(300, DropNoIFlag))
				}
			}
			plain(good(60))                // last: once it is read, everything before it was
			for _, f := range wantFrames { // the caller's buffer cannot hold these
				if len(f) > tc.bufSize {
					wantDrops[DropTruncated]++
				}
			}
			wantFrames = slices.DeleteFunc(wantFrames, func(f []byte) bool { return len(f) > tc.bufSize })

			rb := newRxBatch(tc.bufs, tc.bufSize)
			var got [][]byte
			deadline := time.Now().Add(5 * time.Second)
			for len(got) < len(wantFrames) && time.Now().Before(deadline) {
				_ = e.sys.rx.SetReadDeadline(deadline)
				n, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
				if err != nil {
					t.Fatalf("ReadBatch after %d frames: %v", len(got), err)
				}
				if n > tc.bufs {
					t.Fatalf("ReadBatch = %d > %d buffers", n, tc.bufs)
				}
				for i := range n {
					got = append(got, bytes.Clone(rb.bufs[i][testOff:testOff+rb.sizes[i]]))
					if rb.meta[i] != (dataplane.TunnelMeta{VNI: 7, VTEP: lo2}) {
						t.Fatalf("meta %+v", rb.meta[i])
					}
				}
			}
			if len(got) != len(wantFrames) {
				t.Fatalf("got %d frames, want %d", len(got), len(wantFrames))
			}
			for i := range got {
				if !bytes.Equal(got[i], wantFrames[i]) {
					t.Fatalf("frame %d: %d bytes tag %d, want %d bytes tag %d", i, len(got[i]), got[i][42], len(wantFrames[i]), wantFrames[i][42])
				}
			}
			for r := range numDropReasons {
				if d := drops(e, r); d != wantDrops[r] {
					t.Errorf("%s drops = %d, want %d", r, d, wantDrops[r])
				}
			}
			st := e.Stats()
			if st.RxGROMessages == 0 {
				t.Errorf("no coalesced message received")
			}
			t.Logf("%d frames, %d coalesced messages with %d datagrams, drops %v", len(got), st.RxGROMessages, st.RxGRODatagrams, st.Drops)
		})
	}
}

// listenPair opens two endpoints on one free port.
func listenPair(t *testing.T, ca, cb Config) (*Endpoint, *Endpoint) {
	t.Helper()
	a, err := Listen(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	cb.Port = a.LocalAddr().Port()
	b, err := Listen(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// TestOffloadIPv6: GSO and GRO over an IPv6 underlay: a batch of one flow
// leaves as UDP_SEGMENT messages and arrives coalesced, split in order.
func TestOffloadIPv6(t *testing.T) {
	a := listenEndpoints(t, vnis(7), "::1")[0]
	b := listenEndpoints(t, vnis(7), "::1")[0]
	a.AddVTEP(b.LocalAddr().Addr(), b.LocalAddr().Port(), nil, SourceStatic)
	var frames [][]byte
	var meta []dataplane.TunnelMeta
	for i := range 100 {
		size := 1400
		if i >= 90 {
			size = 64
		}
		frames = append(frames, testFrame(t, 5, byte(i), size))
		meta = append(meta, dataplane.TunnelMeta{VNI: 7})
	}
	tb := newTxBatch(frames, meta)
	if n, err := a.WriteBatch(tb.bufs, tb.offs, tb.meta); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	got := readN(t, b, len(frames), 5*time.Second)
	if len(got) != len(frames) {
		t.Fatalf("got %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i].frame, frames[i]) || got[i].meta.VTEP != a.LocalAddr().Addr() {
			t.Fatalf("frame %d differs (%d bytes, want %d; from %s)", i, len(got[i].frame), len(frames[i]), got[i].meta.VTEP)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("sent %d GSO messages, %d plain; received %d coalesced messages", sa.TxGSOMessages, sa.TxPlainDatagrams, sb.RxGROMessages)
	if sa.TxGSOMessages == 0 || sb.RxGROMessages == 0 {
		t.Errorf("GSO messages %d, coalesced messages %d: want both", sa.TxGSOMessages, sb.RxGROMessages)
	}
}
