package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// VXSwitch is the switch under test: one `vxswitch agent` per host, in
// the host namespace, configured by a YAML file in DESIGN.md's format.
// Every container is an internal port (tag 7) whose kernel side the agent
// moves into the container's namespace (netns: /run/netns/NAME) and
// addresses — or, with Veths, a veth the lab makes, attached as a system
// port, as LXD hands containers over and as the kernel and OVS contenders
// get them; sw-vlan7 is the host's SVI (internal, tag 7). VLAN 7 maps to
// VNI 7 over UDP 4789 to the other host (static remotes; no gossip).
type VXSwitch struct {
	// Binary is the path of the vxswitch binary.
	Binary string
	// Veths gives containers veths on system ports instead of internal
	// ports (the contender is then called vxswitch-veth).
	Veths bool
	// Workers, when above 1, is written to the config as `workers: N`:
	// readers per port (TAP queues, PACKET_FANOUT members, tunnel
	// sockets). 0 or 1 leaves the key out (the agent's default, one).
	Workers int
	// BusyPoll, when above 0, is written as `busy-poll:` (the contender
	// is then called vxswitch...-poll).
	BusyPoll time.Duration
	// CPUs, when set, is written as `cpus:` for every agent, so all of
	// them share those CPUs (the contender is then called vxswitch...-pin).
	CPUs string
	// StartTimeout bounds the wait for the agent's ports; 0 means 20 s.
	StartTimeout time.Duration

	agents map[string]*Proc // by host name
}

var _ Contender = (*VXSwitch)(nil)

// MaxWorkers is the largest `workers:` the agent accepts.
const MaxWorkers = 16

// Name returns "vxswitch", with "-veth" for Veths, "-wN" for N workers,
// "-poll" for BusyPoll and "-pin" for CPUs.
func (v *VXSwitch) Name() string {
	name := "vxswitch"
	if v.Veths {
		name += "-veth"
	}
	if v.Workers > 1 {
		name += fmt.Sprintf("-w%d", v.Workers)
	}
	if v.BusyPoll > 0 {
		name += "-poll"
	}
	if v.CPUs != "" {
		name += "-pin"
	}
	return name
}

// Available needs an executable Binary.
func (v *VXSwitch) Available() error {
	if v.Binary == "" {
		return fmt.Errorf("no vxswitch binary given (build one with `go build -o bin/vxswitch ./cmd/vxswitch` and pass its path)")
	}
	p, err := exec.LookPath(v.Binary)
	if err != nil {
		return fmt.Errorf("vxswitch binary: %w", err)
	}
	v.Binary, _ = filepath.Abs(p)
	return nil
}

// ContainerVeths is false unless Veths: the agent creates the containers'
// interfaces.
func (v *VXSwitch) ContainerVeths() bool { return v.Veths }

// ConfigPath is where Setup writes host h's config.
func ConfigPath(t *Topo, h *Host) string { return filepath.Join(t.Lab.Dir, h.Name+".yaml") }

// SocketPath is host h's agent control socket.
func SocketPath(t *Topo, h *Host) string { return filepath.Join(t.Lab.Dir, h.Name+".sock") }

// Config returns host h's agent config in DESIGN.md's YAML format, with
// one worker (no `workers:` key). VXSwitch.Config adds the workers.
func Config(t *Topo, h *Host) string { return config(t, h, 0) }

// Config returns host h's agent config for this contender: Config plus
// `workers: N` when Workers is above 1.
func (v *VXSwitch) Config(t *Topo, h *Host) string {
	c := config(t, h, v.Workers)
	if v.BusyPoll > 0 {
		c = strings.Replace(c, "ports:\n", fmt.Sprintf("busy-poll: %v\nports:\n", v.BusyPoll), 1)
	}
	if v.CPUs != "" {
		c = strings.Replace(c, "ports:\n", fmt.Sprintf("cpus: %q\nports:\n", v.CPUs), 1)
	}
	return c
}

