package overlay

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// inNetNS runs fn on a fresh goroutine locked to its OS thread inside the
// named network namespace (sockets made there stay there). If switching
// back fails, the goroutine stays locked, so its thread dies with it.
func inNetNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

var (
	kernelMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x04, 0x01}
	ourMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0x04, 0x02}
	kernelIP  = net.IPv4(192, 0, 2, 1).To4()
	ourIP     = net.IPv4(192, 0, 2, 2).To4()
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func arpFrame(t testing.TB, op uint16, srcMAC, dstMAC net.HardwareAddr, srcIP, dstIP net.IP) []byte {
	ethDst, arpDst := dstMAC, dstMAC
	if op == layers.ARPRequest {
		ethDst, arpDst = layers.EthernetBroadcast, make(net.HardwareAddr, 6)
	}
	return serialize(t,
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: ethDst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
			ProtAddressSize: 4, Operation: op, SourceHwAddress: srcMAC, SourceProtAddress: srcIP,
			DstHwAddress: arpDst, DstProtAddress: dstIP})
}

func icmpFrame(t testing.TB, typ uint8, srcMAC, dstMAC net.HardwareAddr, srcIP, dstIP net.IP, id, seq uint16, payload []byte) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: srcIP, DstIP: dstIP},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: seq},
		gopacket.Payload(payload))
}

// TestKernelInterop: our Endpoint in one namespace and a Linux vxlan
// device (dstport 4789) in another exchange frames both ways, over an
// IPv4 and an IPv6 underlay. The kernel pings us (we answer ARP and
// echo requests), and we ARP for and ping the kernel.
func TestKernelInterop(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name       string
		kern, ours string
		plen       int
	}{
		{"IPv4", "198.51.100.1", "198.51.100.2", 24},
		{"IPv6", "2001:db8:100::1", "2001:db8:100::2", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testutil.Prefix("vxo")
			nsK, nsV := testutil.NetNS(t, p+"k"), testutil.NetNS(t, p+"v")
			testutil.Veth(t, p+"uk", p+"uv")
			testutil.Run(t, "ip", "link", "set", p+"uk", "netns", nsK)
			testutil.Run(t, "ip", "link", "set", p+"uv", "netns", nsV)
			nodad := []string{}
			if tc.plen == 64 {
				nodad = []string{"nodad"}
			}
			testutil.Run(t, "ip", append([]string{"-n", nsK, "addr", "add", fmt.Sprintf("%s/%d", tc.kern, tc.plen), "dev", p + "uk"}, nodad...)...)
			testutil.Run(t, "ip", append([]string{"-n", nsV, "addr", "add", fmt.Sprintf("%s/%d", tc.ours, tc.plen), "dev", p + "uv"}, nodad...)...)
			testutil.Run(t, "ip", "-n", nsK, "link", "set", p+"uk", "up")
			testutil.Run(t, "ip", "-n", nsV, "link", "set", p+"uv", "up")
			testutil.Run(t, "ip", "-n", nsK, "link", "add", p+"x", "address", kernelMAC.String(), "type", "vxlan",
				"id", "42", "local", tc.kern, "remote", tc.ours, "dstport", "4789", "dev", p+"uk")
			testutil.InNS(t, nsK, "sysctl", "-qw", "net.ipv6.conf."+p+"x.disable_ipv6=1")
			testutil.Run(t, "ip", "-n", nsK, "addr", "add", "192.0.2.1/24", "dev", p+"x")
			testutil.Run(t, "ip", "-n", nsK, "link", "set", p+"x", "up")

			var e *Endpoint
			inNetNS(t, nsV, func() {
				var err error
				e, err = Listen(Config{Local: netip.MustParseAddr(tc.ours), VNIs: []uint32{42},
					Remotes: []netip.Addr{netip.MustParseAddr(tc.kern)}, Accept: AcceptMembers})
				if err != nil {
					t.Error(err)
				}
			})
			if e == nil {
				t.FailNow()
			}
			kernVTEP := netip.MustParseAddr(tc.kern)

			// The responder answers ARP and echo requests for ourIP and
			// passes every other frame to the test.
			others := make(chan received, 16)
			done := make(chan struct{})
			go func() {
				defer close(done)
				rb := newRxBatch(16, 2048)
				for {
					n, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
					if err != nil {
						return
					}
					for i := range n {
						f := bytes.Clone(rb.bufs[i][testOff : testOff+rb.sizes[i]])
						if rb.meta[i].VNI != 42 || rb.meta[i].VTEP != kernVTEP {
							t.Errorf("frame with meta %+v", rb.meta[i])
						}
						if reply := answer(t, f); reply != nil {
							tb := newTxBatch([][]byte{reply}, []dataplane.TunnelMeta{{VNI: 42, VTEP: kernVTEP}})
							if n, err := e.WriteBatch(tb.bufs, tb.offs, tb.meta); n != 1 || err != nil {
								t.Errorf("reply WriteBatch = %d, %v", n, err)
							}
							continue
						}
						others <- received{f, rb.meta[i]}
					}
				}
			}()
			t.Cleanup(func() { e.Close(); <-done })

			// Kernel -> us: the kernel ARPs for us and pings.
			out, err := exec.Command("ip", "netns", "exec", nsK, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.2").CombinedOutput()
			if err != nil {
				t.Fatalf("kernel ping through our endpoint: %v\n%s", err, out)
			}

			// Us -> kernel: flood an ARP request, then ping the MAC it names.
			send := func(f []byte, to netip.Addr) {
				t.Helper()
				tb := newTxBatch([][]byte{f}, []dataplane.TunnelMeta{{VNI: 42, VTEP: to}})
				if n, err := e.WriteBatch(tb.bufs, tb.offs, tb.meta); n != 1 || err != nil {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
			}
			next := func(want gopacket.LayerType) gopacket.Packet {
				t.Helper()
				for {
					select {
					case r := <-others:
						pkt := gopacket.NewPacket(r.frame, layers.LayerTypeEthernet, gopacket.Default)
						if pkt.Layer(want) != nil {
							return pkt
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("no %v from the kernel", want)
					}
				}
			}
			send(arpFrame(t, layers.ARPRequest, ourMAC, nil, ourIP, kernelIP), netip.Addr{})
			arp := next(layers.LayerTypeARP).Layer(layers.LayerTypeARP).(*layers.ARP)
			if arp.Operation != layers.ARPReply || !bytes.Equal(arp.SourceHwAddress, kernelMAC) {
				t.Fatalf("ARP answer: %+v", arp)
			}
			payload := []byte("vxswitch interop")
			send(icmpFrame(t, layers.ICMPv4TypeEchoRequest, ourMAC, arp.SourceHwAddress, ourIP, kernelIP, 77, 1, payload), kernVTEP)
			pkt := next(layers.LayerTypeICMPv4)
			icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if icmp.TypeCode.Type() != layers.ICMPv4TypeEchoReply || icmp.Id != 77 || !bytes.Equal(icmp.Payload, payload) {
				t.Fatalf("echo answer: %v", pkt)
			}
			st := e.Stats()
			if st.Drops["unknown_sender"] != 0 || st.Drops["unknown_vni"] != 0 || st.Drops["tx_unreachable"] != 0 {
				t.Errorf("drops: %v", st.Drops)
			}
			t.Logf("rx %d tx %d frames", st.RxPackets, st.TxPackets)
		})
	}
}

// answer returns our reply to an ARP request or ICMP echo request for
// ourIP, or nil.
func answer(t testing.TB, f []byte) []byte {
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		if arp.Operation == layers.ARPRequest && bytes.Equal(arp.DstProtAddress, ourIP) {
			return arpFrame(t, layers.ARPReply, ourMAC, arp.SourceHwAddress, ourIP, arp.SourceProtAddress)
		}
		return nil
	}
	icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ok && ip != nil && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest && ip.DstIP.Equal(ourIP) {
		return icmpFrame(t, layers.ICMPv4TypeEchoReply, ourMAC, eth.SrcMAC, ourIP, ip.SrcIP, icmp.Id, icmp.Seq, icmp.Payload)
	}
	return nil
}

