// Command vxbench compares vxswitch with the Linux bridge + kernel vxlan
// device and Open vSwitch's userspace datapath in the same netns lab, and
// writes the results table of bench/RESULTS.md.
//
//	go run ./bench/cmd/vxbench -vxswitch bin/vxswitch \
//	    [-contenders vxswitch,kernel,ovs] \
//	    [-metrics pps,tcp1500,tcp9000,ping,local-pps] [-runs 3] [-out bench/RESULTS.md]
//
// Each contender gets a fresh lab per topology (two hosts at MTU 1500,
// two hosts at MTU 9000, one host with two containers), torn down after
// its metrics, and on Ctrl-C. A contender that cannot start is skipped
// with the reason printed and recorded. It needs root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/bench/measure"
)

// allMetrics are the metric names -metrics accepts, in run order.
var allMetrics = []string{"pps", "tcp1500", "tcp9000", "ping", "local-pps"}

// A topology is one lab shape and the metrics measured on it.
type topology struct {
	name    string
	opts    lab.Options
	metrics []string
}

var topologies = []topology{
	{"two hosts, MTU 1500", lab.Options{Hosts: 2, Containers: 1, MTU: 1500}, []string{"pps", "tcp1500", "ping"}},
	{"two hosts, MTU 9000", lab.Options{Hosts: 2, Containers: 1, MTU: 9000}, []string{"tcp9000"}},
	{"one host, two containers, MTU 1500", lab.Options{Hosts: 1, Containers: 2, MTU: 1500}, []string{"local-pps"}},
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
}

func main() {
	var c config
	var contenders, metrics string
	flag.StringVar(&c.vxswitch, "vxswitch", "", "path of the vxswitch binary (needed for the vxswitch contender)")
	flag.StringVar(&contenders, "contenders", "vxswitch,kernel,ovs", "comma-separated: vxswitch, kernel, ovs; a -nooffload suffix turns offloads off on the containers' interfaces")
	flag.StringVar(&metrics, "metrics", strings.Join(allMetrics, ","), "comma-separated: "+strings.Join(allMetrics, ", "))
	flag.IntVar(&c.runs, "runs", 3, "runs per metric; the table shows their median and range")
	flag.StringVar(&c.out, "out", "bench/RESULTS.md", "results file to update (empty: print only)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of one pps or TCP run")
	flag.IntVar(&c.pings, "pings", 200, "pings per ping run (10 ms apart)")
	flag.DurationVar(&c.waitIdle, "wait-idle", 20*time.Second, "before each run, wait up to this long for the CPUs to be under 25% busy (0: do not wait)")
	flag.BoolVar(&c.ipv6Underlay, "ipv6-underlay", false, "carry the tunnel over IPv6 (2001:db8:220::/64)")
	flag.Parse()
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

// labs hands out labs one at a time and tears the current one down on
// SIGINT/SIGTERM; after a signal it hands out no more.
type labs struct {
	mu          sync.Mutex
	cur         *lab.Lab // guarded by mu
	interrupted bool     // guarded by mu
	prefix      string
}

func (s *labs) open() (*lab.Lab, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupted {
		return nil, errors.New("interrupted")
	}
	s.cur = lab.New(s.prefix)
	return s.cur, nil
}

func (s *labs) close(l *lab.Lab) {
	if err := l.Close(); err != nil {
		fmt.Printf("  teardown: %v\n", err)
	}
	s.mu.Lock()
	if s.cur == l {
		s.cur = nil
	}
	s.mu.Unlock()
}

// waitIfInterrupted blocks for good once a signal arrived: the handler
// tears down and exits, and nothing half-measured may be reported or
// written to the results file.
func (s *labs) waitIfInterrupted() {
	s.mu.Lock()
	in := s.interrupted
	s.mu.Unlock()
	if in {
		select {}
	}
}

func (s *labs) onSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		s.mu.Lock()
		s.interrupted = true
		l := s.cur
		s.mu.Unlock()
		fmt.Fprintf(os.Stderr, "\nvxbench: %v: tearing the lab down\n", sig)
		if l != nil {
			if err := l.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "vxbench: teardown: %v\n", err)
			}
		}
		os.Exit(130)
	}()
}

