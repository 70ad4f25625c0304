package dataplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
	"github.com/vxswitch/vxswitch/internal/uring"
)

// ptOpenInternal creates a TAP that the test closes (and so removes) when
// it ends. Unless opts.PlainIO, its reads and writes must go through
// io_uring: the test fails when the rings could not be set up (it skips
// outside CI).
func ptOpenInternal(t testing.TB, name string, opts InternalOptions) *tapPort {
	t.Helper()
	testutil.RequireRoot(t)
	p, err := OpenInternal(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); DeleteLink(name, "") })
	tp := p.(*tapPort)
	if !opts.PlainIO && (tp.txRing == nil || tp.rxRing == nil) {
		if _, err := uring.New(1); os.Getenv("CI") == "" && errors.Is(err, uring.ErrUnsupported) {
			t.Skipf("TAP I/O through io_uring: %v", err)
		}
		t.Fatal("the TAP has no io_uring for its reads and writes")
	}
	return tp
}

// ptUpTAP makes an up internal port in this namespace with IPv6 off (no
// router solicitations in the way), and a packet socket on its kernel
// side.
func ptUpTAP(t *testing.T, opts InternalOptions) (p *tapPort, fd int) {
	t.Helper()
	name := ptName(t, "i")
	p = ptOpenInternal(t, name, opts)
	testutil.Run(t, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	if err := SetupInternalLink(name, 0, "", nil); err != nil {
		t.Fatal(err)
	}
	return p, ptPacketSocket(t, "", name)
}

// ptIOModes runs fn for a TAP that reads and writes through io_uring and
// for one that does so frame by frame (InternalOptions.PlainIO).
func ptIOModes(t *testing.T, fn func(t *testing.T, opts InternalOptions)) {
	for _, plain := range []bool{false, true} {
		name := "ring"
		if plain {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) { fn(t, InternalOptions{PlainIO: plain}) })
	}
}

var (
	ptNSAddr4   = netip.MustParsePrefix("192.0.2.1/24")
	ptNSAddr6   = netip.MustParsePrefix("2001:db8:7::1/64")
	ptPeerAddr4 = netip.MustParseAddr("192.0.2.2")
)

// ptDecode parses a frame with gopacket.
func ptDecode(f []byte) gopacket.Packet {
	return gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
}

// ptEcho builds an ICMP echo request from the test's peer to dst with
// payload bytes of data.
func ptEcho(t testing.TB, dstMAC net.HardwareAddr, seq uint16, payload int) []byte {
	t.Helper()
	return ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ptPeerAddr4.AsSlice(), DstIP: ptNSAddr4.Addr().AsSlice()},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x7878, Seq: seq},
		gopacket.Payload(make([]byte, payload)))
}

func ptIsEchoReply(seq uint16) func([]byte) bool {
	return func(f []byte) bool {
		icmp, ok := ptDecode(f).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return ok && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoReply && icmp.Id == 0x7878 && icmp.Seq == seq
	}
}

// TestInternalInNetNS moves an internal port's kernel side into a
// namespace with addresses, then talks to that namespace's kernel through
// the TAP: ARP, ping, a jumbo ping, and a reply too big for the buffer.
func TestInternalInNetNS(t *testing.T) { ptIOModes(t, testInternalInNetNS) }