func config(t *Topo, h *Host, workers int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge: %s\n", h.Name)
	fmt.Fprintf(&b, "mtu: %d\n", t.Opts.MTU)
	if workers > 1 {
		fmt.Fprintf(&b, "workers: %d\n", workers)
	}
	b.WriteString("ports:\n")
	fmt.Fprintf(&b, "  - name: sw-vlan7\n    type: internal\n    tag: %d\n    addresses: [%s, %s]\n", VLAN, h.SVI4, h.SVI6)
	for _, c := range h.Containers {
		if t.Opts.ContainerVeths {
			fmt.Fprintf(&b, "  - name: %s\n    type: system\n    tag: %d\n", c.Name, VLAN)
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    type: internal\n    tag: %d\n    netns: %s\n    addresses: [%s, %s]\n",
			c.Name, VLAN, NSPath(c.NS), c.Addr4, c.Addr6)
	}
	if h.Underlay.IsValid() {
		b.WriteString("vxlan:\n")
		fmt.Fprintf(&b, "  local: %s\n", h.Underlay.Addr())
		b.WriteString("  port: 4789\n")
		fmt.Fprintf(&b, "  vni: {%d: %d}\n", VLAN, VLAN)
		var rs []string
		for _, p := range h.Peers {
			rs = append(rs, yamlAddr(p))
		}
		fmt.Fprintf(&b, "  remotes: [%s]\n", strings.Join(rs, ", "))
	}
	b.WriteString("control:\n")
	fmt.Fprintf(&b, "  socket: %s\n", SocketPath(t, h))
	return b.String()
}

// yamlAddr quotes IPv6 addresses, whose colons YAML flow sequences could
// otherwise misread.
func yamlAddr(a netip.Addr) string {
	if a.Is6() {
		return `"` + a.String() + `"`
	}
	return a.String()
}

// Setup writes each host's config, starts the agents and waits until
// every port's interface is up with its addresses in place.
func (v *VXSwitch) Setup(t *Topo) error {
	l := t.Lab
	timeout := v.StartTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	v.agents = map[string]*Proc{}
	for _, h := range t.Hosts {
		path := ConfigPath(t, h)
		if err := os.WriteFile(path, []byte(v.Config(t, h)), 0o644); err != nil {
			return err
		}
		p, err := l.Start(h.NS, v.Binary, "agent", "--config", path)
		if err != nil {
			return err
		}
		v.agents[h.Name] = p
	}
	for _, h := range t.Hosts {
		p := v.agents[h.Name]
		ifs := []ifWant{{h.NS, "sw-vlan7", h.SVI4}}
		for _, c := range h.Containers {
			ifs = append(ifs, ifWant{c.NS, c.IfName, c.Addr4})
		}
		for _, w := range ifs {
			err := l.WaitFor(func() error {
				if err := p.Alive(); err != nil {
					return err
				}
				return w.check(l)
			}, timeout)
			if err != nil {
				if ok, _ := p.Exited(); ok {
					// Its last words (a config error names the key and
					// line) make the first line of the error.
					return fmt.Errorf("host %s: agent exited at start: %s\n%w", h.Name, lastLine(p.Tail(5)), err)
				}
				return fmt.Errorf("host %s: agent's port %s: %w", h.Name, w.ifname, err)
			}
		}
	}
	return nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// SwitchProcs returns the agents of every host, in host order (after
// Setup).
func (v *VXSwitch) SwitchProcs() []*Proc {
	var ps []*Proc
	for _, name := range HostNames {
		if p, ok := v.agents[name]; ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// Agent returns the agent process of host h (after Setup).
func (v *VXSwitch) Agent(h *Host) *Proc { return v.agents[h.Name] }

// CLI runs `vxswitch ARGS...` against host h's agent, in the host's
// namespace, with VXSWITCH_SOCKET pointing at its control socket.
func (v *VXSwitch) CLI(t *Topo, h *Host, args ...string) (string, error) {
	return t.Lab.Exec(h.NS, append([]string{"env", "VXSWITCH_SOCKET=" + SocketPath(t, h), v.Binary}, args...)...)
}

// ifWant is an interface that must be up in ns with addr on it.
type ifWant struct {
	ns, ifname string
	addr       netip.Prefix
}

func (w ifWant) check(l *Lab) error {
	out, err := l.Exec(w.ns, "ip", "-o", "addr", "show", "dev", w.ifname)
	if err != nil {
		return fmt.Errorf("no interface %s in %s yet", w.ifname, w.ns)
	}
	if !strings.Contains(out, " "+w.addr.String()+" ") {
		return fmt.Errorf("%s in %s has no address %s yet", w.ifname, w.ns, w.addr)
	}
	link, err := l.Exec(w.ns, "ip", "-o", "link", "show", "dev", w.ifname)
	if err != nil {
		return err
	}
	if !strings.Contains(link, "UP") {
		return fmt.Errorf("%s in %s is not up yet", w.ifname, w.ns)
	}
	return nil
}
