// Command vxbench compares vxswitch with the Linux bridge + kernel vxlan
// device and Open vSwitch's userspace datapath in the same netns lab, and
// writes the results table of bench/RESULTS.md.
//
//	go run ./bench/cmd/vxbench -vxswitch bin/vxswitch \
//	    [-contenders vxswitch,vxswitch-w2,kernel,ovs] \
//	    [-metrics pps,tcp1500,tcp9000,ping,local-pps,flood-ping] [-runs 3] [-out bench/RESULTS.md] \
//	    [-profile] [-perf] [-profile-dir DIR]
//
// For each topology (two hosts at MTU 1500, two hosts at MTU 9000, one
// host with two containers) every contender gets its own fresh lab; the
// labs stay up together while that topology's metrics run, and the runs
// take the contenders in turn (run 1 of each, then run 2 of each, ...),
// so that other work on the machine hits all of them alike. The labs are
// torn down after the topology, and on Ctrl-C. Before each run vxbench
// waits (-wait-idle) for the CPUs to calm down, and notes runs that began
// on busy CPUs. A contender that cannot start is skipped with the reason
// printed and recorded. It needs root.
//
// The pps metrics also report CPU seconds per million packets delivered,
// of the switch's processes and of the whole machine, sampled at the
// window's edges. With -profile, each vxswitch contender gets one more pps
// window (not counted) in which every agent's CPU profile is fetched over
// its control socket; with -perf, every contender's extra window is also
// recorded by `perf record -a -g`. The top 10 functions (pprof: by flat
// and by cumulative time; perf: symbols by self time) go into RESULTS.md,
// the raw profiles into -profile-dir.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/bench/measure"
)

// allMetrics are the metric names -metrics accepts, in run order.
var allMetrics = []string{"pps", "tcp1500", "tcp9000", "ping", "local-pps", "flood-ping"}

// A topology is one lab shape and the metrics measured on it.
type topology struct {
	name    string
	opts    lab.Options
	metrics []string
}

var topologies = []topology{
	{"two hosts, MTU 1500", lab.Options{Hosts: 2, Containers: 1, MTU: 1500}, []string{"pps", "tcp1500", "ping"}},
	{"two hosts, MTU 9000", lab.Options{Hosts: 2, Containers: 1, MTU: 9000}, []string{"tcp9000"}},
	{"one host, two containers, MTU 1500", lab.Options{Hosts: 1, Containers: 2, MTU: 1500}, []string{"local-pps", "flood-ping"}},
}

type config struct {
	vxswitch     string
	contenders   []string
	metrics      []string
	runs         int
	out          string
	duration     time.Duration
	pings        int
	ipv6Underlay bool
	waitIdle     time.Duration
	tcpCC        string // iperf3 -C; empty: the machine's default
	prof         *profiler
}

