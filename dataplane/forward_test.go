package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vxswitch/vxswitch/fdb"
)

// sinkPort counts frames and never reads; it does not allocate.
type sinkPort struct{ frames int }

func (s *sinkPort) ReadBatch([][]byte, []int, int) (int, error) { return 0, net.ErrClosed }
func (s *sinkPort) WriteBatch(b [][]byte) (int, error)          { s.frames += len(b); return len(b), nil }
func (s *sinkPort) BatchSize() int                              { return 64 }
func (s *sinkPort) Close() error                                { return nil }

type sinkTunnel struct{ frames int }

func (s *sinkTunnel) ReadBatch([][]byte, []int, []TunnelMeta, int) (int, error) {
	return 0, net.ErrClosed
}
func (s *sinkTunnel) WriteBatch(b [][]byte, _ []int, _ []TunnelMeta) (int, error) {
	s.frames += len(b)
	return len(b), nil
}
func (s *sinkTunnel) BatchSize() int { return 64 }
func (s *sinkTunnel) Close() error   { return nil }

func testFrame(dst, src fdb.MAC, vlan int, size int) []byte {
	f := make([]byte, 0, size)
	f = append(f, dst[:]...)
	f = append(f, src[:]...)
	if vlan >= 0 {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, uint16(vlan))
	}
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	return f[:size]
}

// benchSwitch builds a switch with sink ports a (access 7), t (trunk) and
// a tunnel, whose workers are driven by hand (no reader goroutines), and a
// worker for port a with a batch of frames from n hosts on a to n hosts
// behind t and the tunnel.
func benchSwitch(tb testing.TB, size, batch int) (*Switch, *worker, [][]byte) {
	sw := New(Config{FDB: fdb.New(fdb.Config{Size: 8192})})
	a := newPort(0, PortConfig{Name: "a", Type: PortSystem, Mode: ModeAccess, HasTag: true, Tag: 7}, &sinkPort{})
	tr := newPort(1, PortConfig{Name: "t", Type: PortSystem, Mode: ModeTrunk}, &sinkPort{})
	tun := newTunnelPort(2, &sinkTunnel{}, TunnelConfig{})
	sw.ports = []*port{a, tr, tun}
	sw.tunnel = tun
	sw.rebuildLocked()
	now := fdb.Now()
	frames := make([][]byte, batch)
	for i := range frames {
		local := fdb.MAC{0x02, 0, 0, 0, 1, byte(i)}
		remote := fdb.MAC{0x02, 0, 0, 0, 2, byte(i)}
		if i%2 == 0 {
			sw.fdb.Learn(fdb.Key{VLAN: 7, MAC: remote}, fdb.Dest{Port: 1}, now)
		} else {
			sw.fdb.Learn(fdb.Key{VLAN: 7, MAC: remote}, fdb.Dest{Port: 2, VTEP: netip.MustParseAddr("198.51.100.3")}, now)
		}
		frames[i] = testFrame(remote, local, -1, size)
	}
	w := newWorker(sw, a, batch, 0)
	return sw, w, frames
}

func load(w *worker, frames [][]byte) {
	for i, f := range frames {
		w.sizes[i] = copy(w.bufs[i][Headroom:], f)
	}
}

func TestForwardAllocs(t *testing.T) {
	_, w, frames := benchSwitch(t, 64, 64)
	bcast := testFrame(fdb.Broadcast, fdb.MAC{0x02, 0, 0, 0, 1, 99}, -1, 64)
	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"unicast to trunk and tunnel", frames},
		{"flood to trunk (copy) and tunnel", [][]byte{bcast, bcast, bcast}},
		{"malformed", [][]byte{bcast[:10], testFrame(fdb.Broadcast, fdb.Broadcast, 7, 16)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			load(w, c.frames)
			w.forward(len(c.frames), false) // warm up: first learns, staging growth
			allocs := testing.AllocsPerRun(100, func() {
				load(w, c.frames)
				w.forward(len(c.frames), false)
			})
			if allocs != 0 {
				t.Errorf("forward allocates %v times per batch, want 0", allocs)
			}
		})
	}
}

func BenchmarkForward(b *testing.B) {
	for _, size := range []int{64, 1500, 9000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			_, w, frames := benchSwitch(b, size, 64)
			benchForward(b, w, frames, size)
		})
	}
}

// benchForward times forward on the batch frames from w's port.
func benchForward(b *testing.B, w *worker, frames [][]byte, size int) {
	b.SetBytes(int64(size * len(frames)))
	b.ReportAllocs()
	for b.Loop() {
		load(w, frames)
		w.forward(len(frames), false)
	}
	b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "pkts/s")
}

