package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// TestTunnelBadInput blasts garbage at blue's VXLAN port from green's
// namespace (random payloads, cut headers, no I flag, unknown VNIs, inner
// frames shorter than an Ethernet header) while blue-c0 pings green-c0
// across the tunnel. The ping keeps working, the agent stays up, and the
// garbage is counted under its drop reasons.
func TestTunnelBadInput(t *testing.T) {
	requireRoot(t)
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	vx := &lab.VXSwitch{Binary: vxBin}
	if err := vx.Setup(top); err != nil {
		t.Fatal(err)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	a := labAgent(top, vx, blue)
	b0, g0 := blue.Containers[0], green.Containers[0]
	dst := g0.Addr4.Addr().String()
	if err := ping(l, b0.NS, dst); err != nil {
		t.Fatalf("no ping across before the garbage: %v", err)
	}
	before := a.stats(t).Tunnel

	const pings = 40
	var wg sync.WaitGroup
	var out string
	var perr error
	wg.Go(func() {
		out, perr = l.Exec(b0.NS, "ping", "-n", "-c", fmt.Sprint(pings), "-i", "0.1", "-W", "1", dst)
	})
	time.Sleep(200 * time.Millisecond) // let the ping start first
	sent, err := sendGarbage(green.NS, netip.AddrPortFrom(blue.Underlay.Addr(), 4789), lab.VLAN, 200000, 3*time.Second)
	wg.Wait()
	if err != nil {
		t.Fatalf("garbage sender: %v", err)
	}
	t.Logf("garbage sent: %+v; ping: %s", sent, grepLines(out, fmt.Sprint(pings)+" packets"))

	if err := a.proc.Alive(); err != nil {
		t.Fatalf("agent died under garbage: %v", err)
	}
	if got := received(out); got < pings-2 {
		t.Errorf("ping during the garbage: %d of %d answered (%v):\n%s", got, pings, perr, out)
	}
	after := a.stats(t).Tunnel
	if before == nil || after == nil {
		t.Fatal("stats --json has no tunnel counters")
	}
	var dropped uint64
	for _, reason := range []string{"short", "no_i_flag", "unknown_vni"} {
		d := after.Drops[reason] - before.Drops[reason]
		dropped += d
		if d == 0 {
			t.Errorf("tunnel drops %q did not grow: %v", reason, after.Drops)
		}
	}
	if dropped > uint64(sent.total()) {
		t.Errorf("counted %d drops for %d garbage packets: %v", dropped, sent.total(), after.Drops)
	}
	if udp, err := l.Exec(blue.NS, "cat", "/proc/net/snmp"); err == nil {
		t.Logf("tunnel drops after: %v; blue's UDP counters:\n%s", after.Drops, grepLines(udp, "Udp:"))
	}
	// None of the garbage's inner frames was learned (sources 0a:bd:...;
	// one byte would not do: a random interface MAC starts with 0a one
	// time in 64).
	for _, e := range a.fdb(t) {
		if strings.HasPrefix(e.MAC, garbageMACPrefix) {
			t.Errorf("garbage source learned: %+v", e)
		}
	}
	if err := ping(l, b0.NS, dst); err != nil {
		t.Errorf("no ping across after the garbage: %v", err)
	}
}

// TestDeadRemote configures blue with a static remote nobody answers for
// (172.16.220.9, listed first) beside green: flooding to it and failing to
// resolve it must not stall forwarding to green.
func TestDeadRemote(t *testing.T) {
	requireRoot(t)
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Containers: 2, Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	var agents []*agent
	for _, h := range top.Hosts {
		remotes := fmt.Sprintf("[%q]", h.Peers[0])
		if h.Index == 0 {
			remotes = fmt.Sprintf("[172.16.220.9, %q]", h.Peers[0])
		}
		var ports []portSpec
		for _, c := range h.Containers {
			ports = append(ports, portSpec{c, lab.VLAN})
		}
		cfg := overlayConfig(top, h, true, false, ports, fmt.Sprintf("  vni: {7: 7}\n  remotes: %s\n", remotes))
		agents = append(agents, startAgent(t, l, h.NS, h.Name, cfg))
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	var pairs []pingPair
	for _, from := range hostEnds(blue, "4") {
		for _, to := range hostEnds(green, "4") {
			pairs = append(pairs, pingPair{from, to}, pingPair{to, from})
		}
	}
	pingAll(t, l, pairs)
	// Again with empty neighbour caches and FDBs: every ARP request is
	// flooded to both remotes, the dead one first.
	for _, a := range agents {
		a.cli(t, "fdb", "flush")
	}
	for _, c := range top.Containers() {
		_, _ = l.Exec(c.NS, "ip", "neigh", "flush", "all")
	}
	b0, g0 := blue.Containers[0], green.Containers[0]
	out, err := l.Exec(b0.NS, "ping", "-n", "-c", "20", "-i", "0.1", "-W", "1", g0.Addr4.Addr().String())
	if got := received(out); got < 19 {
		t.Errorf("ping with a dead remote configured: %d of 20 answered (%v):\n%s", got, err, out)
	}
	if err := agents[0].proc.Alive(); err != nil {
		t.Error(err)
	}
	// The kernel tried to resolve the dead remote: the agent did send to it.
	if neigh, err := l.Exec(blue.NS, "ip", "neigh", "show", "172.16.220.9"); err != nil || !strings.Contains(neigh, "172.16.220.9") {
		t.Errorf("blue never sent to the dead remote (no neighbour entry): %v %s", err, neigh)
	}
	show := agents[0].cli(t, "show")
	if !strings.Contains(show, "172.16.220.9") {
		t.Errorf("show does not list the dead remote:\n%s", show)
	}
	t.Logf("blue's tunnel drops: %v", agents[0].stats(t).Tunnel.Drops)
}

var receivedRE = regexp.MustCompile(`(\d+) received`)

// received reads "N received" from ping's summary (0 when absent).
func received(out string) int {
	m := receivedRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func grepLines(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// garbage counts what sendGarbage sent, by kind.
type garbage struct {
	Random, CutHeader, NoIFlag, UnknownVNI, ShortInner, SendErrors int
}

func (g garbage) total() int { return g.Random + g.CutHeader + g.NoIFlag + g.UnknownVNI + g.ShortInner }

// sendGarbage sends up to max bad VXLAN packets to dst from a UDP socket
// in namespace ns, for at most d, cycling through five kinds. carried is
// the one VNI the receiver serves; nothing sent is a valid packet for it,
// so nothing should get through. Inner frames come from 0a:xx:xx:xx:xx:xx.
// garbageMACPrefix starts the source MAC of every garbage inner frame.
const garbageMACPrefix = "0a:bd:"

func sendGarbage(ns string, dst netip.AddrPort, carried uint32, max int, d time.Duration) (garbage, error) {
	var g garbage
	err := inNS(ns, func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		rng := rand.New(rand.NewPCG(7, 4789))
		buf := make([]byte, 8+64)
		header := func(flags byte, vni uint32) {
			binary.BigEndian.PutUint32(buf[0:4], uint32(flags)<<24)
			binary.BigEndian.PutUint32(buf[4:8], vni<<8)
		}
		inner := func() {
			f := buf[8:]
			copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			f[6], f[7] = 0x0a, 0xbd // garbageMACPrefix
			for i := 8; i < 12; i++ {
				f[i] = byte(rng.Uint32())
			}
			binary.BigEndian.PutUint16(f[12:14], 0x88b5) // local experimental
			clear(f[14:])
		}
		deadline := time.Now().Add(d)
		for i := 0; i < max; i++ {
			if i%256 == 0 && time.Now().After(deadline) {
				break
			}
			var p []byte
			switch i % 5 {
			case 0: // random bytes of random length
				p = buf[:rng.IntN(len(buf)+1)]
				for j := range p {
					p[j] = byte(rng.Uint32())
				}
				if len(p) >= 8 && p[0]&0x08 != 0 && binary.BigEndian.Uint32(p[4:8])>>8 == carried {
					p[0] &^= 0x08
				}
				g.Random++
			case 1: // shorter than the VXLAN header itself
				header(0x08, carried)
				p = buf[:rng.IntN(8)]
				g.CutHeader++
			case 2: // I flag clear, otherwise good
				header(byte(rng.Uint32())&^0x08, carried)
				inner()
				p = buf
				g.NoIFlag++
			case 3: // a VNI the receiver does not carry
				header(0x08, carried+1+uint32(rng.IntN(1000)))
				inner()
				p = buf
				g.UnknownVNI++
			case 4: // a good header, then less than an Ethernet header
				header(0x08, carried)
				inner()
				p = buf[:8+rng.IntN(14)]
				g.ShortInner++
			}
			if _, err := c.Write(p); err != nil {
				g.SendErrors++ // ECONNREFUSED if nothing listens any more
			}
		}
		return nil
	})
	return g, err
}
