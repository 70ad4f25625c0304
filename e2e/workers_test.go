package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/control"
)

// TestWorkers runs the agent with workers: 2 and a container on an
// internal port (c0) and one on a system port (s0), both on VLAN 7, plus
// a tunnel endpoint: the devices are opened with two queues each (a
// multi-queue TAP, two AF_PACKET sockets, two UDP sockets), ping works
// both ways, and TCP with several flows (so both queues carry traffic)
// goes through in both directions with the switch dropping nothing.
func TestWorkers(t *testing.T) {
	requireRoot(t)
	l, h, c0, s0 := internalAndSystemLab(t)
	a := startAgent(t, l, h, "w2", internalAndSystemConfig("w2", "workers: 2", c0))

	// The devices have two queues each.
	if out, err := l.Exec(c0, "ip", "-d", "link", "show", "c0"); err != nil || !strings.Contains(out, "multi_queue") {
		t.Errorf("c0 is not a multi-queue TAP (%v):\n%s", err, out)
	}
	if n := packetSockets(t, l, h, "s0p"); n != 2 {
		t.Errorf("%d AF_PACKET sockets on s0p, want 2 (one fanout group)", n)
	}
	if out, err := l.Exec(h, "ss", "-Hlun", "sport = :4789"); err != nil || strings.Count(out, "127.0.0.1:4789") != 2 {
		t.Errorf("want two UDP sockets on 127.0.0.1:4789 (%v):\n%s", err, out)
	}
	var show control.ShowReply
	if err := json.Unmarshal([]byte(a.cli(t, "show", "--json")), &show); err != nil || show.Workers != 2 {
		t.Errorf("show --json: workers %d (%v), want 2", show.Workers, err)
	}
	if out := a.cli(t, "show"); !strings.HasPrefix(out, "Bridge w2, 2 workers\n") {
		t.Errorf("show:\n%s", out)
	}

	if err := ping(l, c0, "192.0.2.20"); err != nil {
		t.Errorf("c0 (internal) -> s0 (system): %v", err)
	}
	if err := ping(l, s0, "192.0.2.10"); err != nil {
		t.Errorf("s0 (system) -> c0 (internal): %v", err)
	}

	// TCP, 4 flows each way: kernel offloads on, so the switch also cuts
	// super-frames on both queues.
	srv, err := l.Start(c0, "iperf3", "-s", "-B", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := l.WaitFor(func() error {
		if out, _ := l.Exec(c0, "ss", "-Hltn", "sport = :5201"); !strings.Contains(out, "5201") {
			return fmt.Errorf("iperf3 -s not listening yet")
		}
		return nil
	}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []struct {
		name  string
		extra []string
	}{{"s0 -> c0", nil}, {"c0 -> s0", []string{"-R"}}} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append([]string{"iperf3", "-c", "192.0.2.10", "-t", "2", "-P", "4", "--json", "--connect-timeout", "5000"}, dir.extra...)
		out, err := l.ExecContext(ctx, s0, args...)
		cancel()
		var r iperfResult
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || err != nil || r.Error != "" {
			t.Errorf("%s: iperf3: %v %v %s\n%s", dir.name, err, jerr, r.Error, out)
			continue
		}
		if rx := r.End.SumReceived; rx.Bytes <= 0 {
			t.Errorf("%s: iperf3 received nothing", dir.name)
		} else {
			t.Logf("%s: TCP, 4 flows, %.2f Gbit/s", dir.name, rx.BitsPerSecond/1e9)
		}
	}

	for _, p := range a.stats(t).Ports {
		for reason, n := range p.Drops {
			if n != 0 {
				t.Errorf("port %s: %d drops %s", p.Name, n, reason)
			}
		}
		if p.RxPackets == 0 || p.TxPackets == 0 {
			t.Errorf("port %s: rx %d tx %d packets", p.Name, p.RxPackets, p.TxPackets)
		}
	}
}

// packetSockets counts the AF_PACKET sockets bound to interface ifname
// in namespace ns (/proc/net/packet lists them by ifindex).
func packetSockets(t *testing.T, l *lab.Lab, ns, ifname string) int {
	t.Helper()
	idx, err := l.Exec(ns, "cat", "/sys/class/net/"+ifname+"/ifindex")
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Exec(ns, "cat", "/proc/net/packet")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(out, "\n")[1:] {
		// sk RefCnt Type Proto Iface R Rmem User Inode
		if f := strings.Fields(line); len(f) >= 5 && f[4] == strings.TrimSpace(idx) {
			n++
		}
	}
	return n
}

// internalAndSystemLab makes the namespaces of a one-agent lab: h for the
// agent, c0 for the kernel side of an internal port c0 (the agent moves
// and addresses it: 192.0.2.10/24), and s0 with eth0 (192.0.2.20/24), a
// veth whose other end s0p stays in h for a system port.
func internalAndSystemLab(t *testing.T) (l *lab.Lab, h, c0, s0 string) {
	t.Helper()
	l = lab.ForTest(t)
	h = quietNS(t, l, "h")
	c0 = quietNS(t, l, "c0")
	s0 = quietNS(t, l, "s0")
	if err := l.Veth(h, "s0p", s0, "eth0", 1500); err != nil {
		t.Fatal(err)
	}
	if err := l.Up(s0, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := l.Addr(s0, "eth0", "192.0.2.20/24"); err != nil {
		t.Fatal(err)
	}
	return l, h, c0, s0
}

// internalAndSystemConfig is the agent config for internalAndSystemLab:
// bridge, the top-level line top (such as "workers: 2"), ports c0 and
// s0p on VLAN 7 and a tunnel endpoint on 127.0.0.1.
func internalAndSystemConfig(bridge, top, c0 string) string {
	return fmt.Sprintf(`bridge: %s
%s
ports:
  - {name: c0, type: internal, tag: 7, netns: %s, addresses: [192.0.2.10/24]}
  - {name: s0p, type: system, tag: 7}
vxlan:
  local: 127.0.0.1
control:
  socket: SOCKET
`, bridge, top, lab.NSPath(c0))
}
