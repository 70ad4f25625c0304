package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Underlay and overlay addresses of the classic lab. All come from the
// documentation ranges (RFC 5737, RFC 3849) and 172.16.220.0/22.
var (
	// HostNames are the hosts' names, in order.
	HostNames = []string{"blue", "green"}
	// underlay4 and underlay6 are the hosts' underlay addresses.
	underlay4 = []string{"172.16.220.2/24", "172.16.220.3/24"}
	underlay6 = []string{"2001:db8:220::2/64", "2001:db8:220::3/64"}
	// svi4 and svi6 are the hosts' SVI addresses on VLAN 7.
	svi4 = []string{"192.0.2.220/24", "192.0.2.221/24"}
	svi6 = []string{"2001:db8:7::220/64", "2001:db8:7::221/64"}
)

// VLAN is the overlay VLAN of the lab; the tunnel carries it as VNI 7.
const VLAN = 7

// UnderlayIf is the name of each host's underlay interface.
const UnderlayIf = "underlay"

// Options describe a lab topology. The zero value is the classic
// two-host lab with one container per host at MTU 1500.
type Options struct {
	// Hosts is 2 (blue and green joined by the underlay) or 1 (blue only,
	// the "local" variant: no underlay). 0 means 2.
	Hosts int
	// Containers per host; 0 means 1.
	Containers int
	// IPv6Underlay puts 2001:db8:220::2/64 and ::3 on the underlay
	// instead of 172.16.220.2/24 and .3.
	IPv6Underlay bool
	// UnderlayMTU of the underlay veth; 0 means 9100 (room for a 9000
	// overlay MTU plus 50 or 70 bytes of VXLAN over IPv4 or IPv6).
	UnderlayMTU int
	// MTU of the overlay: containers' interfaces and the switch's ports.
	// 0 means 1500.
	MTU int
	// ContainerVeths makes a veth pair per container, "cN" in the host
	// namespace and "eth0" in the container, addressed by the lab (kernel
	// bridge and Open vSwitch). Without it the lab only creates the
	// container namespaces and the switch provides the interface
	// (vxswitch internal ports with netns:).
	ContainerVeths bool
	// Octet numbers containers: the last byte of 192.0.2.X/24 and the
	// last group of 2001:db8:7::X/64 (written in decimal digits) of
	// container idx on host h. nil means BenchOctet.
	Octet func(h, idx int) int
}

// BenchOctet numbers containers 101, 102, ... across all hosts: with one
// container per host, blue-c0 is 192.0.2.101 and green-c0 192.0.2.102.
func BenchOctet(perHost int) func(h, idx int) int {
	return func(h, idx int) int { return 101 + h*perHost + idx }
}

// DemoOctet numbers containers 11, 12 on blue and 21, 22 on green.
func DemoOctet(h, idx int) int { return 10*(h+1) + idx + 1 }

