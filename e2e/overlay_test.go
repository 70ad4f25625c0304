package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// Issue 3 item 4: the tunnel between two agents in the classic lab.

// TestDemoTopology is the classic lab (what `make demo` shows): blue and
// green over an IPv4 underlay (MTU 9100), each with the SVI sw-vlan7 and
// two containers on VLAN 7 at MTU 9000.
func TestDemoTopology(t *testing.T) {
	requireRoot(t)
	checkDemoLab(t, false)
}

// TestIPv6Underlay is the classic lab with the tunnel over
// 2001:db8:220::2 and ::3.
func TestIPv6Underlay(t *testing.T) {
	requireRoot(t)
	checkDemoLab(t, true)
}

func checkDemoLab(t *testing.T, ipv6Underlay bool) {
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Containers: 2, MTU: 9000, Octet: lab.DemoOctet, IPv6Underlay: ipv6Underlay})
	if err != nil {
		t.Fatal(err)
	}
	vx := &lab.VXSwitch{Binary: vxBin}
	if err := vx.Setup(top); err != nil {
		t.Fatal(err)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	a := labAgent(top, vx, blue)

	t.Run("ping mesh", func(t *testing.T) {
		var pairs []pingPair
		for _, fam := range []string{"4", "6"} {
			for _, h := range top.Hosts {
				other := top.Hosts[1-h.Index]
				for _, from := range hostEnds(h, fam) {
					for _, to := range hostEnds(other, fam) {
						pairs = append(pairs, pingPair{from: from, to: to})
					}
				}
			}
		}
		pingAll(t, l, pairs)
	})

	t.Run("jumbo DF", func(t *testing.T) {
		b0, g1 := blue.Containers[0], green.Containers[1]
		pairs := []pingPair{
			{from: ctrEnd(b0, "4"), to: ctrEnd(g1, "4")},
			{from: ctrEnd(g1, "4"), to: sviEnd(blue, "4")},
		}
		pingAll(t, l, pairs, "-M", "do", "-s", "8972")
		pairs = []pingPair{
			{from: ctrEnd(b0, "6"), to: ctrEnd(g1, "6")},
			{from: ctrEnd(g1, "6"), to: sviEnd(blue, "6")},
		}
		pingAll(t, l, pairs, "-6", "-M", "do", "-s", "8952")
	})

	t.Run("fdb show on blue", func(t *testing.T) {
		es := a.fdb(t)
		remote := green.Underlay.Addr().String()
		for _, c := range green.Containers {
			mac := macOf(t, l, c.NS, c.IfName)
			e, ok := fdbEntry(es, mac, lab.VLAN)
			if !ok {
				t.Errorf("%s (%s) not in blue's FDB in VLAN %d:\n%+v", c, mac, lab.VLAN, es)
				continue
			}
			if e.Port != "vxlan" || e.Remote != remote || e.Static {
				t.Errorf("%s: got %+v, want port vxlan, remote %s, learned", c, e, remote)
			}
		}
		for _, c := range blue.Containers {
			mac := macOf(t, l, c.NS, c.IfName)
			if e, ok := fdbEntry(es, mac, lab.VLAN); !ok || e.Port != c.Name || e.Remote != "" {
				t.Errorf("%s (%s): got %+v (found %v), want port %s without remote", c, mac, e, ok, c.Name)
			}
		}
	})

	if t.Failed() {
		t.Logf("blue's fdb:\n%s\ngreen's fdb:\n%s", a.cli(t, "fdb", "show"), labAgent(top, vx, green).cli(t, "fdb", "show"))
	}
}

// labAgent wraps an agent that lab.VXSwitch started, for the CLI helpers.
func labAgent(top *lab.Topo, vx *lab.VXSwitch, h *lab.Host) *agent {
	return &agent{l: top.Lab, ns: h.NS, sock: lab.SocketPath(top, h), proc: vx.Agent(h)}
}