// TestForwardMemo checks forward's memory of the last source and
// destination within a batch: a change of either is looked up again, a
// source seen twice in a row is asked to be learned once, and a source
// that moves between VTEPs within a batch ends up behind the last one.
func TestForwardMemo(t *testing.T) {
	sw, w, known := benchSwitch(t, 64, 64)
	trunkSink := sw.ports[1].dev.(*sinkPort)
	tunSink := sw.ports[2].tun.(*sinkTunnel)
	toTrunk, toTunnel := known[0], known[1] // their destinations sit there
	s1, s2 := fdb.MAC{0x02, 0, 0, 0, 3, 1}, fdb.MAC{0x02, 0, 0, 0, 3, 2}
	from := func(f []byte, src fdb.MAC) []byte {
		f = append([]byte(nil), f...)
		copy(f[6:12], src[:])
		return f
	}
	batch := [][]byte{
		from(toTrunk, s1), from(toTunnel, s1), from(toTrunk, s1),
		from(toTrunk, s2), from(toTrunk, s1), from(toTrunk, s1),
	}
	load(w, batch)
	w.forward(len(batch), false)
	if trunkSink.frames != 5 || tunSink.frames != 1 {
		t.Errorf("trunk got %d frames, tunnel %d; want 5 and 1", trunkSink.frames, tunSink.frames)
	}
	for _, m := range []fdb.MAC{s1, s2} {
		if d, ok := sw.fdb.Lookup(fdb.Key{VLAN: 7, MAC: m}); !ok || d.Port != 0 {
			t.Errorf("%v learned as %+v %v, want port 0", m, d, ok)
		}
	}

	s3 := fdb.MAC{0x02, 0, 0, 0, 3, 3}
	one := make([][]byte, 64)
	for i := range one {
		one[i] = from(toTrunk, s3)
	}
	load(w, one)
	w.forward(len(one), false)
	if len(w.learn) != 1 {
		t.Errorf("a batch from one new source asked to learn %d times, want 1", len(w.learn))
	}

	// From the tunnel: s4 behind one VTEP, then behind another.
	wt := newWorker(sw, sw.ports[2], 64, 0)
	s4 := fdb.MAC{0x02, 0, 0, 0, 3, 4}
	v1, v2 := netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("198.51.100.4")
	moved := [][]byte{from(toTrunk, s4), from(toTrunk, s4)}
	load(wt, moved)
	wt.meta[0] = TunnelMeta{VNI: 7, VTEP: v1}
	wt.meta[1] = TunnelMeta{VNI: 7, VTEP: v2}
	wt.forward(len(moved), true)
	if d, ok := sw.fdb.Lookup(fdb.Key{VLAN: 7, MAC: s4}); !ok || d.Port != 2 || d.VTEP != v2 {
		t.Errorf("s4 learned as %+v %v, want behind %v", d, ok, v2)
	}
}

// BenchmarkForwardOneFlow is BenchmarkForward with every frame of the
// batch from one flow (one source, one destination), as a bulk transfer
// or a packet generator sends them; BenchmarkForward's 64 frames are 64
// flows.
func BenchmarkForwardOneFlow(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			_, w, frames := benchSwitch(b, size, 64)
			for i := range frames {
				frames[i] = frames[1] // to the tunnel
			}
			benchForward(b, w, frames, size)
		})
	}
}

func TestClassify(t *testing.T) {
	nu := PortConfig{Mode: ModeNativeUntagged, HasTag: true, Tag: 7}
	nu.Trunks.Add(9)
	tr := PortConfig{Mode: ModeTrunk}
	tr.Trunks.Add(9)
	acc := PortConfig{Mode: ModeAccess, HasTag: true, Tag: 7}
	m := fdb.MAC{2, 0, 0, 0, 0, 1}
	cases := []struct {
		name     string
		cfg      PortConfig
		vlan     int
		wantVLAN uint16
		wantDrop DropReason
		ok       bool
	}{
		{"access untagged", acc, -1, 7, 0, true},
		{"access priority tag", acc, 0, 7, 0, true},
		{"access tagged", acc, 7, 0, DropVLANNotAllowed, false},
		{"trunk allowed", tr, 9, 9, 0, true},
		{"trunk not allowed", tr, 8, 0, DropVLANNotAllowed, false},
		{"trunk untagged not allowed", tr, -1, 0, DropVLANNotAllowed, false},
		{"trunk all untagged", PortConfig{Mode: ModeTrunk}, -1, 0, 0, true},
		{"trunk VID 4095", PortConfig{Mode: ModeTrunk}, 4095, 0, DropVLANNotAllowed, false},
		{"native untagged", nu, -1, 7, 0, true},
		{"native tagged native", nu, 7, 7, 0, true},
		{"native tagged allowed", nu, 9, 9, 0, true},
		{"native tagged not allowed", nu, 10, 0, DropVLANNotAllowed, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf := make([]byte, 128)
			f := testFrame(m, m, c.vlan, 60)
			copy(buf[Headroom:], f)
			start, vlan, drop, ok := classify(&c.cfg, buf, Headroom, Headroom+len(f))
			if ok != c.ok || vlan != c.wantVLAN || (!ok && drop != c.wantDrop) {
				t.Fatalf("got vlan %d drop %v ok %v, want %d %v %v", vlan, drop, ok, c.wantVLAN, c.wantDrop, c.ok)
			}
			if ok && frame(buf[start:Headroom+len(f)]).tagged() {
				t.Error("frame still tagged after classify")
			}
		})
	}
}

