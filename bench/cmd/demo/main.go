// Command demo builds the classic two-tenant vxswitch lab in network
// namespaces, shows that it works, and tears it down: the program behind
// `make demo`.
//
//	go run ./bench/cmd/demo -vxswitch bin/vxswitch [-keep]
//
// Two hosts, blue and green, are joined by an underlay (172.16.220.2 and
// .3, MTU 9100). Each runs a vxswitch agent with an SVI sw-vlan7 on VLAN 7
// (192.0.2.220/24 and .221, MTU 9000) and two containers on VLAN 7
// (192.0.2.11 and .12 on blue, .21 and .22 on green, MTU 9000). The demo
// pings across the VXLAN tunnel, sends a 9000-byte packet with DF set,
// and shows both switches' FDBs. It prints every command and its output,
// exits 1 if any check fails, and tears the lab down on exit, on failure
// and on Ctrl-C; -keep leaves it running and says how to remove it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/vxswitch/vxswitch/bench/lab"
)

func main() {
	bin := flag.String("vxswitch", "", "path of the vxswitch binary (default: bin/vxswitch, then vxswitch on PATH)")
	keep := flag.Bool("keep", false, "leave the lab running at the end and print how to enter and remove it")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %v\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root: it creates network namespaces (try sudo)")
		os.Exit(1)
	}
	if *bin == "" {
		*bin = findBinary()
	}
	d := &demo{out: os.Stdout, keep: *keep}
	d.vx = &lab.VXSwitch{Binary: *bin}
	os.Exit(d.run())
}

func findBinary() string {
	if _, err := os.Stat("bin/vxswitch"); err == nil {
		return "bin/vxswitch"
	}
	if p, err := exec.LookPath("vxswitch"); err == nil {
		return p
	}
	return ""
}

type demo struct {
	out    io.Writer
	keep   bool
	vx     *lab.VXSwitch
	l      *lab.Lab
	top    *lab.Topo
	step   int
	checks int
	failed []string

	// interrupted is set by the signal handler, which then owns the
	// teardown and the exit; the main goroutine must stop reporting.
	interrupted atomic.Bool
}

const steps = 6

// say starts a step: a title and a line of plain explanation.
func (d *demo) say(title, explain string) {
	d.step++
	fmt.Fprintf(d.out, "\n== Step %d/%d: %s\n%s\n", d.step, steps, title, explain)
}

// indent writes every line with a four-space indent.
type indent struct{ w io.Writer }

func (i indent) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Fprint(i.w, "    "+line)
		}
	}
	return len(b), nil
}

func (d *demo) run() int {
	if err := d.vx.Available(); err != nil {
		fmt.Fprintf(d.out, "demo: %v\n", err)
		return 1
	}
	if gone := lab.SweepStale("vxd"); len(gone) > 0 {
		fmt.Fprintf(d.out, "demo: removed namespaces left by an earlier, killed demo: %v\n", gone)
	}
	d.l = lab.New(lab.Prefix("vxd"))
	d.l.Detach = d.keep
	d.l.Trace = indent{d.out}
	d.closeOnSignal()
	defer func() {
		if !d.keep || d.top == nil {
			d.teardown()
		}
	}()

	d.say("build two hosts and four containers",
		"Each host (blue, green) and each container is a network namespace. A veth pair named\n"+
			"\"underlay\" joins the hosts, as a cable would: blue is 172.16.220.2, green is .3, MTU 9100,\n"+
			"room for 9000-byte packets plus the 50 bytes VXLAN adds. The containers start empty:\n"+
			"vxswitch gives them their network interface.")
	top, err := lab.TwoHosts(d.l, lab.Options{Containers: 2, MTU: 9000, Octet: lab.DemoOctet})
	if err != nil {
		return d.fatal(err)
	}
	d.top = top

	d.say("start one vxswitch agent per host",
		"Each agent reads a YAML config: an SVI port sw-vlan7 (the host's own address on VLAN 7) and\n"+
			"one internal port per container, whose interface the agent moves into the container's\n"+
			"namespace (netns:) and addresses. VLAN 7 travels to the other host as VXLAN VNI 7 over\n"+
			"UDP 4789. Blue's config:")
	fmt.Fprint(indent{d.out}, lab.Config(top, top.Hosts[0]))
	// The readiness polls are not worth showing; the agents' commands are.
	d.l.Trace = nil
	for _, h := range top.Hosts {
		fmt.Fprintf(d.out, "    $ ip netns exec %s %s agent --config %s &\n", h.NS, d.vx.Binary, lab.ConfigPath(top, h))
	}
	err = d.vx.Setup(top)
	d.l.Trace = indent{d.out}
	if err != nil {
		return d.fatal(err)
	}
	fmt.Fprintf(d.out, "Both agents are up; every container has its interface:\n")
	fmt.Fprint(indent{d.out}, top.Describe())

	blue, green := top.Hosts[0], top.Hosts[1]
	b0, b1, g0, g1 := blue.Containers[0], blue.Containers[1], green.Containers[0], green.Containers[1]
	d.say("ping across the tunnel",
		"A container on blue pings a container on green: the frame leaves the container, enters\n"+
			"blue's switch, is wrapped in VXLAN, crosses the underlay, is unwrapped by green's switch\n"+
			"and delivered. The first ping also teaches both switches where each MAC address lives.")
	d.ping(b0.NS, b0.String(), g0.Addr4.Addr(), g0.String())
	d.ping(b1.NS, b1.String(), g1.Addr4.Addr(), g1.String())
	d.ping(b0.NS, b0.String(), g0.Addr6.Addr(), g0.String()+" over IPv6")
	d.ping(b0.NS, b0.String(), b1.Addr4.Addr(), b1.String()+" (same host: no tunnel)")
	d.ping(b0.NS, b0.String(), green.SVI4.Addr(), "green's SVI sw-vlan7")
	d.ping(g0.NS, g0.String(), blue.SVI4.Addr(), "blue's SVI sw-vlan7")
	d.ping(blue.NS, "blue's SVI", green.SVI4.Addr(), "green's SVI")

	d.say("send a jumbo packet with \"don't fragment\" set",
		"ping -M do -s 8972 sends 8972 bytes of data + 8 (ICMP) + 20 (IPv4) = 9000 bytes, the full\n"+
			"MTU, and forbids fragmenting it: it only arrives if every hop carries 9000-byte frames.")
	d.ping(b0.NS, b0.String(), g0.Addr4.Addr(), g0.String()+" with a 9000-byte packet", "-M", "do", "-s", "8972")

	d.say("look at the forwarding tables",
		"`vxswitch fdb show` lists the MAC addresses each switch has learned: local ones on a port,\n"+
			"remote ones behind the vxlan tunnel with the other host's underlay address.")
	for _, h := range top.Hosts {
		fmt.Fprintf(d.out, "%s:\n", h.Name)
		d.checks++
		out, err := d.vx.CLI(top, h, "fdb", "show")
		fmt.Fprint(indent{d.out}, out)
		if err != nil {
			d.fail(fmt.Sprintf("fdb show on %s: %v", h.Name, err))
		}
	}

	return d.finish()
}

