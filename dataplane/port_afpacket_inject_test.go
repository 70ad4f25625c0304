package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/internal/testutil"
	"github.com/vxswitch/vxswitch/internal/vnet"
)

// Root tests that hand a system port exact offload cases: frames written
// to a TAP with IFF_VNET_HDR go up the TAP's receive path as the kernel's
// own super-frames and CHECKSUM_PARTIAL frames do, tagged ones with their
// tag moved into metadata, and the system port on the TAP reads them.

// vaInjector makes a namespace with a TAP (IFF_VNET_HDR) held by the test
// and a system port on it; writing hdr+frame to fd makes the port
// receive frame with that offload state.
func vaInjector(t *testing.T, opts SystemOptions) (p *afpacketPort, fd int) {
	t.Helper()
	testutil.RequireRoot(t)
	sw := vaSwitchNS(t)
	name := vaName(t, "t")
	var err error
	ptInNS(t, sw, func() {
		if fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return
		}
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq(name); err != nil {
			return
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatalf("TAP %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	testutil.InNS(t, sw, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	testutil.Run(t, "ip", "-n", sw, "link", "set", name, "up")
	return vaOpenSystem(t, sw, name, opts), fd
}

// vaInject writes frame with virtio_net_hdr h to the TAP fd.
func vaInject(t testing.TB, fd int, f []byte, h vnet.Hdr) {
	t.Helper()
	b := make([]byte, vnet.HdrLen+len(f))
	h.Encode(b)
	copy(b[vnet.HdrLen:], f)
	if _, err := unix.Write(fd, b); err != nil {
		t.Fatalf("write %d bytes (%+v) to TAP: %v", len(f), h, err)
	}
}

// vaPartial turns a frame with a correct TCP or UDP checksum into what
// the kernel hands over with CHECKSUM_PARTIAL: the checksum field holds
// only the pseudo-header sum, and h says where it is.
func vaPartial(f []byte, h vnet.Hdr) []byte {
	p := bytes.Clone(f)
	at := int(h.CsumStart) + int(h.CsumOffset)
	full := binary.BigEndian.Uint16(p[at:])
	p[at], p[at+1] = 0, 0
	// full = ^(data + pseudo), so pseudo = ^full - data (one's complement).
	pseudo := vaFold(uint32(^full) + uint32(^vaFold(vaSum(p[h.CsumStart:]))))
	binary.BigEndian.PutUint16(p[at:], pseudo)
	return p
}

func vaSum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func vaFold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// TestSystemOffloadFrames injects one frame of each offload case, tagged
// and untagged, and reads them with a batch of 5 buffers, so super-frames
// are carried over between calls: what comes out must be the finished
// frame, or exactly the segments vnet.Segment makes of the super-frame,
// tag in place, in order.
func TestSystemOffloadFrames(t *testing.T) {
	p, fd := vaInjector(t, SystemOptions{})
	var want [][]byte
	for _, s := range []vaSpec{
		{name: "partial-tcp4", payload: 1000},
		{name: "partial-tcp4-vlan", tags: 1, tcpOpts: true, payload: 1001},
		{name: "partial-udp6-vlan", v6: true, udp: true, tags: 1, payload: 999},
		{name: "tso4", tcpOpts: true, payload: 30000, mss: 1448, psh: true},
		{name: "tso4-vlan", tags: 1, tcpOpts: true, payload: 20000, mss: 1448, fin: true},
		{name: "tso6-vlan", v6: true, tags: 1, payload: 10000, mss: 1428, psh: true},
		{name: "uso4", udp: true, payload: 5000, mss: 1472},
		{name: "tso4-qinq", tags: 2, payload: 6000, mss: 1000},
		// Super-frames small enough for a receive ring slot.
		{name: "tso4-small", payload: 1200, mss: 600, psh: true},
		{name: "tso6-small-vlan", v6: true, tags: 1, payload: 900, mss: 400},
		{name: "plain", payload: 100},
	} {
		f, h := vaBuild(t, s)
		if s.mss == 0 {
			// Correct f, handed over unfinished: the port must finish it.
			if s.name == "plain" {
				vaInject(t, fd, f, vnet.Hdr{})
			} else {
				ph := vaCsumHdr(s)
				vaInject(t, fd, vaPartial(f, ph), ph)
			}
			want = append(want, f)
			continue
		}
		// A wrong checksum in the super-frame: Segment computes them all.
		f[len(f)-s.payload-1] ^= 0xff
		vaInject(t, fd, f, h)
		want = append(want, vaWant(t, f, h)...)
	}
	got := ptReadFrames(t, p, 2048, len(want), func([]byte) bool { return true })
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d of %d:\ngot  %x\nwant %x", i, len(want), vaHead(got[i]), vaHead(want[i]))
		}
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

// TestSystemOffloadSmallBatch reads the same super-frames with batches of
// 1 to 7 buffers.
func TestSystemOffloadSmallBatch(t *testing.T) {
	p, fd := vaInjector(t, SystemOptions{})
	f, h := vaBuild(t, vaSpec{tags: 1, payload: 20000, mss: 1448, psh: true})
	want := vaWant(t, f, h)
	for batch := 1; batch <= 7; batch++ {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			for range 3 {
				vaInject(t, fd, f, h)
			}
			bufs, sizes := ptBufs(batch, 2048)
			for i := 0; i < 3*len(want); {
				n, err := p.ReadBatch(bufs, sizes, ptOff)
				if err != nil || n == 0 || n > batch {
					t.Fatalf("ReadBatch = %d, %v; want 1..%d frames", n, err, batch)
				}
				for j := range n {
					if w := want[i%len(want)]; !bytes.Equal(bufs[j][ptOff:ptOff+sizes[j]], w) {
						t.Fatalf("frame %d differs", i)
					}
					i++
				}
			}
		})
	}
}

// TestSystemReadAllocs: reading super-frames cut across several calls, in
// steady state, allocates nothing.
func TestSystemReadAllocs(t *testing.T) {
	p, fd := vaInjector(t, SystemOptions{})
	f, h := vaBuild(t, vaSpec{tags: 1, tcpOpts: true, payload: 60000, mss: 1448})
	msg := make([]byte, vnet.HdrLen+len(f))
	h.Encode(msg)
	copy(msg[vnet.HdrLen:], f)
	segs := len(vaWant(t, f, h))
	bufs, sizes := ptBufs(16, 2048)
	run := func() {
		if _, err := unix.Write(fd, msg); err != nil {
			panic(err)
		}
		for got := 0; got < segs; {
			n, err := p.ReadBatch(bufs, sizes, ptOff)
			if err != nil {
				panic(err)
			}
			got += n
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Errorf("ReadBatch: %v allocations per super-frame, want 0", a)
	}
	if d := p.DropCounts(); d != (PortDrops{}) {
		t.Errorf("drops %+v, want none", d)
	}
}

// TestSystemWriteAllocs: WriteBatch, with its virtio_net_hdr per frame,
// allocates nothing.
func TestSystemWriteAllocs(t *testing.T) {
	testutil.RequireRoot(t)
	sw := vaSwitchNS(t)
	local, _ := vaHost(t, sw, "192.0.2.1/24")
	p := vaOpenSystem(t, sw, local, SystemOptions{})
	frames := make([][]byte, p.BatchSize())
	for i := range frames {
		frames[i] = ptFrame(t, ptMACA, ptMACB, 1514, uint32(i))
	}
	if a := testing.AllocsPerRun(100, func() { p.WriteBatch(frames) }); a != 0 {
		t.Errorf("WriteBatch: %v allocations per batch, want 0", a)
	}
}
