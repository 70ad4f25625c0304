package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/bench/measure"
)

// TestOffload runs iperf3 TCP through the real agent with the kernel's
// offloads left as a user finds them: TSO and checksum offload on the
// veths (the default). The kernel hands system ports super-frames of up
// to 64 KB and frames whose checksums are not finished; the agent must
// turn them into wire frames, also towards an internal port (a TAP without
// a vnet header takes only finished, MTU-sized frames).
//
//	ns a: eth0 192.0.2.1 ── veth ── a0 (system)          ┐
//	                                                     ├─ agent in ns h, VLAN 7
//	ns b: eth0 192.0.2.2 ── veth ── b0 (system)          ┘   (or: internal port b0, a TAP, in ns b)
//
// Both directions are measured; each must move data at a sensible rate
// (iperf3 -t 5; a stall is a failure), and the agent must count no
// too_big drops, which is what super-frames forwarded whole would cause.
func TestOffload(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name     string
		internal bool // b0 is an internal port (TAP) rather than a system port
	}{
		{"system-system", false},
		{"system-internal", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lab.ForTest(t)
			h := quietNS(t, l, "h")
			nsA := quietNS(t, l, "a")
			nsB := quietNS(t, l, "b")
			if err := l.Veth(h, "a0", nsA, "eth0", 0); err != nil {
				t.Fatal(err)
			}
			b0 := "{name: b0, type: system, tag: 7}"
			bIf := "eth0"
			if tc.internal {
				b0 = fmt.Sprintf("{name: b0, type: internal, tag: 7, netns: %s, addresses: [192.0.2.2/24]}", lab.NSPath(nsB))
				bIf = "b0"
			} else if err := l.Veth(h, "b0", nsB, "eth0", 0); err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct{ ns, cidr string }{{nsA, "192.0.2.1/24"}, {nsB, "192.0.2.2/24"}} {
				if tc.internal && s.ns == nsB {
					continue // the agent addresses its internal port
				}
				if err := l.Up(s.ns, "eth0"); err != nil {
					t.Fatal(err)
				}
				if err := l.Addr(s.ns, "eth0", s.cidr); err != nil {
					t.Fatal(err)
				}
			}
			out, err := l.Exec(nsA, "ethtool", "-k", "eth0")
			if err != nil {
				t.Fatal(err)
			}
			for _, feature := range []string{"tcp-segmentation-offload: on", "tx-checksumming: on"} {
				if !strings.Contains(out, feature) {
					t.Fatalf("peer veth in %s does not have %q; the test needs the default offloads", nsA, feature)
				}
			}

			cfg := fmt.Sprintf(`bridge: offload
ports:
  - {name: a0, type: system, tag: 7}
  - %s
control:
  socket: SOCKET
`, b0)
			ag := startAgent(t, l, h, "offload", cfg)
			if err := ping(l, nsA, "192.0.2.2"); err != nil {
				t.Fatalf("ping through the agent: %v", err)
			}
			a := &lab.Container{Name: "a", NS: nsA, IfName: "eth0", Addr4: netip.MustParsePrefix("192.0.2.1/24")}
			b := &lab.Container{Name: "b", NS: nsB, IfName: bIf, Addr4: netip.MustParsePrefix("192.0.2.2/24")}
			for _, d := range []struct {
				name           string
				client, server *lab.Container
			}{{"a->b", a, b}, {"b->a", b, a}} {
				r, err := measure.TCP(l, d.client, d.server, 5*time.Second, "")
				switch {
				case err != nil:
					t.Errorf("%s: iperf3: %v", d.name, err)
				case r.Stalled:
					t.Errorf("%s: TCP stalled: %s", d.name, r.Note)
				case r.Gbps < 0.05:
					t.Errorf("%s: %.3f Gbit/s, want a sensible rate (over 0.05)", d.name, r.Gbps)
				default:
					t.Logf("%s: %.2f Gbit/s, %d retransmits", d.name, r.Gbps, r.Retransmits)
				}
			}
			// Data intact, and written coalesced: b's interface receives
			// GSO frames (userspace GRO on the egress port), not one frame
			// per segment.
			const size = 32 << 20
			rxBefore := ifCounter(t, l, b, "rx_packets")
			if sent, got := tcpTransfer(t, a, b, size); sent != got {
				t.Errorf("a->b: sha256 of %d bytes sent %x, received %x", size, sent, got)
			}
			if frames, segs := ifCounter(t, l, b, "rx_packets")-rxBefore, uint64(size/1448); frames > segs/3 {
				t.Errorf("a->b: %s received %d frames for a %d-segment stream: not coalesced", bIf, frames, segs)
			}
			for _, port := range []string{"a0", "b0"} {
				if n := ag.drops(t, port, "too_big"); n != 0 {
					t.Errorf("port %s: %d too_big drops, want 0 (super-frames must be cut, not forwarded)", port, n)
				}
			}
		})
	}
}
