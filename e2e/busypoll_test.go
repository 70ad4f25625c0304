package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/measure"
)

// TestBusyPoll runs the agent with busy-poll on, an internal port (c0), a
// system port (s0) and a tunnel socket: ping works both ways while the
// readers poll, and once traffic stops they stop polling and park, so the
// idle agent uses next to no CPU (a reader that kept polling would burn a
// whole CPU second per second).
func TestBusyPoll(t *testing.T) {
	requireRoot(t)
	l, h, c0, s0 := internalAndSystemLab(t)
	const window = 50 * time.Millisecond
	a := startAgent(t, l, h, "bp", internalAndSystemConfig("bp", fmt.Sprintf("busy-poll: %v", window), c0))
	for _, p := range []struct{ from, to string }{{c0, "192.0.2.20"}, {s0, "192.0.2.10"}} {
		if out, err := l.Exec(p.from, "ping", "-n", "-q", "-c", "50", "-i", "0.01", "-W", "1", p.to); err != nil {
			t.Errorf("ping from %s to %s with busy polling: %v\n%s", p.from, p.to, err, out)
		}
	}
	idleCPU := func(when string) {
		t.Helper()
		time.Sleep(window + 200*time.Millisecond) // past the window: readers park
		before, err := measure.ProcCPU(a.proc.Pid())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		after, err := measure.ProcCPU(a.proc.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if used := after - before; used > 300*time.Millisecond {
			t.Errorf("idle agent used %v of CPU in 1 s %s: readers still polling", used, when)
		} else {
			t.Logf("idle agent used %v of CPU in 1 s %s", used, when)
		}
	}
	idleCPU("after traffic stopped")

	// Parked readers wake for traffic again, from either port.
	for _, p := range []struct{ from, to string }{{s0, "192.0.2.10"}, {c0, "192.0.2.20"}} {
		if out, err := l.Exec(p.from, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", p.to); err != nil {
			t.Errorf("ping from %s to %s after the switch was idle: %v\n%s", p.from, p.to, err, out)
		}
	}
	// A port deleted while its reader is parked goes at once, and the
	// switch goes idle again without it.
	time.Sleep(window + 100*time.Millisecond)
	done := make(chan error, 1)
	go func() { _, err := a.run("port", "del", "s0p"); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("port del s0p: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("port del s0p hangs with the switch idle and busy polling on")
	}
	idleCPU("after a port was deleted")
}
