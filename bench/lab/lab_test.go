package lab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// rootLinks lists the interface names of the root namespace.
func rootLinks(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			names = append(names, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	slices.Sort(names)
	return names
}

// namespacesWith lists `ip netns list` entries that start with prefix.
func namespacesWith(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			left = append(left, f[0])
		}
	}
	return left
}

// labIfNames are the interface names a lab uses. Other packages' tests
// may add and remove root interfaces concurrently, so assertClean only
// looks for these.
var labIfNames = []string{lab.UnderlayIf, "c0", "c1", "eth0", "br0", "vx0", "br-phy", "br-int", "sw-vlan7"}

// assertClean fails unless no namespace of the lab is left and the root
// namespace has gained no interface with a lab's name.
func assertClean(t *testing.T, prefix string, before []string) {
	t.Helper()
	if left := namespacesWith(t, prefix); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	for _, name := range rootLinks(t) {
		if slices.Contains(labIfNames, name) && !slices.Contains(before, name) {
			t.Errorf("interface %s left behind in the root namespace", name)
		}
	}
}

// procComms returns /proc/PID/comm of each process.
func procComms(t *testing.T, ps []*lab.Proc) []string {
	t.Helper()
	var out []string
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid()))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

// TestKernelTwoHosts builds the classic lab with the kernel contender
// over an IPv4 and an IPv6 underlay, pings across the kernel vxlan tunnel
// (IPv4, IPv6, the SVI, a 1472-byte DF ping at MTU 1500) and checks that
// Close leaves nothing behind.
func TestKernelTwoHosts(t *testing.T) {
	testutil.RequireRoot(t)
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6-underlay=%v", v6), func(t *testing.T) {
			testKernelTwoHosts(t, v6)
		})
	}
}

func testKernelTwoHosts(t *testing.T, v6 bool) {
	before := rootLinks(t)
	l := lab.ForTest(t)
	top, err := lab.Build(l, lab.Kernel{}, lab.Options{IPv6Underlay: v6})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Hosts) != 2 || len(l.Namespaces()) != 4 {
		t.Fatalf("got %d hosts and namespaces %v, want 2 hosts and 4 namespaces", len(top.Hosts), l.Namespaces())
	}
	if got := top.Hosts[1].Underlay.Addr().Is6(); got != v6 {
		t.Fatalf("green's underlay %s, want IPv6 %v", top.Hosts[1].Underlay, v6)
	}
	blue, green := top.Hosts[0].Containers[0], top.Hosts[1].Containers[0]
	for _, dst := range []string{green.Addr4.Addr().String(), green.Addr6.Addr().String(), top.Hosts[1].SVI4.Addr().String()} {
		if out, err := l.Exec(blue.NS, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", dst); err != nil {
			t.Errorf("ping %s -> %s: %v\n%s", blue, dst, err, out)
		}
	}
	if out, err := blue.Ping(green.Addr4.Addr(), 1, "-M", "do", "-s", "1472"); err != nil {
		t.Errorf("DF ping at the overlay MTU: %v\n%s", err, out)
	}
	// Traffic really crossed the tunnel.
	out, err := l.Exec(top.Hosts[0].NS, "cat", "/sys/class/net/vx0/statistics/tx_packets")
	if n, _ := strconv.Atoi(strings.TrimSpace(out)); err != nil || n == 0 {
		t.Errorf("vx0 on blue sent %q packets (%v), want some", out, err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertClean(t, l.Prefix, before)
}

// TestTeardownOnFailure runs a test that fails midway (a subtest that
// started a background process, then calls t.Fatal) in a child process,
// and checks that its cleanup left no namespace, interface or process.
func TestTeardownOnFailure(t *testing.T) {
	testutil.RequireRoot(t)
	if os.Getenv("LAB_TEST_CHILD") != "" {
		t.Skip("child run")
	}
	before := rootLinks(t)
	prefix := lab.Prefix("vxf")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFailsMidway$", "-test.v")
	cmd.Env = append(os.Environ(), "LAB_TEST_CHILD="+prefix)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child test passed, want it to fail:\n%s", out)
	}
	if !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("child did not fail where expected:\n%s", out)
	}
	assertClean(t, prefix, before)
	// The sleep the child started must be gone too.
	if pids := processesWith("1234." + prefix[3:]); len(pids) > 0 {
		t.Errorf("process left behind: pids %v", pids)
	}
}