func run(c config) int {
	ls := &labs{prefix: lab.Prefix("vxb")}
	ls.onSignal()
	if gone := lab.SweepStale("vxb"); len(gone) > 0 {
		fmt.Printf("vxbench: removed namespaces left by an earlier, killed run: %v\n", gone)
	}
	env := environment(c)
	fmt.Printf("vxbench: kernel %s, CPU %s, load average %s, %d runs per metric\n", env.Kernel, env.CPU, env.Load, c.runs)
	if load, _ := strconv.ParseFloat(env.Load, 64); load > 1 {
		fmt.Printf("vxbench: warning: the machine is busy (load %s); rates will be lower than on an idle machine\n", env.Load)
	}
	var entries []Entry
	failed := false
	for _, name := range c.contenders {
		ct, _ := lab.ContenderByName(name, c.vxswitch)
		fmt.Printf("\n== %s\n", name)
		if err := ct.Available(); err != nil {
			fmt.Printf("SKIP %s: %v\n", name, err)
			entries = append(entries, skipped(env, name, c.metrics, "skipped: "+err.Error())...)
			continue
		}
		for _, tp := range topologies {
			var ms []string
			for _, m := range tp.metrics {
				if slices.Contains(c.metrics, m) {
					ms = append(ms, m)
				}
			}
			if len(ms) == 0 {
				continue
			}
			es, err := runTopology(ls, c, ct, tp, ms, env)
			ls.waitIfInterrupted()
			entries = append(entries, es...)
			if err != nil {
				failed = true
				fmt.Printf("SKIP %s on %s: %v\n", name, tp.name, err)
			}
		}
	}
	fmt.Println()
	ls.waitIfInterrupted()
	if c.out != "" {
		if err := UpdateFile(c.out, entries); err != nil {
			fmt.Fprintf(os.Stderr, "vxbench: %v\n", err)
			return 1
		}
		fmt.Printf("vxbench: updated %s\n", c.out)
	}
	var r Results
	r.Merge(entries)
	sec, _ := r.Render()
	fmt.Println(strings.SplitN(sec, dataOpen, 2)[0])
	if failed {
		return 1
	}
	return 0
}

// runTopology builds tp for ct and measures ms on it. An error means the
// contender could not be set up; the entries then say so.
func runTopology(ls *labs, c config, ct lab.Contender, tp topology, ms []string, env Entry) ([]Entry, error) {
	l, err := ls.open()
	if err != nil {
		return nil, err
	}
	defer ls.close(l)
	opts := tp.opts
	opts.IPv6Underlay = c.ipv6Underlay
	fmt.Printf("-- %s: building the lab (%s) for %s\n", ct.Name(), tp.name, strings.Join(ms, ", "))
	start := time.Now()
	top, err := lab.Build(l, ct, opts)
	if err != nil {
		if tails := l.LogTails(15); tails != "" {
			fmt.Print(tails)
			l.KeepDir = true
			fmt.Printf("   logs kept in %s\n", l.Dir)
		}
		return skipped(env, ct.Name(), ms, "could not start: "+firstLine(err.Error())), err
	}
	fmt.Printf("   ready in %.1fs\n", time.Since(start).Seconds())
	name := ct.Name()
	if c.ipv6Underlay {
		name += " (IPv6 underlay)"
	}
	var out []Entry
	for _, m := range ms {
		out = append(out, measureMetric(l, c, name, top, m, env)...)
	}
	return out, nil
}

