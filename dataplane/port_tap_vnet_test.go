package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
	"github.com/vxswitch/vxswitch/internal/vnet"
)

// tvUpTAP makes an up internal port in this namespace with IPv6 off, and
// a packet socket with PACKET_VNET_HDR on its kernel side: what the test
// sends there with a NEEDS_CSUM header leaves the kernel through the TAP
// as CHECKSUM_PARTIAL, as the kernel's own TCP and UDP do.
func tvUpTAP(t *testing.T, opts InternalOptions) (p *tapPort, fd int) {
	t.Helper()
	p, fd = ptUpTAP(t, opts)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatal(err)
	}
	return p, fd
}

// tvMessage is hdr+frame, as a PACKET_VNET_HDR socket sends it.
func tvMessage(f []byte, h vnet.Hdr) []byte {
	b := make([]byte, vnet.HdrLen+len(f))
	h.Encode(b)
	copy(b[vnet.HdrLen:], f)
	return b
}

// TestInternalFinishesPartial hands the TAP CHECKSUM_PARTIAL frames (TCP
// and UDP, IPv4 and IPv6, with and without a VLAN tag) and a plain one:
// the port must return each finished, exactly as built with correct
// checksums.
func TestInternalFinishesPartial(t *testing.T) {
	p, fd := tvUpTAP(t, InternalOptions{})
	var want [][]byte
	partial := 0
	for _, s := range []vaSpec{
		{name: "partial-tcp4", payload: 1000},
		{name: "partial-tcp4-opts", tcpOpts: true, ipOpts: true, payload: 333},
		{name: "partial-udp4", udp: true, payload: 77},
		{name: "partial-tcp6", v6: true, payload: 1200},
		{name: "partial-udp6-vlan", v6: true, udp: true, tags: 1, payload: 999},
		{name: "plain", payload: 100},
	} {
		f, _ := vaBuild(t, s)
		if s.name == "plain" {
			ptSend(t, fd, tvMessage(f, vnet.Hdr{}))
		} else {
			h := vaCsumHdr(s)
			ptSend(t, fd, tvMessage(vaPartial(f, h), h))
			partial++
		}
		want = append(want, f)
	}
	got := ptReadFrames(t, p, 2048, len(want), func(f []byte) bool {
		return bytes.Equal(f[:12], append(append([]byte{}, ptMACB...), ptMACA...))
	})
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d:\ngot  %x\nwant %x", i, vaHead(got[i]), vaHead(want[i]))
		}
	}
	if p.rxFinished != uint64(partial) {
		t.Errorf("finished %d checksums, want %d (did the kernel hand them over finished?)", p.rxFinished, partial)
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

// tvTCPSumOK checks the TCP checksum of an untagged IPv4 frame.
func tvTCPSumOK(f []byte) bool {
	ihl := int(f[14]&0x0f) * 4
	l4 := f[14+ihl : 14+int(binary.BigEndian.Uint16(f[16:]))]
	s := vaSum(f[26:34]) + uint32(unix.IPPROTO_TCP) + uint32(len(l4)) + vaSum(l4)
	return vaFold(s) == 0xffff
}

// TestInternalKernelTCP has the namespace's kernel open a TCP connection
// through the internal port: its SYNs come out of the TAP with their
// checksum left to the device (NEEDS_CSUM), and must be read finished.
func TestInternalKernelTCP(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, ptName(t, "n"))
	name := ptName(t, "i")
	p := ptOpenInternal(t, name, InternalOptions{})
	if err := SetupInternalLink(name, 0, "/run/netns/"+ns, []netip.Prefix{ptNSAddr4}); err != nil {
		t.Fatal(err)
	}
	testutil.InNS(t, ns, "ip", "neigh", "replace", ptPeerAddr4.String(), "lladdr", ptMACB.String(), "dev", name)
	cmd := exec.Command("ip", "netns", "exec", ns, "timeout", "5", "bash", "-c",
		"exec 3<>/dev/tcp/"+ptPeerAddr4.String()+"/7777")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	syn := ptReadFrames(t, p, 2048, 1, func(f []byte) bool {
		return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == unix.IPPROTO_TCP &&
			binary.BigEndian.Uint16(f[36:]) == 7777
	})[0]
	if !tvTCPSumOK(syn) {
		t.Errorf("SYN with a wrong TCP checksum: %x", syn)
	}
	if p.rxFinished == 0 {
		t.Errorf("no checksum finished: the kernel handed the SYN over complete (no checksum offload?)")
	}
}