func testInternalInNetNS(t *testing.T, opts InternalOptions) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, ptName(t, "n"))
	name := ptName(t, "i")
	opts.MTU = 9000
	p := ptOpenInternal(t, name, opts)
	if err := SetupInternalLink(name, 9000, "/run/netns/"+ns, []netip.Prefix{ptNSAddr4, ptNSAddr6}); err != nil {
		t.Fatal(err)
	}

	// The kernel side kept its name, is up with MTU 9000, and its IPv6
	// address skipped DAD.
	var links []struct {
		MTU      int      `json:"mtu"`
		Flags    []string `json:"flags"`
		Address  string   `json:"address"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Tentative bool   `json:"tentative"`
		} `json:"addr_info"`
	}
	out := testutil.Run(t, "ip", "-n", ns, "-j", "addr", "show", "dev", name)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip addr show: %v\n%s", err, out)
	}
	l := links[0]
	if l.MTU != 9000 || !strings.Contains(strings.Join(l.Flags, ","), "UP") {
		t.Errorf("link: mtu %d flags %v, want 9000 and UP", l.MTU, l.Flags)
	}
	have := map[string]bool{}
	for _, a := range l.AddrInfo {
		have[a.Local] = true
		if a.Tentative && a.Local == "2001:db8:7::1" { // the kernel's own link-local does DAD
			t.Errorf("address %s is tentative (DAD not skipped)", a.Local)
		}
	}
	if !have["192.0.2.1"] || !have["2001:db8:7::1"] {
		t.Errorf("addresses %v, want 192.0.2.1 and 2001:db8:7::1", have)
	}

	// ARP: who has 192.0.2.1? The namespace's kernel answers through the TAP.
	arp := ptSerialize(t,
		&layers.Ethernet{SrcMAC: ptMACB, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: ptMACB, SourceProtAddress: ptPeerAddr4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: ptNSAddr4.Addr().AsSlice()})
	if n, err := p.WriteBatch([][]byte{arp}); n != 1 || err != nil {
		t.Fatalf("WriteBatch ARP = %d, %v", n, err)
	}
	reply := ptReadFrames(t, p, 9100, 1, func(f []byte) bool {
		a, ok := ptDecode(f).Layer(layers.LayerTypeARP).(*layers.ARP)
		return ok && a.Operation == layers.ARPReply && net.IP(a.SourceProtAddress).Equal(ptNSAddr4.Addr().AsSlice())
	})[0]
	nsMAC := net.HardwareAddr(ptDecode(reply).Layer(layers.LayerTypeARP).(*layers.ARP).SourceHwAddress)
	if nsMAC.String() != l.Address {
		t.Errorf("ARP reply from %v, want the TAP's MAC %s", nsMAC, l.Address)
	}

	// Ping, then a jumbo ping: 8972 bytes of ICMP payload fill MTU 9000.
	for _, tc := range []struct {
		seq     uint16
		payload int
	}{{1, 56}, {2, 8972}} {
		if n, err := p.WriteBatch([][]byte{ptEcho(t, nsMAC, tc.seq, tc.payload)}); n != 1 || err != nil {
			t.Fatalf("WriteBatch echo = %d, %v", n, err)
		}
		got := ptReadFrames(t, p, 9100, 1, ptIsEchoReply(tc.seq))[0]
		if want := 14 + 20 + 8 + tc.payload; len(got) != want {
			t.Errorf("echo reply seq %d: %d bytes, want %d", tc.seq, len(got), want)
		}
	}

	// A reply larger than the buffer is dropped and counted; the small one
	// behind it arrives whole.
	big, small := ptEcho(t, nsMAC, 3, 1000), ptEcho(t, nsMAC, 4, 56)
	if n, err := p.WriteBatch([][]byte{big, small}); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	ptReadFrames(t, p, 500, 1, func(f []byte) bool {
		if ptIsEchoReply(3)(f) {
			t.Errorf("read a truncated %d-byte reply", len(f))
		}
		return ptIsEchoReply(4)(f)
	})
	if d := p.DropCounts(); d.RxTooBig != 1 {
		t.Errorf("drops %+v, want RxTooBig 1", d)
	}
}

func TestInternalCloseUnblocksAndRemoves(t *testing.T) {
	name := ptName(t, "i")
	p := ptOpenInternal(t, name, InternalOptions{})
	done := make(chan error, 1)
	go func() {
		bufs, sizes := ptBufs(p.BatchSize(), 2048)
		for {
			if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond) // let it block; the test holds either way
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if err := exec.Command("ip", "link", "show", name).Run(); err == nil {
		t.Fatalf("TAP %s still exists after Close", name)
	}
	if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

func TestInternalGone(t *testing.T) { ptIOModes(t, testInternalGone) }

func testInternalGone(t *testing.T, opts InternalOptions) {
	name := ptName(t, "i")
	p := ptOpenInternal(t, name, opts)
	done := make(chan error, 1)
	go func() {
		bufs, sizes := ptBufs(p.BatchSize(), 2048)
		for {
			if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
				done <- err
				return
			}
		}
	}()
	testutil.Run(t, "ip", "link", "del", name)
	select {
	case err := <-done:
		if !errors.Is(err, ErrPortGone) {
			t.Fatalf("ReadBatch after delete: %v, want ErrPortGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after the TAP was deleted")
	}
	if _, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); !errors.Is(err, ErrPortGone) {
		t.Fatalf("WriteBatch after delete: %v, want ErrPortGone", err)
	}
}

func TestInternalWriteDownAndRunt(t *testing.T) { ptIOModes(t, testInternalWriteDownAndRunt) }

func testInternalWriteDownAndRunt(t *testing.T, opts InternalOptions) {
	name := ptName(t, "i")
	p := ptOpenInternal(t, name, opts)
	// Down (as created): frames are dropped and counted, not an error.
	if n, err := p.WriteBatch([][]byte{ptFrame(t, ptMACA, ptMACB, 64, 0)}); n != 0 || err != nil {
		t.Fatalf("WriteBatch on a down TAP = %d, %v; want 0, nil", n, err)
	}
	if err := SetupInternalLink(name, 0, "", nil); err != nil {
		t.Fatal(err)
	}
	// A runt is refused and skipped; the frame behind it goes.
	if n, err := p.WriteBatch([][]byte{make([]byte, 10), ptFrame(t, ptMACA, ptMACB, 64, 1)}); n != 1 || err != nil {
		t.Fatalf("WriteBatch runt+frame = %d, %v; want 1, nil", n, err)
	}
	if d := p.DropCounts(); d != (PortDrops{TxDown: 1, TxError: 1}) {
		t.Fatalf("drops %+v, want TxDown 1, TxError 1", d)
	}
}

func TestInternalBadName(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := OpenInternal("vxp-name-far-too-long", InternalOptions{}); err == nil || !strings.Contains(err.Error(), "vxp-name-far-too-long") {
		t.Fatalf("OpenInternal with a 21-byte name: %v, want an error naming it", err)
	}
}

func TestSetupInternalLinkErrors(t *testing.T) {
	testutil.RequireRoot(t)
	missing := ptName(t, "x")
	err := SetupInternalLink(missing, 1500, "", nil)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "find link") {
		t.Errorf("missing link: %v, want an error naming the port and the step", err)
	}
	name := ptName(t, "i")
	ptOpenInternal(t, name, InternalOptions{})
	err = SetupInternalLink(name, 1500, "/run/netns/"+ptName(t, "nx"), nil)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "open netns") {
		t.Errorf("missing netns: %v, want an error naming the port and the step", err)
	}
}

// TestInternalAllocs holds the zero-allocation promise for the TAP port,
// with frames ready: an AF_PACKET socket on the TAP's kernel side sends
// them, so they come out of the TAP fd.
func TestInternalAllocs(t *testing.T) { ptIOModes(t, testInternalAllocs) }

func testInternalAllocs(t *testing.T, opts InternalOptions) {
	p, fd := ptUpTAP(t, opts)
	const n = 64
	frames := make([][]byte, n)
	gen := mmsg.NewBatch(n, mmsg.Options{})
	for i := range frames {
		frames[i] = ptFrame(t, ptMACB, ptMACA, 64, uint32(i))
		gen.SetBuf(i, frames[i])
	}
	// Buffers that hold a super-frame, as the workers' do: with io_uring
	// the frames behind a batch's first are read through the ring.
	bufs, sizes := ptBufs(n, maxSuperFrame)
	ptSend(t, fd, frames[0])
	if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
		t.Fatal(err)
	}
	read := testingAllocs(func() {
		if m, err := gen.Send(fd, 0, n, 0); m != n || err != nil {
			t.Fatalf("send: %d, %v", m, err)
		}
		if _, err := p.ReadBatch(bufs, sizes, ptOff); err != nil {
			t.Fatal(err)
		}
	})
	write := testingAllocs(func() {
		if m, err := p.WriteBatch(frames); m != n || err != nil {
			t.Fatalf("WriteBatch: %d, %v", m, err)
		}
	})
	if read != 0 || write != 0 {
		t.Fatalf("allocations per batch: ReadBatch %v, WriteBatch %v; want 0", read, write)
	}
	if ring := p.rxRings > 0; ring == opts.PlainIO {
		t.Errorf("%d ring reads with PlainIO %v", p.rxRings, opts.PlainIO)
	}
}

func testingAllocs(fn func()) float64 { return testing.AllocsPerRun(100, fn) }

// TestInternalWriteOrderAndMerge writes one batch of a test frame, five
// TCP segments of one flow, and 71 more test frames (more than the ring
// takes at once) and reads them back from the kernel side: in order, the
// segments merged into one frame with their payloads intact.
func TestInternalWriteOrderAndMerge(t *testing.T) {
	ptIOModes(t, testInternalWriteOrderAndMerge)
}

func testInternalWriteOrderAndMerge(t *testing.T, opts InternalOptions) {
	p, fd := ptUpTAP(t, opts)
	const segs, segLen = 5, 500
	seg := func(i int) []byte {
		payload := bytes.Repeat([]byte{byte(i + 1)}, segLen)
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 7777, Seq: uint32(1000 + i*segLen), Ack: 1, ACK: true, Window: 512}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ptPeerAddr4.AsSlice(), DstIP: ptNSAddr4.Addr().AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		return ptSerialize(t, &layers.Ethernet{SrcMAC: ptMACB, DstMAC: ptMACA, EthernetType: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload(payload))
	}
	batch := [][]byte{ptFrame(t, ptMACB, ptMACA, 64, 0)}
	for i := range segs {
		batch = append(batch, seg(i))
	}
	for i := 1; i <= 71; i++ {
		batch = append(batch, ptFrame(t, ptMACB, ptMACA, 64, uint32(i)))
	}
	if n, err := p.WriteBatch(batch); n != len(batch) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(batch))
	}
	ours := func(f []byte) bool {
		if ptIsTest(f) {
			return true
		}
		ip, ok := ptDecode(f).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		return ok && ip.SrcIP.Equal(ptPeerAddr4.AsSlice()) && ip.Protocol == layers.IPProtocolTCP
	}
	if f := ptRecv(t, fd, ours); !ptIsTest(f) || ptSeq(f) != 0 {
		t.Fatalf("first frame: %x, want test frame 0", f)
	}
	merged := ptRecv(t, fd, ours)
	tcp, ok := ptDecode(merged).Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok || tcp.Seq != 1000 || len(tcp.Payload) != segs*segLen {
		t.Fatalf("second frame: %d bytes, want the %d segments merged (%d payload bytes)", len(merged), segs, segs*segLen)
	}
	for i := range segs {
		if !bytes.Equal(tcp.Payload[i*segLen:(i+1)*segLen], bytes.Repeat([]byte{byte(i + 1)}, segLen)) {
			t.Fatalf("merged payload: segment %d is not where it belongs", i)
		}
	}
	for i := 1; i <= 71; i++ {
		if f := ptRecv(t, fd, ours); !ptIsTest(f) || ptSeq(f) != uint32(i) {
			t.Fatalf("frame %d: %x, want test frame %d", i+1, f[:min(len(f), 32)], i)
		}
	}
}

// TestBatchIOError: on a machine where io_uring works (CI's), internal
// ports batch through it; the agent warns at start when they cannot.
func TestBatchIOError(t *testing.T) {
	err := BatchIOError()
	if err != nil && os.Getenv("CI") == "" && errors.Is(err, uring.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("BatchIOError: %v", err)
	}
}