func TestEgressTagged(t *testing.T) {
	nu := PortConfig{Mode: ModeNativeUntagged, HasTag: true, Tag: 7}
	nt := PortConfig{Mode: ModeNativeTagged, HasTag: true, Tag: 7}
	cases := []struct {
		name string
		cfg  PortConfig
		vlan uint16
		want bool
	}{
		{"access", PortConfig{Mode: ModeAccess, HasTag: true, Tag: 7}, 7, false},
		{"trunk", PortConfig{Mode: ModeTrunk}, 7, true},
		{"trunk vlan 0", PortConfig{Mode: ModeTrunk}, 0, false},
		{"native-untagged native", nu, 7, false},
		{"native-untagged other", nu, 9, true},
		{"native-tagged native", nt, 7, true},
	}
	for _, c := range cases {
		if got := egressTagged(&c.cfg, c.vlan); got != c.want {
			t.Errorf("%s: got %v want %v", c.name, got, c.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	m := fdb.MAC{2, 0, 0, 0, 0, 1}
	f.Add(testFrame(m, m, 7, 64), uint8(0), uint16(7))
	f.Add(testFrame(m, m, -1, 64), uint8(1), uint16(7))
	f.Add([]byte{0x81, 0}, uint8(2), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, tag uint16) {
		cfg := PortConfig{Mode: VLANMode(mode % 4), HasTag: true, Tag: tag % (MaxVLAN + 1)}
		if cfg.Mode == ModeTrunk {
			cfg.HasTag = false
		}
		buf := make([]byte, Headroom+len(data))
		copy(buf[Headroom:], data)
		start, vlan, _, ok := classify(&cfg, buf, Headroom, len(buf))
		if !ok {
			return
		}
		if start < Headroom || start > len(buf)-EthHdrLen {
			t.Fatalf("start %d out of range", start)
		}
		if !cfg.Carries(vlan) {
			t.Fatalf("accepted VLAN %d the port does not carry", vlan)
		}
		if vlan > MaxVLAN {
			t.Fatalf("VLAN %d", vlan)
		}
	})
}

// tcpSuperFrame is an untagged IPv4 TCP frame with payload bytes of data
// and a correct checksum, as gopacket builds it.
func tcpSuperFrame(tb testing.TB, dst, src fdb.MAC, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: src[:], DstMAC: dst[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	tcp := &layers.TCP{SrcPort: 5000, DstPort: 5201, Seq: 1, ACK: true, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i)
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(data)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// countPort counts frames and their largest size without allocating.
type countPort struct {
	sinkPort
	largest int
	bytes   int
}

func (c *countPort) WriteBatch(b [][]byte) (int, error) {
	for _, f := range b {
		c.largest = max(c.largest, len(f))
		c.bytes += len(f)
	}
	c.frames += len(b)
	return len(b), nil
}

func TestSuperFrameSegmentedToMTU(t *testing.T) {
	sw := New(Config{FDB: fdb.New(fdb.Config{})})
	a := newPort(0, PortConfig{Name: "a", Type: PortSystem, Mode: ModeTrunk}, &sinkPort{})
	out := &countPort{}
	b := newPort(1, PortConfig{Name: "b", Type: PortSystem, Mode: ModeTrunk, MTU: 1500}, out)
	sw.ports = []*port{a, b}
	sw.rebuildLocked()
	w := newWorker(sw, a, 4, 0)
	macB := fdb.MAC{2, 0, 0, 0, 0, 0xb}
	sw.fdb.Learn(fdb.Key{VLAN: 0, MAC: macB}, fdb.Dest{Port: 1}, fdb.Now())
	// Three 64 KB super-frames in one batch need more segment slots than
	// the worker has (4): it writes and reuses them.
	f := tcpSuperFrame(t, macB, fdb.MAC{2, 0, 0, 0, 0, 0xa}, 60000)
	frames := [][]byte{f, f, f}
	load(w, frames)
	w.forward(len(frames), false)
	if out.frames != 3*42 || out.largest > 1514 {
		t.Fatalf("b got %d frames, largest %d; want %d frames of at most 1514 bytes", out.frames, out.largest, 3*42)
	}
	if d := b.ctr.drops[DropTooBig].Load(); d != 0 {
		t.Errorf("too_big drops: %d", d)
	}
	// A non-TCP frame over the MTU is still dropped, not cut.
	big := testFrame(macB, fdb.MAC{2, 0, 0, 0, 0, 0xa}, -1, 3000)
	load(w, [][]byte{big})
	w.forward(1, false)
	if d := b.ctr.drops[DropTooBig].Load(); d != 1 {
		t.Errorf("too_big drops after a 3000-byte non-TCP frame: %d, want 1", d)
	}
	allocs := testing.AllocsPerRun(20, func() {
		load(w, frames)
		w.forward(len(frames), false)
	})
	if allocs != 0 {
		t.Errorf("segmenting allocates %v times per batch", allocs)
	}
}
