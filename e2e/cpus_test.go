package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/control"
)

// TestCPUs runs the agent with cpus: set to this machine's last CPU:
// every thread of the agent runs only there, show says so, and the
// switch forwards as usual. A CPU the agent may not use stops it at start
// with an error that says which it may.
func TestCPUs(t *testing.T) {
	requireRoot(t)
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	last := -1
	for c := range 1024 {
		if allowed.IsSet(c) {
			last = c
		}
	}
	l, h, c0, s0 := internalAndSystemLab(t)
	a := startAgent(t, l, h, "cpus", internalAndSystemConfig("cpus", fmt.Sprintf("cpus: %d", last), c0))

	if err := ping(l, c0, "192.0.2.20"); err != nil {
		t.Errorf("c0 -> s0: %v", err)
	}
	if err := ping(l, s0, "192.0.2.10"); err != nil {
		t.Errorf("s0 -> c0: %v", err)
	}
	pid := a.proc.Pid()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("agent threads: %v (%d)", err, len(tasks))
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // exited
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) != fmt.Sprint(last) {
				t.Errorf("agent thread %s may run on CPUs %s, want %d only", task.Name(), strings.TrimSpace(v), last)
			}
		}
	}
	var show control.ShowReply
	if err := json.Unmarshal([]byte(a.cli(t, "show", "--json")), &show); err != nil || show.CPUs != fmt.Sprint(last) {
		t.Errorf("show --json: cpus %q (%v), want %d", show.CPUs, err, last)
	}
	if out := a.cli(t, "show"); !strings.HasPrefix(out, fmt.Sprintf("Bridge cpus, CPUs %d\n", last)) {
		t.Errorf("show:\n%s", out)
	}
	a.proc.Stop()

	// The kernel's CPU sets stop at 1023 here too, so 1023 is never one
	// this machine's agent may use.
	bad := internalAndSystemConfig("cpus", "cpus: 1023", c0)
	path := l.Dir + "/bad.yaml"
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(bad, "SOCKET", l.Dir+"/bad.sock")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := l.Exec(h, vxBin, "agent", "--config", path)
	if err == nil || !strings.Contains(out, "cpus: CPU 1023 is not one this process may run on") {
		t.Errorf("agent with cpus: 1023: want an error naming the CPU, got %v:\n%s", err, out)
	}
}
