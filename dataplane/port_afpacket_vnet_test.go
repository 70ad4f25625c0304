package dataplane

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vxswitch/vxswitch/internal/vnet"
)

// Unit tests of the receive backlog (port_afpacket_vnet_linux.go): frames
// pushed into it come out of drain, with super-frames cut into segments,
// however small the caller's batches are. No root needed.

// vaSpec describes a test frame.
type vaSpec struct {
	name          string
	v6, udp       bool
	tags          int // 0, 1 (802.1Q) or 2 (802.1ad + 802.1Q)
	ipOpts        bool
	tcpOpts       bool
	fin, psh, cwr bool
	payload, mss  int // mss 0: not a super-frame
}

// vaBuild builds the frame with gopacket (lengths and checksums right)
// and the virtio_net_hdr the kernel would give it: GSO with gso_size mss,
// or no offload.
func vaBuild(t testing.TB, s vaSpec) ([]byte, vnet.Hdr) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: ptMACA, DstMAC: ptMACB}
	ls := []gopacket.SerializableLayer{eth}
	ipType := layers.EthernetTypeIPv4
	if s.v6 {
		ipType = layers.EthernetTypeIPv6
	}
	switch s.tags {
	case 0:
		eth.EthernetType = ipType
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 7, Type: ipType})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 7, Type: ipType})
	}
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	var nl gopacket.NetworkLayer
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		nl = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, Id: 0xfff0, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: proto,
			SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
		if s.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		nl = ip
		ls = append(ls, ip)
	}
	payload := make([]byte, s.payload)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	if s.udp {
		u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
		u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	} else {
		tcp := &layers.TCP{SrcPort: 4000, DstPort: 5000, Seq: 0xfffff000, Ack: 1, ACK: true,
			FIN: s.fin, PSH: s.psh, CWR: s.cwr, Window: 512}
		if s.tcpOpts {
			tcp.Options = []layers.TCPOption{{OptionType: 1}, {OptionType: 1},
				{OptionType: 8, OptionLength: 10, OptionData: make([]byte, 8)}}
		}
		tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	f := buf.Bytes()
	if s.mss == 0 {
		return f, vnet.Hdr{}
	}
	h := vaCsumHdr(s)
	h.GSOSize = uint16(s.mss)
	switch {
	case s.udp:
		h.GSOType = vnet.GSOUDPL4
	case s.v6:
		h.GSOType = vnet.GSOTCPv6
	default:
		h.GSOType = vnet.GSOTCPv4
	}
	return f, h
}

// vaCsumHdr is the virtio_net_hdr of a CHECKSUM_PARTIAL frame built from
// s: where its TCP or UDP checksum is.
func vaCsumHdr(s vaSpec) vnet.Hdr {
	l4 := 14 + 4*s.tags + 20
	switch {
	case s.v6:
		l4 += 20
	case s.ipOpts:
		l4 += 4
	}
	h := vnet.Hdr{Flags: vnet.FlagNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
	if s.udp {
		h.CsumOffset = 6
	}
	return h
}

// vaWant is what the backlog must hand out for f: vnet.Segment's output
// for the whole frame, given room for every segment.
func vaWant(t testing.TB, f []byte, h vnet.Hdr) [][]byte {
	t.Helper()
	n := 1
	if h.GSOSize > 0 {
		n = len(f)/int(h.GSOSize) + 1
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, len(f))
	}
	sizes := make([]int, n)
	n, err := vnet.Segment(f, h, out, sizes, 0)
	if err != nil {
		t.Fatalf("reference Segment: %v", err)
	}
	for i := range n {
		out[i] = out[i][:sizes[i]]
	}
	return out[:n]
}

func vaPush(t testing.TB, q *rxBacklog, f []byte, h vnet.Hdr) {
	t.Helper()
	slot, ok := q.next()
	if !ok {
		t.Fatal("backlog full")
	}
	q.commit(h, copy(slot, f))
}

// vaDrainAll drains q in batches of batch buffers until it is empty and
// returns every frame in order.
func vaDrainAll(t testing.TB, q *rxBacklog, batch int) [][]byte {
	t.Helper()
	bufs, sizes := ptBufs(batch, 2048)
	var got [][]byte
	for calls := 0; !q.empty(); calls++ {
		if calls > 10000 {
			t.Fatal("drain makes no progress")
		}
		n := q.drain(bufs, sizes, ptOff)
		if n > batch {
			t.Fatalf("drain returned %d frames for %d buffers", n, batch)
		}
		if n < batch && !q.empty() {
			t.Fatalf("drain returned %d of %d with frames left", n, batch)
		}
		for i := range n {
			got = append(got, bytes.Clone(bufs[i][ptOff:ptOff+sizes[i]]))
		}
	}
	return got
}

