package overlay

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/internal/mmsg"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// netnsName makes a namespace for this test, named "vxu", the process's
// prefix and suffix, removed when the test ends.
func netnsName(t *testing.T, suffix string) string {
	t.Helper()
	testutil.RequireRoot(t)
	return testutil.NetNS(t, testutil.Prefix("vxu")+suffix)
}

// underlay builds two namespaces, "a" with 198.51.100.1/24 on device
// devA and "b" with 198.51.100.2/24 on devB, joined by a veth pair with
// the default MTU of 1500, and runs the setup commands (device names
// filled in with %A and %B) in them before the links come up.
func underlay(t *testing.T, setupA, setupB []string) (nsA, nsB, devA, devB string) {
	t.Helper()
	p := testutil.Prefix("vxu")
	nsA, nsB, devA, devB = netnsName(t, "a"), netnsName(t, "b"), p+"ga", p+"gb"
	testutil.Veth(t, devA, devB)
	testutil.Run(t, "ip", "link", "set", devA, "netns", nsA)
	testutil.Run(t, "ip", "link", "set", devB, "netns", nsB)
	inNS(t, nsA, "ip addr add 198.51.100.1/24 dev "+devA)
	inNS(t, nsB, "ip addr add 198.51.100.2/24 dev "+devB)
	r := strings.NewReplacer("%A", devA, "%B", devB)
	for _, c := range setupA {
		inNS(t, nsA, r.Replace(c))
	}
	for _, c := range setupB {
		inNS(t, nsB, r.Replace(c))
	}
	inNS(t, nsA, "ip link set "+devA+" up")
	inNS(t, nsB, "ip link set "+devB+" up")
	inNS(t, nsA, "ping -c 1 -W 5 198.51.100.2") // resolve ARP before any burst
	return nsA, nsB, devA, devB
}

var (
	underA = netip.MustParseAddr("198.51.100.1")
	underB = netip.MustParseAddr("198.51.100.2")
)

