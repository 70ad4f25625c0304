package e2e

import (
	"strings"
	"testing"

	"github.com/vxswitch/vxswitch/bench/lab"
)

// TestInternalPortMAC: an internal port with mac: gets that address in
// its namespace, keeps it when the agent is restarted (a random one would
// change and leave the neighbours' ARP caches stale), and `port add
// --mac` does the same at run time.
func TestInternalPortMAC(t *testing.T) {
	requireRoot(t)
	l, h, c0, s0 := internalAndSystemLab(t)
	const mac0, mac1 = "02:00:5e:10:00:0a", "02:00:5e:10:00:0b"
	cfg := `bridge: mac
ports:
  - {name: c0, type: internal, tag: 7, netns: ` + lab.NSPath(c0) + `, addresses: [192.0.2.10/24], mac: "` + mac0 + `"}
  - {name: s0p, type: system, tag: 7}
control:
  socket: SOCKET
`
	linkMAC := func(ns, ifname string) string {
		t.Helper()
		out, err := l.Exec(ns, "cat", "/sys/class/net/"+ifname+"/address")
		if err != nil {
			t.Fatalf("%s address: %v\n%s", ifname, err, out)
		}
		return strings.TrimSpace(out)
	}
	for round := range 2 { // start, then restart
		a := startAgent(t, l, h, "mac", cfg)
		if got := linkMAC(c0, "c0"); got != mac0 {
			t.Errorf("round %d: c0 has MAC %s, want %s", round, got, mac0)
		}
		if err := ping(l, s0, "192.0.2.10"); err != nil {
			t.Errorf("round %d: s0 -> c0: %v", round, err)
		}
		if round == 1 {
			a.cli(t, "port", "add", "c1", "--type", "internal", "--tag", "7", "--mac", mac1)
			if got := linkMAC(h, "c1"); got != mac1 {
				t.Errorf("port add --mac: c1 has MAC %s, want %s", got, mac1)
			}
		}
		if err := a.proc.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}