var vaSpecs = []vaSpec{
	{name: "tcp4", payload: 20000, mss: 1448, psh: true},
	{name: "tcp4-opts-fin-cwr", tcpOpts: true, ipOpts: true, fin: true, psh: true, cwr: true, payload: 9001, mss: 1000},
	{name: "tcp4-64k", tcpOpts: true, payload: 65000, mss: 1448, psh: true},
	{name: "tcp4-vlan", tags: 1, payload: 30000, mss: 1448},
	{name: "tcp4-qinq-exact", tags: 2, payload: 8 * 1000, mss: 1000, psh: true},
	{name: "tcp4-tiny-mss", tcpOpts: true, payload: 700, mss: 16, fin: true, cwr: true},
	{name: "tcp6", v6: true, tcpOpts: true, payload: 40000, mss: 1428, psh: true},
	{name: "tcp6-vlan-cwr", v6: true, tags: 1, payload: 5000, mss: 1220, cwr: true},
	{name: "udp4-uso", udp: true, payload: 12000, mss: 1472},
	{name: "udp6-uso-qinq", udp: true, v6: true, tags: 2, payload: 7000, mss: 1000},
	{name: "one-segment", payload: 500, mss: 1448},
	{name: "plain", payload: 1000},
}

// TestBacklogCarryOver pushes each super-frame between two plain frames
// and drains with batches from 1 buffer up: the frames must come out as
// one vnet.Segment of the whole frame would make them, in order, with
// the segments that did not fit carried over to the next call.
func TestBacklogCarryOver(t *testing.T) {
	before, bh := vaBuild(t, vaSpec{payload: 100})
	after, ah := vaBuild(t, vaSpec{payload: 200, v6: true})
	for _, s := range vaSpecs {
		f, h := vaBuild(t, s)
		want := append(append([][]byte{before}, vaWant(t, f, h)...), after)
		for _, batch := range []int{1, 2, 3, 7, 64} {
			t.Run(fmt.Sprintf("%s/batch=%d", s.name, batch), func(t *testing.T) {
				q := newRxBacklog(4)
				vaPush(t, &q, before, bh)
				vaPush(t, &q, f, h)
				vaPush(t, &q, after, ah)
				got := vaDrainAll(t, &q, batch)
				if len(got) != len(want) {
					t.Fatalf("got %d frames, want %d", len(got), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("frame %d of %d differs:\ngot  %x\nwant %x", i, len(want), vaHead(got[i]), vaHead(want[i]))
					}
				}
				if d, o := q.tooBig.Load(), q.offload.Load(); d != 0 || o != 0 {
					t.Errorf("drops: tooBig %d, offload %d; want none", d, o)
				}
			})
		}
	}
}

func vaHead(f []byte) []byte { return f[:min(len(f), 80)] }

// TestBacklogDrops: a super-frame that cannot be cut, one whose segments
// do not fit the caller's buffers, and a plain frame whose checksum offset
// lies outside it are each dropped whole and counted; the frames around
// them still come out.
func TestBacklogDrops(t *testing.T) {
	good, gh := vaBuild(t, vaSpec{payload: 100})
	super, sh := vaBuild(t, vaSpec{payload: 6000, mss: 1000})
	bad := bytes.Clone(super)
	bad[14] = 0x75 // IP version 7
	ufo := sh
	ufo.GSOType = vnet.GSOUDP
	jumbo, jh := vaBuild(t, vaSpec{payload: 9000, mss: 8000}) // 8 KB segments, 2 KB buffers
	badCsum := gh
	badCsum.Flags, badCsum.CsumStart, badCsum.CsumOffset = vnet.FlagNeedsCsum, 200, 0
	for _, batch := range []int{1, 3, 64} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			q := newRxBacklog(8)
			vaPush(t, &q, good, gh)
			vaPush(t, &q, bad, sh)
			vaPush(t, &q, super, ufo)
			vaPush(t, &q, jumbo, jh)
			vaPush(t, &q, good, badCsum)
			vaPush(t, &q, super, sh)
			vaPush(t, &q, good, gh)
			got := vaDrainAll(t, &q, batch)
			want := append(append([][]byte{good}, vaWant(t, super, sh)...), good)
			if len(got) != len(want) {
				t.Fatalf("got %d frames, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d differs", i)
				}
			}
			if o := q.offload.Load(); o != 3 {
				t.Errorf("offload drops %d, want 3 (bad headers, UFO, checksum offset)", o)
			}
			if d := q.tooBig.Load(); d != 1 {
				t.Errorf("tooBig drops %d, want 1 (segments over the buffer size)", d)
			}
		})
	}
}

