package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/control"
)

// The gossip lab's underlay: one /24 on a Linux bridge, MTU 1600 so that
// the overlay's 1500 plus 50 bytes of VXLAN fits.
const (
	gossipUnderlayMTU = 1600
	gossipSeed        = "172.16.220.11:7947"
)

// newGossipUnderlay makes the "switch" namespace with bridge br0, to which
// attachGossipUnderlay connects hosts.
func newGossipUnderlay(t *testing.T, l *lab.Lab) string {
	t.Helper()
	sw := quietNS(t, l, "sw")
	for _, args := range [][]string{
		{"ip", "link", "add", "br0", "mtu", fmt.Sprint(gossipUnderlayMTU), "type", "bridge"},
		{"ip", "link", "set", "br0", "up"},
	} {
		if _, err := l.Exec(sw, args...); err != nil {
			t.Fatal(err)
		}
	}
	return sw
}

// attachGossipUnderlay connects ns's eth0 (with addr/24) to the bridge in sw
// through a veth whose bridge end is port.
func attachGossipUnderlay(t *testing.T, l *lab.Lab, sw, ns, port, addr string) {
	t.Helper()
	if err := l.Veth(ns, "eth0", sw, port, gossipUnderlayMTU); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(sw, "ip", "link", "set", port, "master", "br0", "up"); err != nil {
		t.Fatal(err)
	}
	if err := l.Addr(ns, "eth0", addr+"/24"); err != nil {
		t.Fatal(err)
	}
	if err := l.Up(ns, "eth0"); err != nil {
		t.Fatal(err)
	}
}

// writeGossipKey writes 32 random bytes, base64, to a file in the lab's
// directory and returns its path.
func writeGossipKey(t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	path := filepath.Join(l.Dir, name)
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// gossipHost is one host of the gossip lab: a namespace on the underlay
// running an agent, with a container namespace behind an internal port on
// VLAN 7.
type gossipHost struct {
	l      *lab.Lab
	name   string // h1..h4; also the bridge name, which makes the node names differ (the namespaces share one hostname)
	ns, c  string // host and container namespaces
	port   string // the container's interface (the internal port)
	vtep   string // underlay address
	cIP    string // the container's address
	key    string // gossip key file
	accept string // vxlan.accept; empty for the default
	member string // gossip.name; empty for the default (hostname-bridge)
	a      *agent // set by start
}

// newGossipHost makes host number n (1..9): namespace hN at 172.16.220.1N
// and its container cN at 192.0.2.3N.
func newGossipHost(t *testing.T, l *lab.Lab, sw string, n int, key string) *gossipHost {
	t.Helper()
	h := &gossipHost{
		l:    l,
		name: fmt.Sprintf("h%d", n),
		port: fmt.Sprintf("c%d", n),
		vtep: fmt.Sprintf("172.16.220.%d", 10+n),
		cIP:  fmt.Sprintf("192.0.2.%d", 30+n),
		key:  key,
	}
	h.ns = quietNS(t, l, h.name)
	h.c = quietNS(t, l, h.port)
	attachGossipUnderlay(t, l, sw, h.ns, "p"+fmt.Sprint(n), h.vtep)
	return h
}

// start starts (or restarts, with the same configuration) h's agent.
func (h *gossipHost) start(t *testing.T) {
	t.Helper()
	accept := ""
	if h.accept != "" {
		accept = "\n  accept: " + h.accept
	}
	member := ""
	if h.member != "" {
		member = "\n  name: " + h.member
	}
	cfg := fmt.Sprintf(`bridge: %s
mtu: 1500
ports:
  - {name: %s, type: internal, tag: 7, netns: %s, addresses: [%s/24]}
vxlan:
  local: %s%s
gossip:
  bind: %s:7947
  join: [%s]
  key-file: %s%s
control:
  socket: SOCKET
`, h.name, h.port, lab.NSPath(h.c), h.cIP, h.vtep, accept, h.vtep, gossipSeed, h.key, member)
	h.a = startAgent(t, h.l, h.ns, h.name, cfg)
}

// kill kills h's agent with SIGKILL, as a crash would: no leave. The
// lab runs it through `ip netns exec`, which execs it, so the lab's process
// is the agent itself; that is checked against the namespace's processes.
func (h *gossipHost) kill(t *testing.T) {
	t.Helper()
	l := h.l
	pid := h.a.proc.Pid()
	out, err := l.Exec("", "ip", "netns", "pids", h.ns)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(out), strconv.Itoa(pid)) {
		t.Fatalf("agent pid %d not among %s's processes %q", pid, h.ns, out)
	}
	if comm := strings.TrimSpace(readFile(fmt.Sprintf("/proc/%d/comm", pid))); comm != "vxswitch" {
		t.Fatalf("pid %d in %s is %q, not the agent", pid, h.ns, comm)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.a.proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s's agent (pid %d) still running 10s after SIGKILL", h.name, pid)
	}
	if out, _ := l.Exec("", "ip", "netns", "pids", h.ns); strings.TrimSpace(out) != "" {
		t.Fatalf("processes left in %s after killing the agent: %q", h.ns, out)
	}
}