// pingEnd is one end of a ping: a namespace and the address it answers on.
type pingEnd struct {
	name string
	ns   string
	addr netip.Addr
}

type pingPair struct{ from, to pingEnd }

func ctrEnd(c *lab.Container, fam string) pingEnd {
	a := c.Addr4
	if fam == "6" {
		a = c.Addr6
	}
	return pingEnd{name: c.String(), ns: c.NS, addr: a.Addr()}
}

func sviEnd(h *lab.Host, fam string) pingEnd {
	a := h.SVI4
	if fam == "6" {
		a = h.SVI6
	}
	return pingEnd{name: h.Name + "-sw-vlan7", ns: h.NS, addr: a.Addr()}
}

// hostEnds lists the SVI and every container of h.
func hostEnds(h *lab.Host, fam string) []pingEnd {
	out := []pingEnd{sviEnd(h, fam)}
	for _, c := range h.Containers {
		out = append(out, ctrEnd(c, fam))
	}
	return out
}

// pingAll pings every pair (ping's retries included), four at a time, and
// reports each pair that fails.
func pingAll(t *testing.T, l *lab.Lab, pairs []pingPair, extra ...string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, p := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := ping(l, p.from.ns, p.to.addr.String(), extra...); err != nil {
				t.Errorf("%s -> %s (%s): %v", p.from.name, p.to.name, p.to.addr, err)
			}
		}()
	}
	wg.Wait()
}

// noneReach checks that no pair gets through: one ping each, all at once,
// after flushing the senders' neighbour caches so that ARP has to cross
// the switch again.
func noneReach(t *testing.T, l *lab.Lab, pairs []pingPair) {
	t.Helper()
	for _, p := range pairs {
		_, _ = l.Exec(p.from.ns, "ip", "neigh", "flush", "all")
	}
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() {
			if out, err := l.Exec(p.from.ns, "ping", "-n", "-c", "1", "-W", "1", p.to.addr.String()); err == nil {
				t.Errorf("%s reached %s (%s), which it must not:\n%s", p.from.name, p.to.name, p.to.addr, out)
			}
		})
	}
	wg.Wait()
}

func fdbEntry(es []controlFDB, mac string, vlan uint16) (controlFDB, bool) {
	for _, e := range es {
		if e.MAC == mac && e.VLAN == vlan {
			return e, true
		}
	}
	return controlFDB{}, false
}

// portSpec is one internal container port of a hand-written config.
type portSpec struct {
	c   *lab.Container
	tag int
}

// overlayConfig writes an agent config for host h: the SVI (when svi is
// set), the given internal container ports (IPv4 only when v4only), and
// vxlanBody, the indented lines of the vxlan section after local:.
func overlayConfig(top *lab.Topo, h *lab.Host, svi, v4only bool, ports []portSpec, vxlanBody string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge: %s\nmtu: %d\nports:\n", h.Name, top.Opts.MTU)
	addrs := func(a4, a6 netip.Prefix) string {
		if v4only {
			return a4.String()
		}
		return a4.String() + ", " + a6.String()
	}
	if svi {
		fmt.Fprintf(&b, "  - {name: sw-vlan7, type: internal, tag: %d, addresses: [%s]}\n", lab.VLAN, addrs(h.SVI4, h.SVI6))
	}
	for _, p := range ports {
		fmt.Fprintf(&b, "  - {name: %s, type: internal, tag: %d, netns: %s, addresses: [%s]}\n",
			p.c.Name, p.tag, lab.NSPath(p.c.NS), addrs(p.c.Addr4, p.c.Addr6))
	}
	fmt.Fprintf(&b, "vxlan:\n  local: %q\n%s", h.Underlay.Addr(), vxlanBody)
	b.WriteString("control:\n  socket: SOCKET\n")
	return b.String()
}