// processesWith returns the PIDs whose command line contains arg.
func processesWith(arg string) []string {
	ents, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), arg) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestFailsMidway is the child of TestTeardownOnFailure: it fails on
// purpose in a subtest, after building half a lab.
func TestFailsMidway(t *testing.T) {
	prefix := os.Getenv("LAB_TEST_CHILD")
	if prefix == "" {
		t.Skip("only runs as TestTeardownOnFailure's child")
	}
	t.Run("fails midway", func(t *testing.T) {
		l := lab.New(prefix)
		t.Cleanup(func() {
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		top, err := lab.TwoHosts(l, lab.Options{Containers: 2, ContainerVeths: true})
		if err != nil {
			t.Fatal(err)
		}
		// A long-running process inside a container namespace (the
		// unusual argument makes it findable by pgrep).
		if _, err := l.Start(top.Hosts[0].Containers[0].NS, "sleep", "1234."+prefix[3:]); err != nil {
			t.Fatal(err)
		}
		// One more namespace whose creation "fails": the test ends here.
		t.Fatal("failing on purpose with", len(l.Namespaces()), "namespaces up")
	})
}

// TestWaitForBounded checks that WaitFor returns the condition's last
// error after the timeout, and nil as soon as the condition holds.
func TestWaitForBounded(t *testing.T) {
	l := lab.New(lab.Prefix("vxw"))
	defer l.Close()
	start := time.Now()
	err := l.WaitFor(func() error { return os.ErrNotExist }, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), os.ErrNotExist.Error()) {
		t.Errorf("WaitFor = %v, want the condition's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitFor took %v for a 200ms timeout", d)
	}
	n := 0
	if err := l.WaitFor(func() error {
		if n++; n < 3 {
			return os.ErrNotExist
		}
		return nil
	}, 5*time.Second); err != nil {
		t.Errorf("WaitFor = %v, want nil", err)
	}
}

// TestClosedLab checks that a closed lab refuses work and that Close is
// idempotent.
func TestClosedLab(t *testing.T) {
	l := lab.New(lab.Prefix("vxc"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.NS("x"); err == nil {
		t.Error("NS on a closed lab succeeded")
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s still there after Close: %v", l.Dir, err)
	}
}

// TestOVSTwoHosts builds the classic lab with Open vSwitch's userspace
// datapath and pings across its VXLAN tunnel, with the containers on
// veths (ovs) and on OVS internal ports moved into their namespaces
// (ovs-tap).
func TestOVSTwoHosts(t *testing.T) {
	for _, c := range []*lab.OVS{{}, {TapContainers: true}} {
		t.Run(c.Name(), func(t *testing.T) { testOVSTwoHosts(t, c) })
	}
}

func testOVSTwoHosts(t *testing.T, c *lab.OVS) {
	testutil.RequireRoot(t)
	if err := c.Available(); err != nil {
		t.Skip(err)
	}
	before := rootLinks(t)
	l := lab.ForTest(t)
	top, err := lab.Build(l, c, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The PIDs are the daemons themselves (ip netns exec and env exec
	// them), so /proc/PID/stat is theirs: what vxbench charges CPU to.
	if names := procComms(t, c.SwitchProcs()); !slices.Equal(names, []string{"ovsdb-server", "ovs-vswitchd", "ovsdb-server", "ovs-vswitchd"}) {
		t.Errorf("SwitchProcs run %v, want each host's ovsdb-server and ovs-vswitchd", names)
	}
	blue, green := top.Hosts[0].Containers[0], top.Hosts[1].Containers[0]
	if c.TapContainers {
		// The container's interface is the OVS internal port, a TAP.
		out, err := l.Exec(blue.NS, "ip", "-d", "link", "show", "dev", blue.IfName)
		if err != nil || !strings.Contains(out, "tun type tap") {
			t.Errorf("%s in %s is not a TAP: %v\n%s", blue.IfName, blue.NS, err, out)
		}
	}
	for _, dst := range []string{green.Addr6.Addr().String(), top.Hosts[1].SVI4.Addr().String()} {
		if out, err := l.Exec(blue.NS, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", dst); err != nil {
			t.Errorf("ping %s -> %s: %v\n%s", blue, dst, err, out)
		}
	}
	if out, err := c.Appctl(top, top.Hosts[0], "fdb/show", "br-int"); err != nil || !strings.Contains(out, "    7  ") {
		t.Errorf("fdb/show br-int on blue: %v\n%s", err, out)
	} else {
		t.Logf("fdb/show br-int on blue:\n%s", out)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertClean(t, l.Prefix, before)
}

// vxswitchBinary returns the vxswitch binary to test: $VXSWITCH_BIN, or
// one built from this tree for the test (never a stale bin/vxswitch).
func vxswitchBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VXSWITCH_BIN"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "vxswitch")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/vxswitch/vxswitch/cmd/vxswitch").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/vxswitch: %v\n%s", err, out)
	}
	return bin
}

// TestVXSwitchTwoHosts builds the classic lab with vxswitch agents at MTU
// 9000, pings across the tunnel (IPv4, IPv6, SVI, a 9000-byte DF packet)
// and checks that `fdb show --json` on blue has green's container behind
// the tunnel.
func TestVXSwitchTwoHosts(t *testing.T) {
	testutil.RequireRoot(t)
	vx := &lab.VXSwitch{Binary: vxswitchBinary(t)}
	before := rootLinks(t)
	l := lab.ForTest(t)
	top, err := lab.Build(l, vx, lab.Options{MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if names := procComms(t, vx.SwitchProcs()); !slices.Equal(names, []string{"vxswitch", "vxswitch"}) {
		t.Errorf("SwitchProcs run %v, want both hosts' vxswitch agents", names)
	}
	blue, green := top.Hosts[0].Containers[0], top.Hosts[1].Containers[0]
	for _, dst := range []string{green.Addr6.Addr().String(), top.Hosts[1].SVI4.Addr().String()} {
		if out, err := l.Exec(blue.NS, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", dst); err != nil {
			t.Errorf("ping %s -> %s: %v\n%s", blue, dst, err, out)
		}
	}
	if out, err := blue.Ping(green.Addr4.Addr(), 2, "-M", "do", "-s", "8972"); err != nil {
		t.Errorf("9000-byte DF ping: %v\n%s", err, out)
	}
	out, err := vx.CLI(top, top.Hosts[0], "fdb", "show", "--json")
	if err != nil {
		t.Fatalf("fdb show --json: %v", err)
	}
	var fdb []struct {
		Port   string `json:"port"`
		VLAN   int    `json:"vlan"`
		MAC    string `json:"mac"`
		Remote string `json:"remote"`
	}
	if err := json.Unmarshal([]byte(out), &fdb); err != nil {
		t.Fatalf("fdb show --json: %v\n%s", err, out)
	}
	mac, err := l.Exec(green.NS, "cat", "/sys/class/net/"+green.IfName+"/address")
	if err != nil {
		t.Fatal(err)
	}
	mac = strings.TrimSpace(mac)
	found := false
	for _, e := range fdb {
		if strings.EqualFold(e.MAC, mac) {
			found = true
			if e.VLAN != lab.VLAN || e.Remote != top.Hosts[1].Underlay.Addr().String() {
				t.Errorf("blue's FDB entry for %s = %+v, want VLAN 7 behind remote %s", mac, e, top.Hosts[1].Underlay.Addr())
			}
		}
	}
	if !found {
		t.Errorf("blue's FDB lacks green-c0's MAC %s:\n%s", mac, out)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertClean(t, l.Prefix, before)
}

// TestSweepStale leaves namespaces named as a dead process's would be
// and checks that SweepStale removes them, but spares a live process's
// and a dead process's lab that still runs something (demo -keep).
func TestSweepStale(t *testing.T) {
	testutil.RequireRoot(t)
	deadPID := func() int {
		c := exec.Command("true")
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		return c.Process.Pid
	}
	stale := fmt.Sprintf("vxz%x-blue", deadPID())
	kept := fmt.Sprintf("vxz%x-blue", deadPID())
	keptC0 := strings.Replace(kept, "-blue", "-blue-c0", 1)
	live := lab.Prefix("vxz") + "-blue"
	for _, ns := range []string{stale, kept, keptC0, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	agent := exec.Command("ip", "netns", "exec", kept, "sleep", "60")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	gone := lab.SweepStale("vxz")
	if !slices.Equal(gone, []string{stale}) {
		t.Errorf("SweepStale removed %v, want [%s]", gone, stale)
	}
	want := []string{kept, keptC0, live}
	slices.Sort(want)
	left := namespacesWith(t, "vxz")
	slices.Sort(left)
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