// members returns h's `members --json`, parsed and as printed.
func (h *gossipHost) members() ([]control.MemberInfo, string, error) {
	out, err := h.a.run("members", "--json")
	if err != nil {
		return nil, out, err
	}
	var ms []control.MemberInfo
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return nil, out, fmt.Errorf("members --json: %v\n%s", err, out)
	}
	return ms, out, nil
}

// membersAre checks h's `members --json` against want (VTEP address ->
// state), exactly: no member missing, none extra.
func (h *gossipHost) membersAre(want map[string]string) error {
	ms, out, err := h.members()
	if err != nil {
		return err
	}
	got := make(map[string]string, len(ms))
	for _, m := range ms {
		if _, dup := got[m.Address]; dup {
			return fmt.Errorf("members: address %s twice: %s", m.Address, out)
		}
		got[m.Address] = m.State
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("members (VTEP: state) = %v, want %v", got, want)
	}
	return nil
}

// memberVNIs checks that h's `members --json` shows the member at VTEP
// address vtep serving exactly the VNIs want.
func (h *gossipHost) memberVNIs(vtep string, want []uint32) error {
	ms, out, err := h.members()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Address == vtep {
			if !slices.Equal(m.VNIs, want) {
				return fmt.Errorf("member %s has VNIs %v, want %v", vtep, m.VNIs, want)
			}
			return nil
		}
	}
	return fmt.Errorf("no member %s in %s", vtep, out)
}

// waitGossipHosts polls cond on every host at once (their CLI calls can take
// seconds each on a loaded machine) until it holds on all of them, and
// fails the test if it does not within timeout. A host whose agent died
// fails it at once.
func waitGossipHosts(t *testing.T, hosts []*gossipHost, timeout time.Duration, cond func(*gossipHost) error) {
	t.Helper()
	err := hosts[0].l.WaitFor(func() error {
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Go(func() {
				err := h.a.proc.Alive()
				if err == nil {
					err = cond(h)
				}
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", h.name, err)
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}, timeout)
	if err != nil {
		t.Fatal(err)
	}
}

// waitPing polls single pings from h's container to dst until one answers.
func (h *gossipHost) waitPing(dst string, timeout time.Duration) error {
	return h.l.WaitFor(func() error {
		_, err := h.l.Exec(h.c, "ping", "-c", "1", "-W", "1", dst)
		return err
	}, timeout)
}

// fdbHas reports whether h's agent's FDB holds mac (on any VLAN and port).
func (h *gossipHost) fdbHas(mac string) (bool, error) {
	out, err := h.a.run("fdb", "show", "--json")
	if err != nil {
		return false, err
	}
	var es []control.FDBEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		return false, fmt.Errorf("fdb show --json: %v\n%s", err, out)
	}
	for _, e := range es {
		if strings.EqualFold(e.MAC, mac) {
			return true, nil
		}
	}
	return false, nil
}

// hasMAC is fdbHas for the test's own goroutine.
func (h *gossipHost) hasMAC(t *testing.T, mac string) bool {
	t.Helper()
	has, err := h.fdbHas(mac)
	if err != nil {
		t.Fatal(err)
	}
	return has
}

// vtepSources returns h's `show --json`'s VTEPs as address -> source.
func (h *gossipHost) vtepSources(t *testing.T) map[string]string {
	t.Helper()
	var s control.ShowReply
	out := h.a.cli(t, "show", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	got := make(map[string]string, len(s.VTEPs))
	for _, v := range s.VTEPs {
		got[v.Address] = v.Source
	}
	return got
}

// tunnelDrops returns h's tunnel's drop counter for reason.
func (h *gossipHost) tunnelDrops(t *testing.T, reason string) uint64 {
	t.Helper()
	s := h.a.stats(t)
	if s.Tunnel == nil {
		t.Fatal("stats --json: no tunnel counters")
	}
	return s.Tunnel.Drops[reason]
}

// logLine returns the first line of h's agent log that contains every one
// of subs, or "".
func (h *gossipHost) logLine(subs ...string) string {
	for line := range strings.Lines(readFile(h.a.proc.Log)) {
		found := true
		for _, s := range subs {
			found = found && strings.Contains(line, s)
		}
		if found {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
