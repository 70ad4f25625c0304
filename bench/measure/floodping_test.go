package measure

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

func TestParseTransmitted(t *testing.T) {
	out := "64 bytes from 192.0.2.102: icmp_seq=1 ttl=64 time=0.251 ms\n\n" +
		"--- 192.0.2.102 ping statistics ---\n199 packets transmitted, 197 received, 1.00501% packet loss, time 4990ms\n"
	if got := parseTransmitted(out); got != 199 {
		t.Errorf("parseTransmitted = %d, want 199", got)
	}
	if got := parseTransmitted("ping: connect: Network is unreachable\n"); got != 0 {
		t.Errorf("parseTransmitted of an error = %d, want 0", got)
	}
}

// TestFloodPing runs the flood-ping metric on the kernel bridge (one
// host, two containers) for two seconds: the flood is counted, the pings
// during it are answered, and a host namespace that does not exist is an
// error, not a hang.
func TestFloodPing(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("trafgen"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no trafgen; make deps installs it (netsniff-ng)")
		}
		t.Skip("no trafgen; make deps installs it (netsniff-ng)")
	}
	l := lab.ForTest(t)
	top, err := lab.Build(l, lab.Kernel{}, lab.Options{Hosts: 1, Containers: 2, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	cs := top.Containers()
	src, dst := cs[0], cs[len(cs)-1]
	r, err := FloodPing(l, top.Hosts[0].NS, src, dst, 2*time.Second, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Flood.DeliveredPackets == 0 || r.Flood.Delivered <= 0 {
		t.Errorf("flood delivered %d packets (%.0f pps), want some", r.Flood.DeliveredPackets, r.Flood.Delivered)
	}
	// 2 s at 20 ms: about 100 pings.
	if r.Ping.Sent < 50 || r.Ping.Received == 0 || r.Ping.Received > r.Ping.Sent {
		t.Errorf("ping: %d sent, %d answered; want 50 or more sent and some answered", r.Ping.Sent, r.Ping.Received)
	}
	if r.Ping.P50 <= 0 || r.Ping.P99 < r.Ping.P50 {
		t.Errorf("ping p50 %.0f µs, p99 %.0f µs", r.Ping.P50, r.Ping.P99)
	}
	t.Logf("kernel: ping p50 %.0f µs, p99 %.0f µs (%d/%d) under %.0f kpps", r.Ping.P50, r.Ping.P99,
		r.Ping.Received, r.Ping.Sent, r.Flood.Delivered/1e3)
	if _, err := FloodPing(l, l.NSName("nosuch"), src, dst, time.Second, 20*time.Millisecond); err == nil {
		t.Error("FloodPing from a namespace that does not exist: no error")
	}
}