// measureMetric runs metric m c.runs times and summarises it.
func measureMetric(l *lab.Lab, c config, name string, top *lab.Topo, m string, env Entry) []Entry {
	all := top.Containers()
	src, dst := all[0], all[len(all)-1]
	series := map[string][]float64{}
	var notes noteSet
	for i := 1; i <= c.runs && l.Context().Err() == nil; i++ {
		fmt.Printf("   %s %s run %d/%d: ", name, m, i, c.runs)
		if busy := waitIdle(c.waitIdle); busy >= 0.25 {
			notes.add(i, "CPUs were busy with other work (over 25%) when it began")
		}
		switch m {
		case "pps", "local-pps":
			r, err := measure.PPS(l, src, dst, c.duration)
			if err != nil {
				notes.add(i, "failed: "+firstLine(err.Error()))
				fmt.Printf("failed: %v\n", err)
				continue
			}
			series[m] = append(series[m], r.Delivered/1e3)
			series[m+"-offered"] = append(series[m+"-offered"], r.Offered/1e3)
			fmt.Printf("offered %.1f kpps, delivered %.1f kpps\n", r.Offered/1e3, r.Delivered/1e3)
		case "tcp1500", "tcp9000":
			r, err := measure.TCP(l, src, dst, c.duration)
			if err != nil {
				notes.add(i, "failed: "+firstLine(err.Error()))
				fmt.Printf("failed: %v\n", err)
				continue
			}
			series[m] = append(series[m], r.Gbps)
			if r.Stalled {
				notes.add(i, fmt.Sprintf("0 Gbit/s, TCP stalled (%s)", r.Note))
				fmt.Printf("0 Gbit/s: TCP stalled: %s\n", r.Note)
			} else {
				fmt.Printf("%.2f Gbit/s (%d retransmits)\n", r.Gbps, r.Retransmits)
			}
		case "ping":
			r, err := measure.Ping(l, src, dst, c.pings, 10*time.Millisecond)
			if err != nil {
				notes.add(i, "failed: "+firstLine(err.Error()))
				fmt.Printf("failed: %v\n", err)
				continue
			}
			series["ping-p50"] = append(series["ping-p50"], r.P50)
			series["ping-p99"] = append(series["ping-p99"], r.P99)
			fmt.Printf("p50 %.0f µs, p99 %.0f µs (%d/%d replies)\n", r.P50, r.P99, r.Received, r.Sent)
		}
	}
	keys := map[string][]string{
		"pps": {"pps", "pps-offered"}, "local-pps": {"local-pps", "local-pps-offered"},
		"ping": {"ping-p50", "ping-p99"},
	}[m]
	if keys == nil {
		keys = []string{m}
	}
	var out []Entry
	for _, k := range keys {
		e := env
		e.Contender, e.Metric, e.Unit = name, k, unitOf(k)
		xs := series[k]
		if len(xs) == 0 {
			e.Failed = true
		} else {
			s := measure.Summarize(xs)
			e.Median, e.Min, e.Max, e.Runs = s.Median, s.Min, s.Max, s.Runs
		}
		if k == keys[0] {
			e.Note = notes.String(c.runs)
		}
		if e.Failed && e.Note == "" {
			e.Note = "every run failed"
		}
		out = append(out, e)
	}
	return out
}

// A noteSet collects what happened in runs, once per distinct message.
type noteSet struct {
	msgs []string
	runs map[string][]string
}

func (n *noteSet) add(run int, msg string) {
	if n.runs == nil {
		n.runs = map[string][]string{}
	}
	if _, ok := n.runs[msg]; !ok {
		n.msgs = append(n.msgs, msg)
	}
	n.runs[msg] = append(n.runs[msg], strconv.Itoa(run))
}

// String says "runs 1, 2 of 3: msg; run 3 of 3: msg2".
func (n *noteSet) String(total int) string {
	var parts []string
	for _, m := range n.msgs {
		rs := n.runs[m]
		word := "run"
		if len(rs) > 1 {
			word = "runs"
		}
		parts = append(parts, fmt.Sprintf("%s %s of %d: %s", word, strings.Join(rs, ", "), total, m))
	}
	return strings.Join(parts, "; ")
}

func unitOf(metric string) string {
	for _, r := range rows {
		if r.key == metric {
			return r.unit
		}
	}
	return ""
}

// skipped returns failed entries for every row of metrics ms.
func skipped(env Entry, name string, ms []string, why string) []Entry {
	var out []Entry
	for _, m := range ms {
		keys := map[string][]string{
			"pps": {"pps"}, "local-pps": {"local-pps"}, "ping": {"ping-p50", "ping-p99"},
		}[m]
		if keys == nil {
			keys = []string{m}
		}
		for _, k := range keys {
			e := env
			e.Contender, e.Metric, e.Unit, e.Failed, e.Note = name, k, unitOf(k), true, why
			out = append(out, e)
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
	return e
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
