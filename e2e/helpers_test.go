package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/control"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// vxBin is the vxswitch binary built once for the whole package.
var vxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vxswitch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vxBin = filepath.Join(dir, "vxswitch")
	if out, err := exec.Command("go", "build", "-race", "-o", vxBin, "../cmd/vxswitch").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build vxswitch: %v\n%s", err, out)
		os.Exit(1)
	}
	// A race-built program sleeps 1 s before it exits (GORACE
	// atexit_sleep_ms, default 1000), which every CLI call would pay.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is one running `vxswitch agent` in a namespace of a lab.
type agent struct {
	l    *lab.Lab
	ns   string
	sock string
	proc *lab.Proc
}

// startAgent writes cfg (with SOCKET replaced by the agent's socket path)
// and runs the agent in ns, waiting until its API answers.
func startAgent(t *testing.T, l *lab.Lab, ns, name, cfg string) *agent {
	t.Helper()
	a := &agent{l: l, ns: ns, sock: filepath.Join(l.Dir, name+".sock")}
	path := filepath.Join(l.Dir, name+".yaml")
	cfg = strings.ReplaceAll(cfg, "SOCKET", a.sock)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := l.Start(ns, vxBin, "agent", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	a.proc = p
	err = l.WaitFor(func() error {
		_, err := a.run("show")
		return err
	}, 20*time.Second)
	if err != nil {
		t.Fatalf("agent %s did not come up: %v\n%s", name, err, readFile(p.Log))
	}
	return a
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// run runs a CLI command against the agent.
func (a *agent) run(args ...string) (string, error) {
	out, err := exec.Command(vxBin, append([]string{"--socket", a.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vxswitch %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (a *agent) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := a.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (a *agent) fdb(t *testing.T, args ...string) []control.FDBEntry {
	t.Helper()
	var es []control.FDBEntry
	out := a.cli(t, append([]string{"fdb", "show", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("fdb show --json: %v\n%s", err, out)
	}
	return es
}

func (a *agent) stats(t *testing.T) control.StatsReply {
	t.Helper()
	var s control.StatsReply
	out := a.cli(t, "stats", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	return s
}

// drops returns a port's drop counter for reason.
func (a *agent) drops(t *testing.T, port, reason string) uint64 {
	t.Helper()
	for _, p := range a.stats(t).Ports {
		if p.Name == port {
			return p.Drops[reason]
		}
	}
	t.Fatalf("stats: no port %q", port)
	return 0
}

func (a *agent) txPackets(t *testing.T, port string) uint64 {
	t.Helper()
	for _, p := range a.stats(t).Ports {
		if p.Name == port {
			return p.TxPackets
		}
	}
	t.Fatalf("stats: no port %q", port)
	return 0
}

func (a *agent) portState(t *testing.T, port string) string {
	t.Helper()
	var s control.ShowReply
	out := a.cli(t, "show", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	for _, p := range s.Ports {
		if p.Name == port {
			return p.State
		}
	}
	return "absent"
}

// ping pings dst from ns with extra args; a few tries absorb the first
// ARP exchange.
func ping(l *lab.Lab, ns, dst string, extra ...string) error {
	args := append([]string{"ping", "-c", "2", "-i", "0.2", "-W", "2"}, extra...)
	args = append(args, dst)
	var err error
	for try := 0; try < 3; try++ {
		if _, err = l.Exec(ns, args...); err == nil {
			return nil
		}
	}
	return err
}

// macOf reads an interface's MAC inside a namespace.
func macOf(t *testing.T, l *lab.Lab, ns, ifname string) string {
	t.Helper()
	out, err := l.Exec(ns, "cat", "/sys/class/net/"+ifname+"/address")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func sysCounter(t *testing.T, l *lab.Lab, ns, ifname, name string) string {
	t.Helper()
	out, err := l.Exec(ns, "cat", "/sys/class/net/"+ifname+"/statistics/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// inNS runs fn on a fresh OS thread switched into namespace name. Sockets
// and fds opened by fn stay bound to that namespace. If switching back
// fails the thread is left locked, so it dies with the goroutine.
func inNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("switch back: %w", err)
			return // thread stays locked and dies
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// quietNS makes a lab namespace with IPv6 off, so that no router
// solicitations or MLD reports refresh FDB entries behind the test's back.
func quietNS(t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	ns, err := l.NS(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
	return ns
}

func requireRoot(t *testing.T) { testutil.RequireRoot(t) }

type controlFDB = control.FDBEntry