func (o Options) withDefaults() Options {
	if o.Hosts == 0 {
		o.Hosts = 2
	}
	if o.Containers == 0 {
		o.Containers = 1
	}
	if o.UnderlayMTU == 0 {
		o.UnderlayMTU = 9100
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.Octet == nil {
		o.Octet = BenchOctet(o.Containers)
	}
	return o
}

// A Topo is a built topology: the hosts, each with its containers.
type Topo struct {
	Lab   *Lab
	Opts  Options // with defaults filled in
	Hosts []*Host
}

// A Host is one host namespace, where the switch under test runs.
type Host struct {
	Name     string       // "blue" or "green"
	NS       string       // namespace name
	Index    int          // 0 for blue, 1 for green
	Underlay netip.Prefix // underlay address (invalid in the local variant)
	Peers    []netip.Addr // the other hosts' underlay addresses
	SVI4     netip.Prefix // the host's SVI address on VLAN 7 (192.0.2.220/24, .221)
	SVI6     netip.Prefix
	// Containers on this host.
	Containers []*Container
}

// A Container is one container namespace on a host.
type Container struct {
	Name   string // "c0", "c1", ...: also the switch's port name
	Host   *Host
	NS     string // namespace name, "<prefix>-<host>-<name>"
	IfName string // the interface inside the container: "eth0" (veth) or Name (internal port)
	Addr4  netip.Prefix
	Addr6  netip.Prefix

	lab *Lab
}

// TwoHosts builds the classic lab: host namespaces "blue" and "green"
// joined by an underlay veth ("underlay" on both sides, 172.16.220.2/24
// and .3 or 2001:db8:220::2/64 and ::3, MTU 9100), and o.Containers
// container namespaces per host ("<prefix>-blue-c0", ...). With
// o.ContainerVeths each container also gets a veth to its host. No switch
// is started: a Contender does that.
func TwoHosts(l *Lab, o Options) (*Topo, error) {
	o = o.withDefaults()
	if o.Hosts < 1 || o.Hosts > len(HostNames) {
		return nil, fmt.Errorf("lab: %d hosts: want 1 or 2", o.Hosts)
	}
	t := &Topo{Lab: l, Opts: o}
	for h := range o.Hosts {
		ns, err := l.NS(HostNames[h])
		if err != nil {
			return nil, err
		}
		host := &Host{
			Name:  HostNames[h],
			NS:    ns,
			Index: h,
			SVI4:  netip.MustParsePrefix(svi4[h]),
			SVI6:  netip.MustParsePrefix(svi6[h]),
		}
		if o.Hosts > 1 {
			ul := underlay4
			if o.IPv6Underlay {
				ul = underlay6
			}
			host.Underlay = netip.MustParsePrefix(ul[h])
			for p := range o.Hosts {
				if p != h {
					host.Peers = append(host.Peers, netip.MustParsePrefix(ul[p]).Addr())
				}
			}
		}
		t.Hosts = append(t.Hosts, host)
	}
	if o.Hosts == 2 {
		a, b := t.Hosts[0], t.Hosts[1]
		if err := l.Veth(a.NS, UnderlayIf, b.NS, UnderlayIf, o.UnderlayMTU); err != nil {
			return nil, err
		}
		for _, h := range t.Hosts {
			if err := l.Addr(h.NS, UnderlayIf, h.Underlay.String()); err != nil {
				return nil, err
			}
			if err := l.Up(h.NS, UnderlayIf); err != nil {
				return nil, err
			}
		}
	}
	for _, h := range t.Hosts {
		for i := range o.Containers {
			c, err := t.addContainer(h, i)
			if err != nil {
				return nil, err
			}
			h.Containers = append(h.Containers, c)
		}
	}
	return t, nil
}

// OneHost builds the local variant: host "blue" alone, no underlay, with
// o.Containers containers (at least 2 are useful).
func OneHost(l *Lab, o Options) (*Topo, error) {
	o.Hosts = 1
	return TwoHosts(l, o)
}

func (t *Topo) addContainer(h *Host, i int) (*Container, error) {
	o, l := t.Opts, t.Lab
	name := fmt.Sprintf("c%d", i)
	ns, err := l.NS(h.Name + "-" + name)
	if err != nil {
		return nil, err
	}
	x := o.Octet(h.Index, i)
	c := &Container{
		Name:   name,
		Host:   h,
		NS:     ns,
		IfName: name,
		Addr4:  netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", x)),
		Addr6:  netip.MustParsePrefix(fmt.Sprintf("2001:db8:7::%d/64", x)),
		lab:    l,
	}
	if !o.ContainerVeths {
		return c, nil
	}
	c.IfName = "eth0"
	if err := l.Veth(h.NS, name, ns, c.IfName, o.MTU); err != nil {
		return nil, err
	}
	for _, a := range []netip.Prefix{c.Addr4, c.Addr6} {
		if err := l.Addr(ns, c.IfName, a.String()); err != nil {
			return nil, err
		}
	}
	if err := l.Up(ns, c.IfName); err != nil {
		return nil, err
	}
	return c, l.Up(h.NS, name)
}

// Containers returns every container, host by host.
func (t *Topo) Containers() []*Container {
	var out []*Container
	for _, h := range t.Hosts {
		out = append(out, h.Containers...)
	}
	return out
}

// Ping sends count pings from c to dst (1 s wait each) and returns the
// output; an error if any is lost. Extra arguments go before the address
// (e.g. "-M", "do", "-s", "8972").
func (c *Container) Ping(dst netip.Addr, count int, extra ...string) (string, error) {
	return PingFrom(c.lab, c.NS, dst, count, extra...)
}

// PingFrom sends count pings from namespace ns to dst, as Container.Ping.
func PingFrom(l *Lab, ns string, dst netip.Addr, count int, extra ...string) (string, error) {
	args := []string{"ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1"}
	args = append(args, extra...)
	return l.Exec(ns, append(args, dst.String())...)
}

// WaitConnected waits until the first container reaches every other
// container over IPv4 (one ping each, retried), which also fills ARP
// caches and the switches' FDBs. It fails after timeout.
func (t *Topo) WaitConnected(timeout time.Duration) error {
	all := t.Containers()
	if len(all) < 2 {
		return nil
	}
	src := all[0]
	deadline := time.Now().Add(timeout)
	for _, dst := range all[1:] {
		err := t.Lab.WaitFor(func() error {
			_, err := t.Lab.Exec(src.NS, "ping", "-n", "-c", "1", "-W", "1", dst.Addr4.Addr().String())
			return err
		}, time.Until(deadline))
		if err != nil {
			return fmt.Errorf("%s cannot reach %s (%s): %w", src, dst, dst.Addr4.Addr(), err)
		}
	}
	return nil
}

// String names the container as "blue-c0".
func (c *Container) String() string { return c.Host.Name + "-" + c.Name }

// Describe returns a few lines that say what the topology is.
func (t *Topo) Describe() string {
	var b strings.Builder
	for _, h := range t.Hosts {
		fmt.Fprintf(&b, "host %s: namespace %s", h.Name, h.NS)
		if h.Underlay.IsValid() {
			fmt.Fprintf(&b, ", underlay %s %s (MTU %d)", UnderlayIf, h.Underlay, t.Opts.UnderlayMTU)
		}
		b.WriteString("\n")
		for _, c := range h.Containers {
			fmt.Fprintf(&b, "  container %s: namespace %s, %s %s %s (MTU %d)\n", c, c.NS, c.IfName, c.Addr4, c.Addr6, t.Opts.MTU)
		}
	}
	return b.String()
}
