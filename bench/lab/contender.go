package lab

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A Contender is a switch under test: it provides VLAN 7 between the
// containers of a Topo, across the VXLAN tunnel (VNI 7, UDP 4789) when
// there are two hosts.
type Contender interface {
	// Name is the contender's short name: "vxswitch", "vxswitch-w2",
	// "kernel", "ovs".
	Name() string
	// Available returns why the contender cannot run on this machine
	// (a missing binary, say), or nil. It starts nothing.
	Available() error
	// ContainerVeths reports whether the lab must give containers veths
	// (Options.ContainerVeths) or the switch provides their interfaces.
	ContainerVeths() bool
	// Setup starts the switch on every host of t and configures its
	// ports; it returns once the switch is configured. Processes it
	// starts go through t.Lab.Start, so Close stops them.
	Setup(t *Topo) error
	// SwitchProcs returns, after Setup, the processes that do the
	// switching, for CPU accounting: vxswitch's agents, Open vSwitch's
	// ovs-vswitchd and ovsdb-server, on every host. It is nil for a
	// switch without a process of its own: the kernel bridge and vxlan
	// device work in the sender's and in softirq context.
	SwitchProcs() []*Proc
}

// Build checks that c is available, builds the topology o for it
// (TwoHosts, or OneHost when o.Hosts is 1), starts c and waits until the
// first container reaches every other one. Errors name the contender; an
// error from Available is an *UnavailableError.
func Build(l *Lab, c Contender, o Options) (*Topo, error) {
	if err := c.Available(); err != nil {
		return nil, &UnavailableError{Contender: c.Name(), Reason: err.Error()}
	}
	o.ContainerVeths = c.ContainerVeths()
	t, err := TwoHosts(l, o)
	if err != nil {
		return nil, fmt.Errorf("%s: build topology: %w", c.Name(), err)
	}
	if err := c.Setup(t); err != nil {
		return nil, fmt.Errorf("%s: set up: %w", c.Name(), err)
	}
	if err := t.WaitConnected(20 * time.Second); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name(), err)
	}
	return t, nil
}

// An UnavailableError says a contender cannot run here, and why.
type UnavailableError struct {
	Contender string
	Reason    string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s is not available here: %s", e.Contender, e.Reason)
}

// ContenderByName returns the named contender: "vxswitch" (needs the
// binary's path), "vxswitch-veth" (containers on veths as system ports),
// "vxswitch-wN" or "vxswitch-veth-wN" (N workers, 2-16: the agent's
// `workers: N`), "kernel", "ovs" or "ovs-tap" (containers on OVS
// internal ports, see OVS.TapContainers), each optionally with the
// suffix "-nooffload" (see NoOffload).
func ContenderByName(name, vxswitchBin string) (Contender, error) {
	base, nooff := strings.CutSuffix(name, "-nooffload")
	var c Contender
	switch {
	case base == "vxswitch":
		c = &VXSwitch{Binary: vxswitchBin}
	case strings.HasPrefix(base, "vxswitch-"):
		v, err := vxswitchVariant(base, vxswitchBin)
		if err != nil {
			return nil, fmt.Errorf("contender %q: %w", name, err)
		}
		c = v
	case base == "kernel":
		c = Kernel{}
	case base == "ovs":
		c = &OVS{}
	case base == "ovs-tap":
		c = &OVS{TapContainers: true}
	default:
		return nil, fmt.Errorf("unknown contender %q (want vxswitch, vxswitch-veth, vxswitch-wN, vxswitch-veth-wN, kernel, ovs or ovs-tap, optionally with -nooffload)", name)
	}
	if nooff {
		c = NoOffload{c}
	}
	return c, nil
}

// NoOffload wraps a contender and switches transmit checksum offload,
// TSO and GSO off on every container interface and, with veths, on their
// host ends, after Setup: frames then leave with finished checksums and
// at most MTU size. FACTS.md's Open vSwitch TCP numbers were taken with
// offloads off, because its userspace datapath stalls TCP with the
// default offloads (it forwards CHECKSUM_PARTIAL frames unfinished).
type NoOffload struct{ Contender }

