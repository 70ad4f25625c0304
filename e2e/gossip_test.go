package e2e

import (
	"fmt"
	"maps"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// TestGossip is the netns test of issue "Gossip discovery of VTEPs" (item
// 5): three hosts on one underlay (a Linux bridge in a "switch"
// namespace), each running an agent with one container on VLAN 7, no
// static remotes, and an encrypted gossip section that names only h1 as
// seed. They find each other, the containers ping as a mesh; a killed
// agent is detected, its VTEP and MACs go, and it comes back on restart;
// an agent with another key is not admitted; and `accept: members` (on h2)
// drops VXLAN from an underlay address that is no member.
func TestGossip(t *testing.T) {
	requireRoot(t)
	begin := time.Now()
	l := lab.ForTest(t)
	sw := newGossipUnderlay(t, l)
	key := writeGossipKey(t, l, "cluster.key")

	hosts := make([]*gossipHost, 3)
	for i := range hosts {
		h := newGossipHost(t, l, sw, i+1, key)
		switch h.name {
		case "h2":
			h.accept = "members"
		case "h3":
			h.member = "rack2-h3" // gossip.name
		}
		hosts[i] = h
	}
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]
	for _, h := range hosts {
		h.start(t)
	}
	all := map[string]string{h1.vtep: "alive", h2.vtep: "alive", h3.vtep: "alive"}
	t.Logf("lab and 3 agents up after %v", time.Since(begin).Round(time.Millisecond))

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"converge", func(t *testing.T) {
			start := time.Now()
			waitGossipHosts(t, hosts, 15*time.Second, func(h *gossipHost) error { return h.membersAre(all) })
			t.Logf("3 alive on every host after %v", time.Since(start).Round(time.Millisecond))
		}},
		{"gossip.name", func(t *testing.T) {
			// h3 set its name; the others have hostname-bridge.
			host, err := os.Hostname()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{h1.vtep: host + "-h1", h2.vtep: host + "-h2", h3.vtep: "rack2-h3"}
			for _, h := range hosts {
				ms, out, err := h.members()
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, m := range ms {
					got[m.Address] = m.Name
				}
				if !maps.Equal(got, want) {
					t.Errorf("%s members (VTEP: name) = %v, want %v\n%s", h.name, got, want, out)
				}
			}
		}},
		{"mesh", func(t *testing.T) {
			for _, from := range hosts {
				for _, to := range hosts {
					if from != to {
						if err := from.waitPing(to.cIP, 10*time.Second); err != nil {
							t.Errorf("%s -> %s: %v", from.name, to.name, err)
						}
					}
				}
			}
		}},
		{"show lists gossip VTEPs", func(t *testing.T) {
			want := map[string]string{h2.vtep: "gossip", h3.vtep: "gossip"}
			if got := h1.vtepSources(t); !maps.Equal(got, want) {
				t.Errorf("h1 show --json VTEPs (address: source) = %v, want %v", got, want)
			}
		}},
		{"VNIs follow port add and del", func(t *testing.T) {
			// A port on VLAN 8 makes h1 carry VNI 8: the others learn it
			// from h1's gossip metadata, and forget it when the port goes.
			h1.a.cli(t, "port", "add", "v8", "--type", "internal", "--tag", "8")
			others := []*gossipHost{h2, h3}
			waitGossipHosts(t, others, 15*time.Second, func(h *gossipHost) error { return h.memberVNIs(h1.vtep, []uint32{7, 8}) })
			h1.a.cli(t, "port", "del", "v8")
			waitGossipHosts(t, others, 15*time.Second, func(h *gossipHost) error { return h.memberVNIs(h1.vtep, []uint32{7}) })
		}},
		{"accept members", func(t *testing.T) { testGossipAcceptMembers(t, l, sw, h1, h2, h3) }},
		{"kill -9", func(t *testing.T) {
			mac := macOf(t, l, h3.c, h3.port)
			for _, h := range []*gossipHost{h1, h2} {
				if !h.hasMAC(t, mac) {
					t.Fatalf("before the kill, %s's FDB lacks h3's container MAC %s: %v", h.name, mac, h.a.fdb(t))
				}
			}
			start := time.Now()
			h3.kill(t)
			failed := map[string]string{h1.vtep: "alive", h2.vtep: "alive", h3.vtep: "failed"}
			waitGossipHosts(t, []*gossipHost{h1, h2}, 30*time.Second, func(h *gossipHost) error {
				if err := h.membersAre(failed); err != nil {
					return err
				}
				if has, err := h.fdbHas(mac); err != nil || has {
					return fmt.Errorf("h3's container MAC %s still in the FDB (%v)", mac, err)
				}
				return nil
			})
			t.Logf("h3 failed and its MAC purged on h1 and h2 after %v", time.Since(start).Round(time.Millisecond))
			for _, p := range [][2]*gossipHost{{h1, h2}, {h2, h1}} {
				if err := ping(l, p[0].c, p[1].cIP); err != nil {
					t.Errorf("%s -> %s with h3 down: %v", p[0].name, p[1].name, err)
				}
			}
			if got := h1.vtepSources(t); !maps.Equal(got, map[string]string{h2.vtep: "gossip"}) {
				t.Errorf("h1 VTEPs with h3 down: %v, want only h2's", got)
			}
		}},
		{"restart", func(t *testing.T) {
			start := time.Now()
			h3.start(t)
			waitGossipHosts(t, hosts, 15*time.Second, func(h *gossipHost) error { return h.membersAre(all) })
			// The restarted agent made a new container interface, with a
			// new MAC. c3 speaks first, as a restarted container does: its
			// ARP requests update c1's and c2's neighbour entries, which
			// would otherwise point at the old MAC until they time out
			// (up to a minute). Then c1 and c2 reach it.
			for _, p := range [][2]*gossipHost{{h3, h1}, {h3, h2}, {h1, h3}, {h2, h3}} {
				if err := p[0].waitPing(p[1].cIP, 15*time.Second); err != nil {
					t.Errorf("%s -> %s after h3's restart: %v", p[0].name, p[1].name, err)
				}
			}
			t.Logf("h3 back (members and pings) after %v", time.Since(start).Round(time.Millisecond))
		}},
		{"wrong key not admitted", func(t *testing.T) {
			other := writeGossipKey(t, l, "other.key")
			h4 := newGossipHost(t, l, sw, 4, other)
			h4.start(t)
			// h4 tries h1 at once; its first failure is a warning, with
			// memberlist's reason.
			var why string
			if err := l.WaitFor(func() error {
				if why = h4.logLine("join failed", "could decrypt"); why == "" {
					return fmt.Errorf("h4's log does not say that joining failed for the key:\n%s", h4.a.proc.Tail(10))
				}
				return nil
			}, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("h4 says: %s", why)
			if seed := h1.logLine("could decrypt"); seed != "" {
				t.Logf("h1 says: %s", seed)
			}
			if err := h1.membersAre(all); err != nil {
				t.Errorf("h1: %v", err)
			}
			if err := h4.membersAre(map[string]string{h4.vtep: "alive"}); err != nil {
				t.Errorf("h4: %v", err)
			}
			if got, want := h1.vtepSources(t), map[string]string{h2.vtep: "gossip", h3.vtep: "gossip"}; !maps.Equal(got, want) {
				t.Errorf("h1 VTEPs with h4 knocking: %v, want %v", got, want)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			return // the later steps build on this one
		}
	}
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
}

// testGossipAcceptMembers sends a valid VXLAN packet (VNI 7, a broadcast ARP
// from a fresh MAC) from a fifth underlay namespace that is no member, to
// h2 (accept: members) and to h1 (accept: any). h2 drops it as
// unknown_sender and learns nothing; h1 learns the MAC, which shows that
// the packet was good. Member traffic through h2 still passes.
func testGossipAcceptMembers(t *testing.T, l *lab.Lab, sw string, h1, h2, h3 *gossipHost) {
	stranger := quietNS(t, l, "h5")
	const strangerAddr = "172.16.220.19"
	attachGossipUnderlay(t, l, sw, stranger, "p5", strangerAddr)
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x53, 0x19}
	frame := arpRequest(mac, net.ParseIP("192.0.2.19"), net.ParseIP("192.0.2.99"), -1)
	pkt := append([]byte{0x08, 0, 0, 0, 0, 0, 7, 0}, frame...) // RFC 7348: I flag, VNI 7

	before := h2.tunnelDrops(t, "unknown_sender")
	const n = 5
	if err := inNS(stranger, func() error {
		for _, dst := range []string{h2.vtep, h1.vtep} {
			c, err := net.Dial("udp4", net.JoinHostPort(dst, "4789"))
			if err != nil {
				return err
			}
			for range n {
				if _, err := c.Write(pkt); err != nil {
					c.Close()
					return err
				}
			}
			c.Close()
		}
		return nil
	}); err != nil {
		t.Fatalf("send VXLAN from %s: %v", strangerAddr, err)
	}
	if err := l.WaitFor(func() error {
		if has, err := h1.fdbHas(mac.String()); err != nil || !has {
			return fmt.Errorf("h1 (accept: any) did not learn %s from the stranger's packet (%v)", mac, err)
		}
		return nil
	}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitFor(func() error {
		if got := h2.tunnelDrops(t, "unknown_sender"); got < before+n {
			return fmt.Errorf("h2 tunnel drops unknown_sender = %d, want %d", got, before+n)
		}
		return nil
	}, 10*time.Second); err != nil {
		t.Error(err)
	}
	if h2.hasMAC(t, mac.String()) {
		t.Errorf("h2 (accept: members) learned %s from a non-member", mac)
	}
	for _, p := range [][2]*gossipHost{{h1, h2}, {h3, h2}, {h2, h1}} {
		if err := ping(l, p[0].c, p[1].cIP); err != nil {
			t.Errorf("member traffic %s -> %s through h2: %v", p[0].name, p[1].name, err)
		}
	}
	if got := h2.tunnelDrops(t, "unknown_sender"); got != before+n {
		t.Errorf("h2 tunnel drops unknown_sender = %d after member pings, want %d (members dropped?)", got, before+n)
	}
}