func main() {
	c := config{prof: &profiler{}}
	var contenders, metrics string
	flag.StringVar(&c.vxswitch, "vxswitch", "", "path of the vxswitch binary (needed for the vxswitch contender)")
	flag.StringVar(&contenders, "contenders", "vxswitch,vxswitch-pin,vxswitch-veth,kernel,ovs,ovs-tap", "comma-separated: vxswitch, vxswitch-veth (containers on veths as system ports), vxswitch-wN (N workers, 2-16; also vxswitch-veth-wN), each vxswitch one optionally with -poll (busy-poll) and then -pin (every agent on the last CPUs, cpus:), kernel, ovs (containers on veths), ovs-tap (containers on OVS internal ports, TAPs like vxswitch's); a -nooffload suffix turns offloads off on the containers' interfaces")
	flag.StringVar(&metrics, "metrics", strings.Join(allMetrics, ","), "comma-separated: "+strings.Join(allMetrics, ", "))
	flag.IntVar(&c.runs, "runs", 3, "runs per metric; the table shows their median and range")
	flag.StringVar(&c.out, "out", "bench/RESULTS.md", "results file to update (empty: print only)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of one pps or TCP run")
	flag.IntVar(&c.pings, "pings", 200, "pings per ping run (10 ms apart)")
	flag.DurationVar(&c.waitIdle, "wait-idle", 20*time.Second, "before each run, wait up to this long for the CPUs to be under 25% busy (0: do not wait)")
	flag.BoolVar(&c.ipv6Underlay, "ipv6-underlay", false, "carry the tunnel over IPv6 (2001:db8:220::/64)")
	flag.StringVar(&c.tcpCC, "tcp-cc", "", "TCP congestion control of the iperf3 sender, one of net.ipv4.tcp_available_congestion_control (default: the machine's net.ipv4.tcp_congestion_control)")
	flag.BoolVar(&c.prof.pprof, "profile", false, "after the counted pps and local-pps runs of a vxswitch contender, one more window (not counted) "+
		"during which each agent's CPU profile is fetched over its control socket (/debug/pprof/profile); "+
		"the top 10 functions by flat and cumulative time go to -out")
	flag.BoolVar(&c.prof.perf, "perf", false, "in that extra window (for every contender), also `perf record -a -g` all CPUs, kernel and user, "+
		"and put the top 10 symbols by self time into -out")
	flag.StringVar(&c.prof.dir, "profile-dir", "", "where -profile and -perf keep the raw profiles (default: a new vxbench-profiles-* directory under $TMPDIR)")
	renderOnly := flag.Bool("render-only", false, "measure nothing; rewrite -out's generated section from the results stored in it")
	flag.Parse()
	if *renderOnly {
		if err := UpdateFile(c.out, nil, nil); err != nil {
			fmt.Fprintf(os.Stderr, "vxbench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments: %v", flag.Args())
	}
	c.contenders = splitList(contenders)
	c.metrics = splitList(metrics)
	for _, m := range c.metrics {
		if !slices.Contains(allMetrics, m) {
			usage("unknown metric %q", m)
		}
	}
	for _, name := range c.contenders {
		if _, err := lab.ContenderByName(name, c.vxswitch); err != nil {
			usage("%v", err)
		}
	}
	if c.runs < 1 {
		usage("-runs must be at least 1")
	}
	if c.tcpCC != "" {
		if err := checkCC(c.tcpCC); err != nil {
			usage("-tcp-cc: %v", err)
		}
	}
	if c.prof.perf {
		if _, err := exec.LookPath("perf"); err != nil {
			usage("-perf: %v", err)
		}
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "vxbench: needs root (network namespaces)")
		os.Exit(1)
	}
	os.Exit(run(c))
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vxbench: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// environment returns an Entry with the date, kernel, CPU and command
// filled in.
func environment(c config) Entry {
	var e Entry
	e.Date = time.Now().UTC().Format("2006-01-02 15:04")
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		e.Kernel = strings.TrimSpace(string(out))
	}
	e.CPU = fmt.Sprintf("%s × %d", cpuModel(), runtime.NumCPU())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		e.Load = strings.Fields(string(b))[0]
	}
	e.Cmd = strings.Join(append([]string{"go run ./bench/cmd/vxbench"}, os.Args[1:]...), " ")
	e.Wakeup = wakeupCosts()
	return e
}

// wakeupCosts is Entry.Wakeup: 200 round trips on two CPUs and on one,
// about half a second.
func wakeupCosts() string {
	cross, same, err := measure.WakeupCosts(200, time.Millisecond)
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Nanoseconds())/1e3) }
	switch {
	case err != nil:
		fmt.Printf("vxbench: wake-up cost not measured: %v\n", err)
		return ""
	case cross == 0:
		return "– / " + us(same)
	}
	return us(cross) + " / " + us(same)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// availableCC is where the kernel lists the congestion controls it has.
const availableCC = "/proc/sys/net/ipv4/tcp_available_congestion_control"

// checkCC reports whether the kernel offers congestion control cc, so a
// typo fails before any lab is built rather than in every TCP run.
func checkCC(cc string) error {
	b, err := os.ReadFile(availableCC)
	if err != nil {
		return err
	}
	if have := strings.Fields(string(b)); !slices.Contains(have, cc) {
		return fmt.Errorf("%q is not available here (%s)", cc, strings.Join(have, ", "))
	}
	return nil
}