// TestInternalReadPartialAllocs holds the zero-allocation promise for the
// read path with checksums to finish.
func TestInternalReadPartialAllocs(t *testing.T) {
	p, fd := tvUpTAP(t, InternalOptions{})
	const n = 64
	s := vaSpec{payload: 200}
	f, _ := vaBuild(t, s)
	h := vaCsumHdr(s)
	msg := tvMessage(vaPartial(f, h), h)
	gen := mmsg.NewBatch(n, mmsg.Options{})
	for i := range n {
		gen.SetBuf(i, msg)
	}
	bufs, sizes := ptBufs(n, 2048)
	ptSend(t, fd, msg)
	if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if m, err := gen.Send(fd, 0, n, 0); m != n || err != nil {
			t.Fatalf("send: %d, %v", m, err)
		}
		got := 0
		for got < n {
			k, err := p.ReadBatch(bufs, sizes, ptOff)
			if err != nil {
				t.Fatal(err)
			}
			for i := range k {
				if !bytes.Equal(bufs[i][ptOff:ptOff+sizes[i]], f) {
					t.Fatalf("frame not finished: %x", vaHead(bufs[i][ptOff:ptOff+sizes[i]]))
				}
			}
			got += k
		}
	})
	if allocs != 0 {
		t.Fatalf("ReadBatch with checksums to finish: %v allocations per batch, want 0", allocs)
	}
	if p.rxFinished < 100*n {
		t.Errorf("finished %d checksums, want at least %d", p.rxFinished, 100*n)
	}
}

// TestInternalSuperFrames hands the TAP TCP super-frames (TSO, IPv4 and
// IPv6, one with a VLAN tag) between plain and partial frames, and reads
// them with buffers that hold a super-frame, with wire-sized ones, and
// with batches smaller than a super-frame's segments: what comes out must
// be exactly the segments vnet.Segment makes, in order.
func TestInternalSuperFrames(t *testing.T) { ptIOModes(t, testInternalSuperFrames) }

func testInternalSuperFrames(t *testing.T, opts InternalOptions) {
	for _, tc := range []struct {
		name         string
		batch, bufSz int
	}{
		{"big-buffers", 0, maxSuperFrame},
		{"wire-buffers", 0, 2048},
		{"batch-3", 3, 2048},
		{"batch-1", 1, maxSuperFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts.BatchSize, opts.MTU = tc.batch, 9000
			p, fd := tvUpTAP(t, opts)
			var want [][]byte
			supers := 0
			for _, s := range []vaSpec{
				{name: "plain", payload: 100},
				{name: "tso4", tcpOpts: true, payload: 30000, mss: 1448, psh: true},
				{name: "partial-tcp4", payload: 1000},
				{name: "tso6", v6: true, payload: 10000, mss: 1428, fin: true},
				{name: "tso4-big", payload: 60000, mss: 1460},
				{name: "tso4-vlan", tags: 1, payload: 5000, mss: 1448},
				{name: "plain", payload: 60},
			} {
				f, h := vaBuild(t, s)
				switch {
				case s.mss > 0:
					// A wrong checksum in the super-frame: Segment
					// computes them all.
					want = append(want, vaWant(t, f, h)...)
					ptSend(t, fd, tvMessage(vaPartial(f, h), h))
					supers++
				case s.name == "plain":
					ptSend(t, fd, tvMessage(f, vnet.Hdr{}))
					want = append(want, f)
				default:
					h := vaCsumHdr(s)
					ptSend(t, fd, tvMessage(vaPartial(f, h), h))
					want = append(want, f)
				}
			}
			got := ptReadFrames(t, p, tc.bufSz, len(want), func(f []byte) bool {
				return bytes.Equal(f[:12], append(append([]byte{}, ptMACB...), ptMACA...))
			})
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d of %d (%d bytes, want %d):\ngot  %x\nwant %x", i, len(want), len(got[i]), len(want[i]), vaHead(got[i]), vaHead(want[i]))
				}
			}
			if p.rxSuper != uint64(supers) {
				t.Errorf("%d super-frames received, want %d (did the kernel segment them?)", p.rxSuper, supers)
			}
			// With buffers that hold a super-frame, the frames behind the
			// first of a batch come through the ring (super-frames among
			// them go through the backlog); with smaller ones, never.
			if ring := p.rxRings > 0; ring != (!opts.PlainIO && tc.bufSz >= maxSuperFrame && p.batch > 1) {
				t.Errorf("%d ring reads (PlainIO %v, %d-byte buffers, batch %d)", p.rxRings, opts.PlainIO, tc.bufSz, p.batch)
			}
			if d := p.DropCounts(); d != (PortDrops{}) {
				t.Errorf("drops %+v, want none", d)
			}
		})
	}
}

