package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// Issue 3 item 4: vxswitch on blue, a different VTEP on green.

// TestKernelInterop puts a Linux bridge with a kernel vxlan device (VNI 7,
// dstport 4789) on green, at MTU 9000, opposite a vxswitch agent on blue.
func TestKernelInterop(t *testing.T) {
	requireRoot(t)
	requireTools(t, "iperf3")
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{MTU: 9000, Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	vethContainers(t, top, green)
	if err := (lab.Kernel{}).Setup(only(top, green)); err != nil {
		t.Fatal(err)
	}
	vx := &lab.VXSwitch{Binary: vxBin}
	if err := vx.Setup(only(top, blue)); err != nil {
		t.Fatal(err)
	}
	a := labAgent(top, vx, blue)
	b0, g0 := blue.Containers[0], green.Containers[0]

	t.Run("ping", func(t *testing.T) {
		for _, fam := range []string{"4", "6"} {
			pingAll(t, l, []pingPair{
				{ctrEnd(b0, fam), ctrEnd(g0, fam)}, {ctrEnd(g0, fam), ctrEnd(b0, fam)},
				{sviEnd(blue, fam), sviEnd(green, fam)}, {sviEnd(green, fam), sviEnd(blue, fam)},
			})
		}
	})
	t.Run("jumbo DF", func(t *testing.T) {
		pingAll(t, l, []pingPair{{ctrEnd(b0, "4"), ctrEnd(g0, "4")}, {ctrEnd(g0, "4"), ctrEnd(b0, "4")}}, "-M", "do", "-s", "8972")
		pingAll(t, l, []pingPair{{ctrEnd(b0, "6"), ctrEnd(g0, "6")}, {ctrEnd(g0, "6"), ctrEnd(b0, "6")}}, "-6", "-M", "do", "-s", "8952")
	})
	// Offloads stay at their defaults on both sides. Over a veth underlay
	// the kernel's vxlan device sends inner TCP checksums unfinished
	// (CHECKSUM_PARTIAL: the field holds only the pseudo-header sum), and
	// the UDP socket hands them to vxswitch as they are: vxswitch has to
	// finish them before a TAP delivers the frame, or the container drops
	// every segment. ICMP has no such offload, so ping alone cannot tell.
	// TCP also sends super-frames (TSO), which the kernel's vxlan device
	// keeps whole over a veth; whatever reaches the switch has to leave it
	// at the MTU, not be dropped as too big.
	t.Run("iperf3 TCP", func(t *testing.T) {
		before := oversizeDrops(t, a)
		iperf(t, l, g0, b0)
		iperf(t, l, b0, g0)
		if after := oversizeDrops(t, a); after != before {
			t.Errorf("blue dropped frames as too big or truncated during TCP: %d -> %d\n%s", before, after, a.cli(t, "stats"))
		}
	})
	t.Run("fdb show on blue", func(t *testing.T) {
		checkRemoteMAC(t, a, macOf(t, l, g0.NS, g0.IfName), green.Underlay.Addr().String())
	})
}

// TestOVSInterop puts Open vSwitch (userspace datapath, underlay on
// br-phy, containers on access ports tag=7, a vxlan port key=7 without a
// tag, so a trunk) on green, opposite a vxswitch agent on blue with
// trunk-vni 7: VLAN 7 crosses tagged inside VNI 7.
func TestOVSInterop(t *testing.T) {
	requireRoot(t)
	ovs := &lab.OVS{}
	if err := ovs.Available(); err != nil {
		missing(t, err.Error())
	}
	l := lab.ForTest(t)
	top, err := lab.TwoHosts(l, lab.Options{Octet: lab.DemoOctet})
	if err != nil {
		t.Fatal(err)
	}
	blue, green := top.Hosts[0], top.Hosts[1]
	vethContainers(t, top, green)
	// OVS is stopped and its directory removed by the lab's cleanup, which
	// ForTest registered before anything was started.
	if err := ovs.Setup(only(top, green)); err != nil {
		t.Fatal(err)
	}
	// OVS's userspace datapath reads the underlay with AF_PACKET and checks
	// the outer UDP checksum itself, but a veth hands on what the sending
	// kernel left CHECKSUM_PARTIAL unfinished, so OVS drops every packet
	// (coverage datapath_drop_tunnel_pop_error). It does the same to the
	// kernel's own vxlan device (udpcsum is its default), and turning
	// offloads off on OVS's side does not help: only the sender's link can
	// finish the checksum, as a real NIC does. So blue's end of the
	// underlay computes checksums in software; vxswitch's ports keep
	// their defaults.
	if _, err := l.Exec(blue.NS, "ethtool", "-K", lab.UnderlayIf, "tx", "off"); err != nil {
		t.Fatal(err)
	}
	var ports []portSpec
	for _, c := range blue.Containers {
		ports = append(ports, portSpec{c, lab.VLAN})
	}
	cfg := overlayConfig(top, blue, true, false, ports, fmt.Sprintf("  trunk-vni: %d\n  remotes: [%q]\n", lab.VLAN, blue.Peers[0]))
	a := startAgent(t, l, blue.NS, blue.Name, cfg)
	b0, g0 := blue.Containers[0], green.Containers[0]

	t.Run("ping", func(t *testing.T) {
		for _, fam := range []string{"4", "6"} {
			pingAll(t, l, []pingPair{
				{ctrEnd(b0, fam), ctrEnd(g0, fam)}, {ctrEnd(g0, fam), ctrEnd(b0, fam)},
				{sviEnd(blue, fam), sviEnd(green, fam)}, {sviEnd(green, fam), sviEnd(blue, fam)},
			})
		}
	})
	t.Run("fdb show on blue", func(t *testing.T) {
		checkRemoteMAC(t, a, macOf(t, l, g0.NS, g0.IfName), green.Underlay.Addr().String())
	})
	t.Run("OVS learned blue's MACs in VLAN 7", func(t *testing.T) {
		out, err := ovs.Appctl(top, green, "fdb/show", "br-int")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range blue.Containers {
			mac := macOf(t, l, c.NS, c.IfName)
			if !ovsFDBHas(out, mac, lab.VLAN) {
				t.Errorf("%s (%s) not in green's OVS fdb in VLAN %d:\n%s", c, mac, lab.VLAN, out)
			}
		}
	})
	if t.Failed() {
		for _, cmd := range [][]string{{"fdb/show", "br-int"}, {"coverage/read-counter", "datapath_drop_tunnel_pop_error"}, {"dpctl/dump-flows"}} {
			out, err := ovs.Appctl(top, green, cmd...)
			t.Logf("green: ovs-appctl %s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
}

// ovsFDBHas finds mac in VLAN vlan in `ovs-appctl fdb/show` output
// (columns port, VLAN, MAC, Age).
func ovsFDBHas(out, mac string, vlan int) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == fmt.Sprint(vlan) && f[2] == mac {
			return true
		}
	}
	return false
}

// requireTools skips (outside CI) or fails (in CI) when a program is
// missing, as requireRoot does for root.
func requireTools(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, err.Error())
		}
	}
}

