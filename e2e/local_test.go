package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// TestLocalSwitch is issue 2's acceptance test: one agent in namespace h
// with three containers on access VLAN 7 and one on VLAN 8 behind internal
// ports, a container behind a system port on a veth (VLAN 7), a trunk
// system port carrying VLAN 7, and a multi-queue TAP that another process
// (this test) holds open, as QEMU would.
func TestLocalSwitch(t *testing.T) {
	requireRoot(t)
	l := lab.ForTest(t)
	h := quietNS(t, l, "h")
	cs := map[string]string{}
	for _, c := range []string{"c0", "c1", "c2", "c3", "s0", "t0"} {
		cs[c] = quietNS(t, l, c)
	}
	// s0: a container on a veth (system port s0p); t0: a trunk peer (t0p).
	for _, v := range []struct{ host, peer string }{{"s0p", "s0"}, {"t0p", "t0"}} {
		if err := l.Veth(h, v.host, cs[v.peer], "eth0", 9000); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"s0", "t0"} {
		if err := l.Up(cs[c], "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Addr(cs["s0"], "eth0", "192.0.2.20/24"); err != nil {
		t.Fatal(err)
	}
	// vm0: a TAP made with ip tuntap, multi_queue, held open by us.
	if _, err := l.Exec(h, "ip", "tuntap", "add", "mode", "tap", "dev", "vm0", "multi_queue"); err != nil {
		t.Fatal(err)
	}
	var tapFD int
	if err := inNS(h, func() (err error) { tapFD, err = testutil.OpenTAPQueue("vm0", unix.O_NONBLOCK); return err }); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tapFD)
	if err := l.Up(h, "vm0"); err != nil {
		t.Fatal(err)
	}

	cfg := fmt.Sprintf(`bridge: e2e
mtu: 9000
mac-aging: 10s
ports:
  - {name: c0, type: internal, tag: 7, netns: %s, addresses: [192.0.2.10/24]}
  - {name: c1, type: internal, tag: 7, netns: %s, addresses: [192.0.2.11/24]}
  - {name: c2, type: internal, tag: 7, mtu: 9100, netns: %s, addresses: [192.0.2.12/24]}
  - {name: c3, type: internal, tag: 8, netns: %s, addresses: [192.0.2.13/24]}
  - {name: s0p, type: system, tag: 7}
  - {name: t0p, type: system, trunks: [7]}
  - {name: vm0, type: system, tag: 7}
control:
  socket: SOCKET
`, lab.NSPath(cs["c0"]), lab.NSPath(cs["c1"]), lab.NSPath(cs["c2"]), lab.NSPath(cs["c3"]))
	a := startAgent(t, l, h, "e2e", cfg)
	ip := map[string]string{"c0": "192.0.2.10", "c1": "192.0.2.11", "c2": "192.0.2.12", "c3": "192.0.2.13", "s0": "192.0.2.20"}
	ifname := map[string]string{"c0": "c0", "c1": "c1", "c2": "c2", "c3": "c3", "s0": "eth0"}

	t.Run("VLAN 7 mesh", func(t *testing.T) {
		vlan7 := []string{"c0", "c1", "c2", "s0"}
		for _, from := range vlan7 {
			for _, to := range vlan7 {
				if from != to {
					if err := ping(l, cs[from], ip[to]); err != nil {
						t.Errorf("%s -> %s: %v", from, to, err)
					}
				}
			}
		}
	})

	t.Run("VLAN 7 and 8 isolated", func(t *testing.T) {
		txBefore := a.txPackets(t, "c3")
		rxBefore := sysCounter(t, l, cs["c3"], "c3", "rx_packets")
		for _, c := range []string{"c0", "c1", "s0"} {
			l.Exec(cs[c], "ip", "neigh", "flush", "all")
			if _, err := l.Exec(cs[c], "ping", "-c", "1", "-W", "1", ip["c3"]); err == nil {
				t.Errorf("%s reached VLAN 8", c)
			}
		}
		if _, err := l.Exec(cs["c3"], "ping", "-c", "1", "-W", "1", ip["c0"]); err == nil {
			t.Error("c3 (VLAN 8) reached c0 (VLAN 7)")
		}
		if tx := a.txPackets(t, "c3"); tx != txBefore {
			t.Errorf("switch sent %d frames to the VLAN 8 port", tx-txBefore)
		}
		if rx := sysCounter(t, l, cs["c3"], "c3", "rx_packets"); rx != rxBefore {
			t.Errorf("VLAN 8 interface received frames: rx_packets %s -> %s", rxBefore, rx)
		}
	})

	t.Run("jumbo", func(t *testing.T) {
		if err := ping(l, cs["c0"], ip["c1"], "-M", "do", "-s", "8972"); err != nil {
			t.Errorf("8972-byte DF ping at MTU 9000: %v", err)
		}
		// c2 has MTU 9100, so its 8973-byte ping leaves it and must be
		// dropped by the switch at c0's MTU of 9000, and counted.
		before := a.drops(t, "c0", "too_big")
		if _, err := l.Exec(cs["c2"], "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "8973", ip["c0"]); err == nil {
			t.Error("8973-byte ping passed an MTU 9000 port")
		}
		if after := a.drops(t, "c0", "too_big"); after <= before {
			t.Errorf("too_big drops on c0: %d -> %d, want an increase", before, after)
		}
	})

	t.Run("trunk", func(t *testing.T) {
		err := inNS(cs["t0"], func() error {
			r, err := openRaw("eth0")
			if err != nil {
				return err
			}
			defer r.Close()
			mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x40}
			// Tagged VLAN 7: c0 answers, tagged 7.
			if err := r.send(arpRequest(mac, net.ParseIP("192.0.2.40"), net.ParseIP(ip["c0"]), 7)); err != nil {
				return err
			}
			var vlan int
			_, err = r.recv(time.Now().Add(5*time.Second), func(p gopacket.Packet) bool {
				v, ok := isARPReply(p, net.ParseIP(ip["c0"]))
				vlan = v
				return ok
			})
			if err != nil {
				return fmt.Errorf("no ARP reply from c0 on the trunk: %w", err)
			}
			if vlan != 7 {
				return fmt.Errorf("ARP reply on the trunk has VLAN %d, want 7", vlan)
			}
			// VLAN 9 is not in trunks; untagged (VLAN 0) is not either.
			for _, v := range []int{9, -1} {
				if err := r.send(arpRequest(mac, net.ParseIP("192.0.2.40"), net.ParseIP(ip["c0"]), v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitFor(func() error {
			if n := a.drops(t, "t0p", "vlan_not_allowed"); n < 2 {
				return fmt.Errorf("vlan_not_allowed on t0p = %d, want 2", n)
			}
			return nil
		}, 5*time.Second); err != nil {
			t.Error(err)
		}
		if fdbHas(a.fdb(t, "--port", "t0p"), "02:00:00:00:00:40", 7) != "t0p" {
			t.Error("trunk host not learned on t0p in VLAN 7")
		}
	})

	t.Run("multi-queue TAP held by another process", func(t *testing.T) {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x30}
		if _, err := unix.Write(tapFD, arpRequest(mac, net.ParseIP("192.0.2.30"), net.ParseIP(ip["c1"]), -1)); err != nil {
			t.Fatal(err)
		}
		if err := readTAPUntil(tapFD, time.Now().Add(5*time.Second), func(p gopacket.Packet) bool {
			v, ok := isARPReply(p, net.ParseIP(ip["c1"]))
			return ok && v == -1
		}); err != nil {
			t.Fatalf("no ARP reply from c1 through the TAP: %v", err)
		}
	})

	t.Run("fdb show --json", func(t *testing.T) {
		es := a.fdb(t)
		want := map[string]struct {
			port string
			vlan uint16
		}{"c0": {"c0", 7}, "c1": {"c1", 7}, "c2": {"c2", 7}, "c3": {"c3", 8}, "s0": {"s0p", 7}}
		for c, w := range want {
			mac := macOf(t, l, cs[c], ifname[c])
			if got := fdbHas(es, mac, w.vlan); got != w.port {
				t.Errorf("%s (%s) in VLAN %d: port %q, want %q\n%v", c, mac, w.vlan, got, w.port, es)
			}
		}
		if got := fdbHas(es, "02:00:00:00:00:30", 7); got != "vm0" {
			t.Errorf("TAP host on port %q, want vm0", got)
		}
		for _, e := range es {
			if e.Remote != "" || e.Static {
				t.Errorf("unexpected entry %+v", e)
			}
		}
	})

	t.Run("port add and del while traffic flows", func(t *testing.T) {
		var wg sync.WaitGroup
		var out string
		var perr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, perr = l.Exec(cs["c0"], "ping", "-c", "200", "-i", "0.01", "-W", "2", ip["c1"])
		}()
		for i := 0; i < 5; i++ {
			a.cli(t, "port", "add", "x0", "--type", "internal", "--tag", "7")
			a.cli(t, "port", "del", "x0")
		}
		wg.Wait()
		if perr != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("ping during port add/del: %v\n%s", perr, out)
		}
		if _, err := a.run("port", "del", "x0"); err == nil {
			t.Error("deleting a deleted port succeeded")
		}
	})

	t.Run("flush and ageing", func(t *testing.T) {
		// Quiet first: a neighbour entry left in DELAY by the traffic
		// above sends a unicast ARP probe seconds later, which would
		// re-learn MACs behind the test's back. A flushed entry has no
		// pending probe.
		for _, c := range []string{"c0", "c1", "c2", "c3", "s0"} {
			if _, err := l.Exec(cs[c], "ip", "neigh", "flush", "all"); err != nil {
				t.Fatal(err)
			}
		}
		a.cli(t, "fdb", "flush")
		if es := a.fdb(t); len(es) != 0 {
			t.Fatalf("after fdb flush: %v", es)
		}
		if err := ping(l, cs["c0"], ip["c1"], "-c", "1"); err != nil {
			t.Fatal(err)
		}
		if len(a.fdb(t)) < 2 {
			t.Fatal("ping did not re-learn c0 and c1")
		}
		// mac-aging is 10s: after silence, entries go.
		if err := l.WaitFor(func() error {
			if es := a.fdb(t); len(es) != 0 {
				return fmt.Errorf("still %d entries", len(es))
			}
			return nil
		}, 30*time.Second); err != nil {
			t.Errorf("entries did not age out: %v", err)
		}
	})

	t.Run("deleted veth marks its port down", func(t *testing.T) {
		if _, err := l.Exec(h, "ip", "link", "del", "s0p"); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitFor(func() error {
			if s := a.portState(t, "s0p"); s != "down" {
				return fmt.Errorf("s0p is %s", s)
			}
			return nil
		}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := ping(l, cs["c0"], ip["c1"]); err != nil {
			t.Errorf("switch stopped forwarding after a port vanished: %v", err)
		}
	})

	if t.Failed() {
		t.Logf("agent log:\n%s", readFile(a.proc.Log))
	}
}

// fdbHas returns the port of mac in vlan, or "".
func fdbHas(es []controlFDB, mac string, vlan uint16) string {
	for _, e := range es {
		if e.MAC == mac && e.VLAN == vlan {
			return e.Port
		}
	}
	return ""
}

func readTAPUntil(fd int, deadline time.Time, match func(gopacket.Packet) bool) error {
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			return err
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if match(gopacket.NewPacket(append([]byte(nil), buf[:n]...), layersEthernet, gopacket.Default)) {
			return nil
		}
	}
	return fmt.Errorf("no matching frame")
}