// TestInternalReadSuperAllocs holds the zero-allocation promise for the
// read path with super-frames to cut, into wire-sized buffers.
func TestInternalReadSuperAllocs(t *testing.T) {
	p, fd := tvUpTAP(t, InternalOptions{MTU: 9000})
	s := vaSpec{payload: 20000, mss: 1448}
	f, h := vaBuild(t, s)
	msg := tvMessage(vaPartial(f, h), h)
	segs := len(vaWant(t, f, h))
	bufs, sizes := ptBufs(p.BatchSize(), 2048)
	read := func() {
		ptSend(t, fd, msg)
		for got := 0; got < segs; {
			k, err := p.ReadBatch(bufs, sizes, ptOff)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
	read()
	if allocs := testing.AllocsPerRun(50, read); allocs != 0 {
		t.Fatalf("ReadBatch with super-frames: %v allocations per super-frame, want 0", allocs)
	}
	if p.rxSuper < 51 {
		t.Errorf("%d super-frames received, want at least 51", p.rxSuper)
	}
}

// TestInternalRingRead queues 150 frames on the TAP, then reads them with
// a worker's buffers: all come back in order, batches fill up, and (with
// io_uring) most of them came through ring reads.
func TestInternalRingRead(t *testing.T) { ptIOModes(t, testInternalRingRead) }

func testInternalRingRead(t *testing.T, opts InternalOptions) {
	p, fd := tvUpTAP(t, opts)
	const n = 150
	for i := range n {
		ptSend(t, fd, tvMessage(ptFrame(t, ptMACB, ptMACA, 60+i, uint32(i)), vnet.Hdr{}))
	}
	bufs, sizes := ptBufs(p.BatchSize(), maxSuperFrame)
	seq, full := 0, 0
	for seq < n {
		m, err := p.ReadBatch(bufs, sizes, ptOff)
		if err != nil {
			t.Fatal(err)
		}
		if m == len(bufs) {
			full++
		}
		for i := range m {
			f := bufs[i][ptOff : ptOff+sizes[i]]
			if !ptIsTest(f) {
				continue
			}
			if got := ptSeq(f); got != uint32(seq) || len(f) != 60+seq {
				t.Fatalf("frame %d: seq %d, %d bytes; want seq %d, %d bytes", seq, got, len(f), seq, 60+seq)
			}
			seq++
		}
	}
	if full == 0 {
		t.Errorf("no full batch of %d reading %d queued frames", len(bufs), n)
	}
	if ring := p.rxRings > 0; ring == opts.PlainIO {
		t.Errorf("%d ring reads with PlainIO %v", p.rxRings, opts.PlainIO)
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v", d)
	}
}