// TestBacklogAllocs: cutting a 64 KB super-frame across small batches
// allocates nothing once the slots exist.
func TestBacklogAllocs(t *testing.T) {
	f, h := vaBuild(t, vaSpec{tags: 1, tcpOpts: true, payload: 65000, mss: 1448})
	q := newRxBacklog(2)
	bufs, sizes := ptBufs(16, 2048)
	run := func() {
		slot, _ := q.next()
		q.commit(h, copy(slot, f))
		for !q.empty() {
			q.drain(bufs, sizes, ptOff)
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per super-frame, want 0", a)
	}
}

// FuzzBacklogCut: whatever the frame, header and batch size, cutting in
// parts hands out exactly what one Segment of the whole frame makes, or
// nothing when Segment refuses the frame; never more than the batch.
func FuzzBacklogCut(f *testing.F) {
	for _, s := range vaSpecs {
		fr, h := vaBuild(f, s)
		b := make([]byte, vnet.HdrLen)
		h.Encode(b)
		f.Add(b, fr, uint8(3))
	}
	f.Fuzz(func(t *testing.T, hb, fr []byte, batch uint8) {
		h, err := vnet.Decode(hb)
		if err != nil || len(fr) > rxSlotSize {
			return
		}
		// The reference, with room for every segment: at most one per
		// gso_size bytes, each at most the headers plus gso_size.
		n, size := 1, len(fr)
		if h.GSO() != vnet.GSONone && h.GSOSize > 0 {
			n = len(fr)/int(h.GSOSize) + 1
			size = min(size, maxSuperHdr+int(h.GSOSize))
		}
		if n > 4096 {
			return // a tiny gso_size: slow, and nothing new
		}
		out := make([][]byte, n)
		for i := range out {
			out[i] = make([]byte, size)
		}
		sizes := make([]int, n)
		m, werr := vnet.Segment(fr, h, out, sizes, 0)

		q := newRxBacklog(1)
		vaPush(t, &q, fr, h)
		batch = batch%32 + 1
		bufs, bsizes := ptBufs(int(batch), size)
		var got [][]byte
		for calls := 0; !q.empty(); calls++ {
			if calls > 1<<16 {
				t.Fatal("no progress")
			}
			k := q.drain(bufs, bsizes, ptOff)
			if k > int(batch) {
				t.Fatalf("drain returned %d for a batch of %d", k, batch)
			}
			for i := range k {
				got = append(got, bytes.Clone(bufs[i][ptOff:ptOff+bsizes[i]]))
			}
		}
		if werr != nil {
			if len(got) != 0 {
				t.Fatalf("Segment refuses the frame (%v) but cutting handed out %d frames", werr, len(got))
			}
			return
		}
		if len(got) != m {
			t.Fatalf("got %d frames, Segment makes %d", len(got), m)
		}
		for i := range m {
			if !bytes.Equal(got[i], out[i][:sizes[i]]) {
				t.Fatalf("frame %d differs from Segment's", i)
			}
		}
	})
}

// BenchmarkBacklogCut cuts a 64 KB TCP super-frame (45 segments) into
// batches of 64 buffers (one call, no carry-over) or 16 (three calls).
func BenchmarkBacklogCut(b *testing.B) {
	f, h := vaBuild(b, vaSpec{tcpOpts: true, payload: 65000, mss: 1448})
	for _, batch := range []int{64, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			q := newRxBacklog(1)
			bufs, sizes := ptBufs(batch, 2048)
			segs := 0
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				slot, _ := q.next()
				q.commit(h, copy(slot, f))
				for !q.empty() {
					segs += q.drain(bufs, sizes, ptOff)
				}
			}
			b.ReportMetric(float64(segs)/b.Elapsed().Seconds(), "segs/s")
		})
	}
}
