package lab_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/internal/testutil"
)

// handTopo is the classic lab's blue host as a Topo value, built by hand
// (nothing is created), for tests of the config text.
func handTopo() (*lab.Topo, *lab.Host) {
	h := &lab.Host{
		Name:     "blue",
		NS:       "vxb1-blue",
		Underlay: netip.MustParsePrefix("172.16.220.2/24"),
		Peers:    []netip.Addr{netip.MustParseAddr("172.16.220.3")},
		SVI4:     netip.MustParsePrefix("192.0.2.220/24"),
		SVI6:     netip.MustParsePrefix("2001:db8:7::220/64"),
	}
	h.Containers = []*lab.Container{{
		Name: "c0", Host: h, NS: "vxb1-blue-c0", IfName: "c0",
		Addr4: netip.MustParsePrefix("192.0.2.101/24"),
		Addr6: netip.MustParsePrefix("2001:db8:7::101/64"),
	}}
	return &lab.Topo{Lab: &lab.Lab{Dir: "/tmp/vxb1"}, Opts: lab.Options{MTU: 1500}, Hosts: []*lab.Host{h}}, h
}

const oneWorkerConfig = `bridge: blue
mtu: 1500
ports:
  - name: sw-vlan7
    type: internal
    tag: 7
    addresses: [192.0.2.220/24, 2001:db8:7::220/64]
  - name: c0
    type: internal
    tag: 7
    netns: /run/netns/vxb1-blue-c0
    addresses: [192.0.2.101/24, 2001:db8:7::101/64]
vxlan:
  local: 172.16.220.2
  port: 4789
  vni: {7: 7}
  remotes: [172.16.220.3]
control:
  socket: /tmp/vxb1/blue.sock
`

// TestVXSwitchConfigWorkers checks the config text: no workers key for
// 0 or 1 worker (an agent without the key still starts), `workers: N`
// as a top-level key otherwise.
func TestVXSwitchConfigWorkers(t *testing.T) {
	top, h := handTopo()
	if got := lab.Config(top, h); got != oneWorkerConfig {
		t.Errorf("Config:\n%s\nwant:\n%s", got, oneWorkerConfig)
	}
	for _, w := range []int{0, 1} {
		if got := (&lab.VXSwitch{Workers: w}).Config(top, h); got != oneWorkerConfig {
			t.Errorf("Workers %d: config:\n%s\nwant:\n%s", w, got, oneWorkerConfig)
		}
	}
	want := strings.Replace(oneWorkerConfig, "mtu: 1500\n", "mtu: 1500\nworkers: 2\n", 1)
	if got := (&lab.VXSwitch{Workers: 2}).Config(top, h); got != want {
		t.Errorf("Workers 2: config:\n%s\nwant:\n%s", got, want)
	}
	want = strings.Replace(oneWorkerConfig, "mtu: 1500\n", "mtu: 1500\nbusy-poll: 20ms\n", 1)
	if got := (&lab.VXSwitch{BusyPoll: lab.PollWindow}).Config(top, h); got != want {
		t.Errorf("BusyPoll: config:\n%s\nwant:\n%s", got, want)
	}
	want = strings.Replace(oneWorkerConfig, "ports:\n", "cpus: \"1\"\nports:\n", 1)
	if got := (&lab.VXSwitch{CPUs: "1"}).Config(top, h); got != want {
		t.Errorf("CPUs: config:\n%s\nwant:\n%s", got, want)
	}
}