// quiet turns IPv6 off in ns, so that nothing but the test's own traffic
// (no router solicitations, no MLD reports) crosses the switch.
func quiet(t *testing.T, l *lab.Lab, ns string) {
	t.Helper()
	if _, err := l.Exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
}

// TestVNIIsolation maps VLAN 7 to VNI 7007 and VLAN 8 to VNI 8008. On each
// host c0 is on VLAN 7 and c1 on VLAN 8, all four in 192.0.2.0/24, so ARP
// would cross if isolation broke.
func TestVNIIsolation(t *testing.T) {
	requireRoot(t)
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Containers: 2, Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range top.Containers() {
		quiet(t, l, c.NS)
	}
	var agents []*agent
	for _, h := range top.Hosts {
		cfg := overlayConfig(top, h, false, true,
			[]portSpec{{h.Containers[0], 7}, {h.Containers[1], 8}},
			fmt.Sprintf("  vni: {7: 7007, 8: 8008}\n  remotes: [%q]\n", h.Peers[0]))
		agents = append(agents, startAgent(t, l, h.NS, h.Name, cfg))
	}
	var caps []*vxlanCapture
	for _, h := range top.Hosts {
		c, err := captureVXLAN(h.NS, lab.UnderlayIf)
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	b7, b8 := ctrEnd(blue.Containers[0], "4"), ctrEnd(blue.Containers[1], "4")
	g7, g8 := ctrEnd(green.Containers[0], "4"), ctrEnd(green.Containers[1], "4")

	t.Run("VLAN 7 talks, VLAN 8 hears nothing", func(t *testing.T) {
		type count struct {
			tx uint64
			rx string
		}
		before := map[string]count{}
		for i, h := range top.Hosts {
			c := h.Containers[1]
			before[h.Name] = count{agents[i].txPackets(t, c.Name), sysCounter(t, l, c.NS, c.IfName, "rx_packets")}
		}
		pingAll(t, l, []pingPair{{b7, g7}, {g7, b7}})
		noneReach(t, l, []pingPair{{b7, b8}, {b7, g8}, {g7, g8}, {g7, b8}})
		for i, h := range top.Hosts {
			c := h.Containers[1]
			now := count{agents[i].txPackets(t, c.Name), sysCounter(t, l, c.NS, c.IfName, "rx_packets")}
			if now != before[h.Name] {
				t.Errorf("%s (VLAN 8) got VLAN 7 traffic: switch tx %d -> %d, interface rx_packets %s -> %s",
					c, before[h.Name].tx, now.tx, before[h.Name].rx, now.rx)
			}
		}
	})

	t.Run("VLAN 8 talks, never to VLAN 7", func(t *testing.T) {
		pingAll(t, l, []pingPair{{b8, g8}, {g8, b8}})
		noneReach(t, l, []pingPair{{b8, b7}, {b8, g7}, {g8, g7}, {g8, b7}})
	})

	t.Run("underlay carries VNIs 7007 and 8008 only", func(t *testing.T) {
		all := map[uint32]int{}
		for i, c := range caps {
			vnis, noI, err := c.Stop()
			if err != nil {
				t.Errorf("capture on %s: %v", top.Hosts[i].Name, err)
			}
			if noI > 0 {
				t.Errorf("%d packets to %s without the I flag", noI, top.Hosts[i].Name)
			}
			for k, v := range vnis {
				all[k] += v
			}
		}
		for vni := range all {
			if vni != 7007 && vni != 8008 {
				t.Errorf("VNI %d on the underlay; want 7007 and 8008 only:%s", vni, vniList(all))
			}
		}
		for _, vni := range []uint32{7007, 8008} {
			if all[vni] == 0 {
				t.Errorf("no packet with VNI %d on the underlay:%s", vni, vniList(all))
			}
		}
		t.Logf("underlay:%s", vniList(all))
	})

	if t.Failed() {
		for i, a := range agents {
			t.Logf("%s agent log:\n%s", top.Hosts[i].Name, readFile(a.proc.Log))
		}
	}
}