// missing skips the test for want of something scripts/install-deps.sh
// installs, or fails it when CI is set.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (scripts/install-deps.sh); CI is set, so this fails instead of skipping", what)
	}
	t.Skipf("%s (scripts/install-deps.sh)", what)
}

// only returns top restricted to host h, for a contender that must run on
// that host alone.
func only(top *lab.Topo, h *lab.Host) *lab.Topo {
	return &lab.Topo{Lab: top.Lab, Opts: top.Opts, Hosts: []*lab.Host{h}}
}

// vethContainers gives h's containers what TwoHosts gives them with
// ContainerVeths: a veth "cN" in the host and "eth0" in the container,
// addressed and up.
func vethContainers(t *testing.T, top *lab.Topo, h *lab.Host) {
	t.Helper()
	l := top.Lab
	for _, c := range h.Containers {
		c.IfName = "eth0"
		if err := l.Veth(h.NS, c.Name, c.NS, c.IfName, top.Opts.MTU); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{c.Addr4.String(), c.Addr6.String()} {
			if err := l.Addr(c.NS, c.IfName, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Up(c.NS, c.IfName); err != nil {
			t.Fatal(err)
		}
		if err := l.Up(h.NS, c.Name); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRemoteMAC checks that a lists mac in VLAN 7 behind the tunnel at
// remote.
func checkRemoteMAC(t *testing.T, a *agent, mac, remote string) {
	t.Helper()
	es := a.fdb(t)
	e, ok := fdbEntry(es, mac, lab.VLAN)
	if !ok || e.Port != "vxlan" || e.Remote != remote {
		t.Errorf("%s in VLAN %d: got %+v (found %v), want port vxlan, remote %s\n%+v", mac, lab.VLAN, e, ok, remote, es)
	}
}

// oversizeDrops sums a's too_big drops on every port and the tunnel's
// too_big and truncated drops.
func oversizeDrops(t *testing.T, a *agent) uint64 {
	t.Helper()
	s := a.stats(t)
	var n uint64
	for _, p := range s.Ports {
		n += p.Drops["too_big"]
	}
	if s.Tunnel != nil {
		n += s.Tunnel.Drops["too_big"] + s.Tunnel.Drops["truncated"]
	}
	return n
}

// iperfResult is the part of `iperf3 --json` the test reads.
type iperfResult struct {
	End struct {
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs a 3-second iperf3 TCP test from client to server's IPv4
// address and checks that it completes with data received. It asserts no
// speed; the bitrate goes to the log.
func iperf(t *testing.T, l *lab.Lab, server, client *lab.Container) {
	t.Helper()
	addr := server.Addr4.Addr().String()
	srv, err := l.Start(server.NS, "iperf3", "-s", "-1", "-B", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := l.WaitFor(func() error {
		if err := srv.Alive(); err != nil {
			return err
		}
		out, _ := l.Exec(server.NS, "ss", "-Hltn", "sport = :5201")
		if !strings.Contains(out, "5201") {
			return fmt.Errorf("iperf3 -s not listening yet")
		}
		return nil
	}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := l.ExecContext(ctx, client.NS, "iperf3", "-c", addr, "-t", "3", "--json", "--connect-timeout", "5000")
	var r iperfResult
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("%s -> %s: iperf3: %v; output not JSON (%v):\n%s", client, server, err, jerr, out)
	}
	if err != nil || r.Error != "" {
		t.Errorf("%s -> %s: iperf3 TCP failed: %s (%v)", client, server, r.Error, err)
		return
	}
	rx := r.End.SumReceived
	if rx.Bytes <= 0 || rx.BitsPerSecond <= 0 {
		t.Errorf("%s -> %s: iperf3 received %.0f bytes at %.0f bit/s, want more than nothing", client, server, rx.Bytes, rx.BitsPerSecond)
	}
	t.Logf("%s -> %s: TCP %.2f Gbit/s (%.0f MB)", client, server, rx.BitsPerSecond/1e9, rx.Bytes/1e6)
}