func TestContenderByName(t *testing.T) {
	tests := []struct {
		name, wantName string
		workers        int
	}{
		{"vxswitch", "vxswitch", 0},
		{"vxswitch-w2", "vxswitch-w2", 2},
		{"vxswitch-w16", "vxswitch-w16", 16},
		{"vxswitch-w2-nooffload", "vxswitch-w2-nooffload", 2},
		{"vxswitch-veth", "vxswitch-veth", 0},
		{"vxswitch-veth-w2-poll", "vxswitch-veth-w2-poll", 2},
		{"vxswitch-poll", "vxswitch-poll", 0},
		{"vxswitch-pin", "vxswitch-pin", 0},
		{"vxswitch-veth-w2-poll-pin", "vxswitch-veth-w2-poll-pin", 2},
		{"kernel", "kernel", 0},
		{"ovs-nooffload", "ovs-nooffload", 0},
		{"ovs-tap", "ovs-tap", 0},
	}
	for _, tt := range tests {
		c, err := lab.ContenderByName(tt.name, "/bin/true")
		if err != nil {
			t.Errorf("ContenderByName(%q): %v", tt.name, err)
			continue
		}
		if c.Name() != tt.wantName {
			t.Errorf("ContenderByName(%q).Name() = %q", tt.name, c.Name())
		}
		if n, ok := c.(lab.NoOffload); ok {
			c = n.Contender
		}
		if vx, ok := c.(*lab.VXSwitch); ok && vx.Workers != tt.workers {
			t.Errorf("ContenderByName(%q): %d workers, want %d", tt.name, vx.Workers, tt.workers)
		}
		if vx, ok := c.(*lab.VXSwitch); ok && (vx.CPUs != "") != strings.HasSuffix(tt.name, "-pin") {
			t.Errorf("ContenderByName(%q): CPUs %q", tt.name, vx.CPUs)
		}
	}
	for _, bad := range []string{"vxswitch-w1", "vxswitch-w17", "vxswitch-w02", "vxswitch-wx", "vxswitch-w", "bridge", "vxswitch-poll-w2", "vxswitch-w2-veth", "vxswitch-vet", "vxswitch-pin-poll", "vxswitch-pin-veth", "vxswitch-pin-pin"} {
		if _, err := lab.ContenderByName(bad, "/bin/true"); err == nil {
			t.Errorf("ContenderByName(%q) accepted", bad)
		}
	}
	// -pin takes the last CPUs this process may use, as many as workers.
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	last := 0
	for c := range 1024 {
		if set.IsSet(c) {
			last = c
		}
	}
	if got, err := lab.PinCPUs(1); err != nil || got != strconv.Itoa(last) {
		t.Errorf("PinCPUs(1) = %q, %v; want %d", got, err, last)
	}
	if got, err := lab.PinCPUs(set.Count() + 1); err == nil {
		t.Errorf("PinCPUs(%d) = %q on %d CPUs, want an error", set.Count()+1, got, set.Count())
	}
	if ps := (lab.Kernel{}).SwitchProcs(); ps != nil {
		t.Errorf("Kernel.SwitchProcs = %v, want nil (no process of its own)", ps)
	}
}

// TestVXSwitchWorkersStartsOrSaysWhy starts the one-host lab with two
// workers. An agent that knows `workers:` must come up; one that does not
// yet must fail to start with an error whose first line names the key,
// which is what vxbench records as the contender's reason.
func TestVXSwitchWorkersStartsOrSaysWhy(t *testing.T) {
	testutil.RequireRoot(t)
	vx := &lab.VXSwitch{Binary: vxswitchBinary(t), Workers: 2}
	l := lab.ForTest(t)
	top, err := lab.Build(l, vx, lab.Options{Hosts: 1, Containers: 2})
	if err == nil {
		if ps := vx.SwitchProcs(); len(ps) != 1 || ps[0] != vx.Agent(top.Hosts[0]) {
			t.Errorf("SwitchProcs = %v, want blue's agent", ps)
		}
		t.Logf("the agent accepts workers: 2")
		return
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	if !strings.Contains(first, "agent exited at start") || !strings.Contains(first, "workers") {
		t.Errorf("start failure's first line does not say why: %q\nfull error: %v", first, err)
	}
	t.Logf("the agent does not know workers yet: %s", first)
}