// TestEndpointSocketFull: when the underlay queues and the send socket's
// buffer fills (EAGAIN), WriteBatch waits at most once, briefly, then
// drops and counts (tx_would_block) instead of stalling the switch.
func TestEndpointSocketFull(t *testing.T) {
	testutil.RequireRoot(t)
	p := testutil.Prefix("vxo")
	ns := testutil.NetNS(t, p+"q")
	testutil.Run(t, "ip", "-n", ns, "link", "add", p+"qa", "type", "veth", "peer", "name", p+"qb")
	testutil.Run(t, "ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", p+"qa")
	testutil.Run(t, "ip", "-n", ns, "link", "set", p+"qa", "up")
	testutil.Run(t, "ip", "-n", ns, "link", "set", p+"qb", "up")
	// A slow queue that holds everything: packets wait in it and keep
	// their socket's buffer charged.
	testutil.Run(t, "tc", "-n", ns, "qdisc", "add", "dev", p+"qa", "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "100000000")
	testutil.Run(t, "ip", "-n", ns, "neigh", "add", "198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", p+"qa")

	var e *Endpoint
	inNetNS(t, ns, func() {
		var err error
		e, err = Listen(Config{Local: netip.MustParseAddr("198.51.100.1"), VNIs: []uint32{7}, SendSockets: 1,
			Remotes: []netip.Addr{netip.MustParseAddr("198.51.100.2")}})
		if err != nil {
			t.Error(err)
		}
	})
	if e == nil {
		t.FailNow()
	}
	defer e.Close()
	tb := floodBatch(t, 64, 1400, 7, netip.Addr{})
	start := time.Now()
	const batches = 20
	for range batches {
		if _, err := e.WriteBatch(tb.bufs, tb.offs, tb.meta); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	blocked := drops(e, DropTxWouldBlock)
	t.Logf("%d batches in %v: tx %d, tx_would_block %d", batches, elapsed, e.ctr.txPackets.Load(), blocked)
	if blocked == 0 {
		t.Error("no tx_would_block drops: the socket never filled")
	}
	if max := batches * (txWaitMax + 50*time.Millisecond); elapsed > max {
		t.Errorf("%d batches took %v, more than %v: WriteBatch stalls", batches, elapsed, max)
	}
}