// listenIn opens an endpoint in namespace ns.
func listenIn(t *testing.T, ns string, cfg Config) *Endpoint {
	t.Helper()
	var e *Endpoint
	inNetNS(t, ns, func() {
		var err error
		if e, err = Listen(cfg); err != nil {
			t.Error(err)
		}
	})
	if e == nil {
		t.FailNow()
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// inNS runs a command line (split on spaces) in namespace ns.
func inNS(t *testing.T, ns, cmd string) string {
	t.Helper()
	return testutil.InNS(t, ns, strings.Fields(cmd)...)
}

// TestGSOTooBig: a GSO message whose segments are over the route's MTU
// gets EMSGSIZE even though fragmenting is allowed (DF off); its datagrams
// then go one by one, fragmented, and that size goes plain from then on
// without a refused attempt first.
func TestGSOTooBig(t *testing.T) {
	nsA, nsB, _, _ := underlay(t, nil, nil) // MTU 1500
	a := listenIn(t, nsA, Config{Local: underA, VNIs: []uint32{7}, Remotes: []netip.Addr{underB}})
	b := listenIn(t, nsB, Config{Local: underB, VNIs: []uint32{7}})
	sendOneFlow(t, a, b, 2, 8, 2000)
	st := a.Stats()
	if !st.GSO || st.TxGSOMessages != 0 || st.TxPlainDatagrams != 16 || totalDrops(a) != 0 {
		t.Errorf("GSO %v, %d GSO messages (want 0), %d plain (want 16), drops %v",
			st.GSO, st.TxGSOMessages, st.TxPlainDatagrams, st.Drops)
	}
	l := a.sys.lanes[0]
	l.mu.Lock()
	tooBig := l.x.gso.tooBig
	l.mu.Unlock()
	if tooBig != 2000+VXLANHdrLen {
		t.Errorf("tooBig = %d, want %d", tooBig, 2000+VXLANHdrLen)
	}
	// Smaller datagrams still go as GSO messages.
	sendOneFlow(t, a, b, 1, 8, 1000)
	if st := a.Stats(); st.TxGSOMessages != 1 {
		t.Errorf("1000-byte frames: %d GSO messages, want 1", st.TxGSOMessages)
	}
}

// TestGROVeth: a plain UDP socket in one namespace sends bursts of
// equal-size VXLAN datagrams of one flow over a veth with GRO on to the
// endpoint in another; the kernel coalesces them (UDP GRO), and every
// good frame comes out on its own, in order, while the bad ones mixed in
// are dropped and counted one by one.
func TestGROVeth(t *testing.T) {
	testutil.RequireRoot(t)
	// A veth hands a packet to the receiver's NAPI poll, and so to GRO,
	// only when GRO is on there and either the sender's device has no TSO
	// or the receiver's has rx-udp-gro-forwarding (or fraglist) on
	// (veth_skb_is_eligible_for_gro). A poll then usually finds a packet
	// or two, and GRO flushes at the end of each; with a flush timeout
	// packets wait in GRO across polls and coalesce.
	nsA, nsB, _, devB := underlay(t, nil, []string{"ethtool -K %B gro on rx-udp-gro-forwarding on"})
	testutil.InNS(t, nsB, "sh", "-c", "echo 200000 > /sys/class/net/"+devB+"/gro_flush_timeout")
	e := listenIn(t, nsB, Config{Local: underB, VNIs: []uint32{7}})
	var snd *net.UDPConn
	inNetNS(t, nsA, func() {
		var err error
		snd, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(underA, 0)))
		if err != nil {
			t.Error(err)
		}
	})
	if snd == nil {
		t.FailNow()
	}
	t.Cleanup(func() { snd.Close() })
	_ = snd.SetWriteBuffer(8 << 20)
	rc, err := snd.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	const bursts, per, every = 50, 64, 16 // every 16th datagram has no I flag
	batch := mmsg.NewBatch(per, mmsg.Options{Addrs: true})
	w := mmsg.NewWriter(rc, batch)
	rb := newRxBatch(64, 2048)
	var badSent uint64
	for burst := range bursts {
		var want [][]byte
		for i := range per {
			f := testFrame(t, 1, byte(i), 1400)
			binary.BigEndian.PutUint16(f[14+20+8+1:], uint16(burst))
			p := vxlanPacket(7, f)
			if i%every == every-1 {
				p[0] = 0
				badSent++
			} else {
				want = append(want, f)
			}
			batch.SetBuf(i, p)
			batch.SetAddrPort(i, netip.AddrPortFrom(underB, DefaultPort))
		}
		if next, err := w.Write(0, per, 0); next != per || err != nil {
			t.Fatalf("burst %d: sent %d, %v", burst, next, err)
		}
		var got []received
		deadline := time.Now().Add(5 * time.Second)
		for len(got) < len(want) {
			_ = e.sys.rx.SetReadDeadline(deadline)
			n, err := e.ReadBatch(rb.bufs, rb.sizes, rb.meta, testOff)
			if err != nil {
				t.Fatalf("burst %d: %d of %d frames: %v", burst, len(got), len(want), err)
			}
			for i := range n {
				got = append(got, received{bytes.Clone(rb.bufs[i][testOff : testOff+rb.sizes[i]]), rb.meta[i]})
			}
		}
		for i := range want {
			if !bytes.Equal(got[i].frame, want[i]) || got[i].meta != (dataplane.TunnelMeta{VNI: 7, VTEP: underA}) {
				t.Fatalf("burst %d frame %d differs (meta %+v)", burst, i, got[i].meta)
			}
		}
	}
	waitFor(t, "the bad datagrams", func() bool { return drops(e, DropNoIFlag) >= badSent })
	st := e.Stats()
	t.Logf("%d datagrams: %d frames, %d coalesced messages holding %d datagrams, drops %v",
		bursts*per, st.RxPackets, st.RxGROMessages, st.RxGRODatagrams, st.Drops)
	if d := drops(e, DropNoIFlag); d != badSent || totalDrops(e) != badSent {
		t.Errorf("no_i_flag drops %d, all drops %d, want %d", d, totalDrops(e), badSent)
	}
	if st.RxGROMessages == 0 {
		t.Skip("the kernel coalesced nothing on this veth (GRO did not happen): the split was not exercised here, see TestGROReceive")
	}
}