// ping pings dst from ns three times and records the check.
func (d *demo) ping(ns, from string, dst netip.Addr, to string, extra ...string) {
	d.checks++
	fmt.Fprintf(d.out, "%s -> %s (%s):\n", from, to, dst)
	out, err := lab.PingFrom(d.l, ns, dst, 3, extra...)
	fmt.Fprint(indent{d.out}, lastLines(out, 3))
	if err != nil {
		d.fail(fmt.Sprintf("ping %s -> %s (%s)", from, to, dst))
	}
}

// lastLines keeps ping's summary: the last n non-empty lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func (d *demo) fail(what string) {
	d.failed = append(d.failed, what)
	fmt.Fprintf(d.out, "    FAILED: %s\n", what)
}

// fatal reports an error that stops the demo, with the agents' logs.
func (d *demo) fatal(err error) int {
	d.waitIfInterrupted()
	msg := err.Error()
	if len(d.l.Procs()) > 0 {
		msg = firstLine(msg) // the logs follow in full
	}
	fmt.Fprintf(d.out, "\ndemo: %s\n", msg)
	d.failed = append(d.failed, err.Error())
	return d.finish()
}

// finish prints the verdict and, with -keep, how to use and remove the lab.
func (d *demo) finish() int {
	d.waitIfInterrupted()
	if len(d.failed) > 0 {
		if tails := d.l.LogTails(30); tails != "" {
			fmt.Fprintf(d.out, "\nThe agents' logs (kept in %s):\n%s", d.l.Dir, tails)
			d.l.KeepDir = true
		}
		fmt.Fprintf(d.out, "\nDEMO FAILED: %d problem(s):\n", len(d.failed))
		for _, f := range d.failed {
			fmt.Fprintf(d.out, "  - %s\n", firstLine(f))
		}
	} else {
		fmt.Fprintf(d.out, "\nAll %d checks passed.\n", d.checks)
	}
	if d.keep && d.top != nil {
		d.kept()
	}
	if len(d.failed) > 0 {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func (d *demo) kept() {
	d.l.KeepDir = true
	script, err := d.l.WriteTeardownScript()
	if err != nil {
		fmt.Fprintf(d.out, "demo: teardown script: %v\n", err)
	}
	t := d.top
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nThe lab is still running (-keep). To look around:\n")
	fmt.Fprintf(&b, "  ip netns exec %s bash                 # a shell in container blue-c0\n", t.Hosts[0].Containers[0].NS)
	fmt.Fprintf(&b, "  ip netns exec %s ping %s\n", t.Hosts[0].Containers[0].NS, t.Hosts[1].Containers[0].Addr4.Addr())
	for _, h := range t.Hosts {
		fmt.Fprintf(&b, "  VXSWITCH_SOCKET=%s %s fdb show   # %s's FDB\n", lab.SocketPath(t, h), d.vx.Binary, h.Name)
	}
	fmt.Fprintf(&b, "  configs and agent logs: %s\n", d.l.Dir)
	fmt.Fprintf(&b, "To tear it down:\n  sh %s\n", script)
	d.out.Write(b.Bytes())
}

// waitIfInterrupted blocks for good once a signal arrived: the failures
// that the teardown causes are not the demo's to report, and the handler
// exits the program when the teardown is done.
func (d *demo) waitIfInterrupted() {
	if d.interrupted.Load() {
		select {}
	}
}

func (d *demo) teardown() {
	fmt.Fprintf(d.out, "\n== Step %d/%d: tear down\nStop the agents and delete the namespaces (their interfaces go with them).\n", steps, steps)
	if err := d.l.Close(); err != nil {
		fmt.Fprintf(d.out, "demo: teardown: %v\n", err)
	}
}

// closeOnSignal tears the lab down on Ctrl-C or SIGTERM, even with -keep
// (an interrupted demo is not a finished one).
func (d *demo) closeOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		d.interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\ndemo: %v: tearing the lab down\n", sig)
		if err := d.l.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: teardown: %v\n", err)
		}
		os.Exit(130)
	}()
}