// Name is the inner name plus "-nooffload".
func (n NoOffload) Name() string { return n.Contender.Name() + "-nooffload" }

// Setup runs the inner Setup, then turns offloads off.
func (n NoOffload) Setup(t *Topo) error {
	if err := n.Contender.Setup(t); err != nil {
		return err
	}
	for _, c := range t.Containers() {
		if err := c.waitIf(10 * time.Second); err != nil {
			return err
		}
		if err := OffloadsOff(t.Lab, c.NS, c.IfName); err != nil {
			return err
		}
		if t.Opts.ContainerVeths {
			if err := OffloadsOff(t.Lab, c.Host.NS, c.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// OffloadsOff switches transmit checksum offload, TSO and GSO off on
// ifname.
func OffloadsOff(l *Lab, ns, ifname string) error {
	_, err := l.Exec(ns, "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off")
	return err
}

// waitIf waits until the container's interface exists and is up.
func (c *Container) waitIf(timeout time.Duration) error {
	return c.lab.WaitFor(func() error {
		out, err := c.lab.Exec(c.NS, "ip", "-o", "link", "show", "dev", c.IfName)
		if err != nil {
			return err
		}
		if !strings.Contains(out, ",UP") && !strings.Contains(out, "<UP") {
			return fmt.Errorf("%s in %s is not up: %s", c.IfName, c.NS, out)
		}
		return nil
	}, timeout)
}

// PollWindow is the busy-poll window of the -poll variants: longer than
// the 10 ms between the benchmark's pings, so readers poll all through a
// ping run (and, at this window, all through any traffic: one core per
// busy reader).
const PollWindow = 20 * time.Millisecond

// vxswitchVariant parses "vxswitch-veth", "vxswitch-wN" and
// "vxswitch-veth-wN", each with an optional "-poll" and then "-pin".
func vxswitchVariant(base, bin string) (*VXSwitch, error) {
	v := &VXSwitch{Binary: bin}
	rest := strings.TrimPrefix(base, "vxswitch")
	pin := false
	if r, ok := strings.CutSuffix(rest, "-pin"); ok {
		pin, rest = true, r
	}
	if r, ok := strings.CutSuffix(rest, "-poll"); ok {
		v.BusyPoll, rest = PollWindow, r
	}
	if r, ok := strings.CutPrefix(rest, "-veth"); ok {
		v.Veths, rest = true, r
	}
	if r, ok := strings.CutPrefix(rest, "-w"); ok {
		n, err := strconv.Atoi(r)
		if err != nil || n < 2 || n > MaxWorkers || r != strconv.Itoa(n) {
			return nil, fmt.Errorf("want vxswitch[-veth]-wN with N workers, 2-%d", MaxWorkers)
		}
		v.Workers, rest = n, ""
	}
	if rest != "" {
		return nil, fmt.Errorf("want vxswitch, vxswitch-veth, vxswitch-wN or vxswitch-veth-wN, each optionally with -poll, then -pin")
	}
	if pin {
		cpus, err := PinCPUs(max(v.Workers, 1))
		if err != nil {
			return nil, err
		}
		v.CPUs = cpus
	}
	return v, nil
}

// PinCPUs is the `cpus:` of the -pin variants: the last n CPUs this
// process may use, so that every agent of the lab shares them and the
// first CPUs are left to the traffic's endpoints. Measured on 2 CPUs
// (bench/RESULTS.md): two agents on one CPU wake each other there
// instead of through an IPI to the other vCPU.
func PinCPUs(n int) (string, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "", fmt.Errorf("-pin: %w", err)
	}
	var cpus []int
	for c := 1023; c >= 0 && len(cpus) < n; c-- {
		if set.IsSet(c) {
			cpus = append([]int{c}, cpus...)
		}
	}
	if len(cpus) < n {
		return "", fmt.Errorf("-pin: %d CPUs wanted, this process may use %d", n, set.Count())
	}
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ","), nil
}
