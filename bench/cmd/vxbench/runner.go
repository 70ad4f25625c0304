package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vxswitch/vxswitch/bench/lab"
	"github.com/vxswitch/vxswitch/bench/measure"
)

// A contestant is one contender's lab for the topology being measured.
type contestant struct {
	name   string // as shown in the table
	ct     lab.Contender
	l      *lab.Lab
	top    *lab.Topo
	procs  []*lab.Proc          // the switch's processes (ct.SwitchProcs after Setup); none for the kernel
	series map[string][]float64 // row key -> one value per successful run
	notes  map[string]*noteSet  // metric or row key -> what happened
}

func run(c config) int {
	ls := &labs{prefix: lab.Prefix("vxb")}
	ls.onSignal()
	if gone := lab.SweepStale("vxb"); len(gone) > 0 {
		fmt.Printf("vxbench: removed namespaces left by an earlier, killed run: %v\n", gone)
	}
	env := environment(c)
	fmt.Printf("vxbench: kernel %s, CPU %s, load average %s, wake-up round trip %s µs (two CPUs / one), %d runs per metric\n", env.Kernel, env.CPU, env.Load, env.Wakeup, c.runs)
	if load, _ := strconv.ParseFloat(env.Load, 64); load > 1 {
		fmt.Printf("vxbench: warning: the machine is busy (load %s); rates will be lower than on an idle machine\n", env.Load)
	}
	var entries []Entry
	var profiles []Profile
	failed := false
	var contenders []lab.Contender
	for _, name := range c.contenders {
		ct, _ := lab.ContenderByName(name, c.vxswitch)
		if err := ct.Available(); err != nil {
			fmt.Printf("SKIP %s: %v\n", name, err)
			entries = append(entries, skipped(env, displayName(c, name), c.metrics, skippedPrefix+err.Error())...)
			continue
		}
		contenders = append(contenders, ct)
	}
	for _, tp := range topologies {
		var ms []string
		for _, m := range tp.metrics {
			if slices.Contains(c.metrics, m) {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 || len(contenders) == 0 {
			continue
		}
		es, ps, ok := runTopology(ls, c, contenders, tp, ms, env)
		ls.waitIfInterrupted()
		entries = append(entries, es...)
		profiles = append(profiles, ps...)
		failed = failed || !ok
	}
	fmt.Println()
	ls.waitIfInterrupted()
	if c.out != "" {
		if err := UpdateFile(c.out, entries, profiles); err != nil {
			fmt.Printf("vxbench: %v\n", err)
			return 1
		}
		fmt.Printf("vxbench: updated %s\n", c.out)
	}
	if c.prof.made {
		fmt.Printf("vxbench: raw profiles are in %s (go tool pprof FILE.pb.gz; perf report -i FILE.perf.data)\n", c.prof.dir)
	}
	var r Results
	r.Merge(entries)
	r.MergeProfiles(profiles)
	sec, _ := r.Render()
	fmt.Println(strings.SplitN(sec, dataOpen, 2)[0])
	if failed {
		return 1
	}
	return 0
}

func displayName(c config, name string) string {
	if c.ipv6Underlay {
		return name + " (IPv6 underlay)"
	}
	return name
}

// runTopology builds tp for every contender, then measures each metric
// run by run, taking the contenders in turn within each run, so that a
// change in the machine's load hits all of them alike. It reports false
// if a contender could not be set up (its entries then say why). With
// -profile or -perf, each pps metric ends with one profiled window per
// contender that wants one (profiler.run).
func runTopology(ls *labs, c config, cts []lab.Contender, tp topology, ms []string, env Entry) ([]Entry, []Profile, bool) {
	var out []Entry
	var profiles []Profile
	ok := true
	var cs []*contestant
	defer func() {
		for _, x := range cs {
			ls.Close(x.l)
		}
	}()
	fmt.Printf("\n== %s: %s\n", tp.name, strings.Join(ms, ", "))
	for i, ct := range cts {
		name := displayName(c, ct.Name())
		l, err := ls.New(i)
		if err != nil {
			return out, profiles, false
		}
		opts := tp.opts
		opts.IPv6Underlay = c.ipv6Underlay
		fmt.Printf("-- %s: building the lab\n", name)
		start := time.Now()
		top, err := lab.Build(l, ct, opts)
		if err != nil {
			ok = false
			fmt.Printf("SKIP %s on %s: %v\n", name, tp.name, err)
			if tails := l.LogTails(15); tails != "" {
				fmt.Print(tails)
				l.KeepDir = true
				fmt.Printf("   logs kept in %s\n", l.Dir)
			}
			ls.Close(l)
			out = append(out, skipped(env, name, ms, "could not start: "+firstLine(err.Error()))...)
			continue
		}
		fmt.Printf("   ready in %.1fs\n", time.Since(start).Seconds())
		cs = append(cs, &contestant{name: name, ct: ct, l: l, top: top, procs: ct.SwitchProcs(),
			series: map[string][]float64{}, notes: map[string]*noteSet{}})
	}
	for _, m := range ms {
		for i := 1; i <= c.runs; i++ {
			for _, x := range cs {
				if x.l.Context().Err() != nil {
					return out, profiles, ok
				}
				measureOnce(c, x, m, i)
			}
		}
		for _, x := range cs {
			out = append(out, summarize(env, c, x, m)...)
		}
		if m != "pps" && m != "local-pps" {
			continue
		}
		for _, x := range cs {
			if c.prof.wants(x) && x.l.Context().Err() == nil {
				profiles = append(profiles, c.prof.run(c, x, m, env)...)
			}
		}
	}
	return out, profiles, ok
}

// noteSet returns x's notes for key (a metric or a row).
func (x *contestant) noteSet(key string) *noteSet {
	n := x.notes[key]
	if n == nil {
		n = &noteSet{}
		x.notes[key] = n
	}
	return n
}

// measureOnce does run i of metric m on x and records it.
func measureOnce(c config, x *contestant, m string, i int) {
	all := x.top.Containers()
	src, dst := all[0], all[len(all)-1]
	notes := x.noteSet(m)
	fmt.Printf("   %s %s run %d/%d: ", x.name, m, i, c.runs)
	if busy := waitIdle(c.waitIdle); busy >= 0.25 {
		notes.add(i, "CPUs were busy with other work (over 25%) when it began")
	}
	fail := func(err error) {
		notes.add(i, "failed: "+firstLine(err.Error()))
		fmt.Printf("failed: %v\n", err)
	}
	switch m {
	case "pps", "local-pps":
		cpu := measure.NewCPUProbe(pids(x.procs)...)
		r, err := measure.PPS(x.l, src, dst, c.duration, cpu)
		if err != nil {
			fail(err)
			return
		}
		x.series[m] = append(x.series[m], r.Delivered/1e3)
		x.series[m+"-offered"] = append(x.series[m+"-offered"], r.Offered/1e3)
		fmt.Printf("offered %.1f kpps, delivered %.1f kpps; %s\n", r.Offered/1e3, r.Delivered/1e3, x.recordCPU(m, i, cpu, r))
	case "tcp1500", "tcp9000":
		r, err := measure.TCP(x.l, src, dst, c.duration, c.tcpCC)
		if err != nil {
			fail(err)
			return
		}
		x.series[m] = append(x.series[m], r.Gbps)
		if c.tcpCC != "" {
			// Not the machine's default: the cell must say so.
			notes.add(i, "TCP congestion control "+c.tcpCC+" (-tcp-cc)")
		}
		if r.Stalled {
			notes.add(i, fmt.Sprintf("0 Gbit/s, TCP stalled (%s)", r.Note))
			fmt.Printf("0 Gbit/s: TCP stalled: %s\n", r.Note)
		} else {
			fmt.Printf("%.2f Gbit/s (%d retransmits, %s)\n", r.Gbps, r.Retransmits, r.CC)
		}
	case "ping":
		r, err := measure.Ping(x.l, src, dst, c.pings, 10*time.Millisecond)
		if err != nil {
			fail(err)
			return
		}
		x.series["ping-p50"] = append(x.series["ping-p50"], r.P50)
		x.series["ping-p99"] = append(x.series["ping-p99"], r.P99)
		fmt.Printf("p50 %.0f µs, p99 %.0f µs (%d/%d replies)\n", r.P50, r.P99, r.Received, r.Sent)
	case "flood-ping":
		r, err := measure.FloodPing(x.l, x.top.Hosts[0].NS, src, dst, c.duration, 20*time.Millisecond)
		if err != nil {
			fail(err)
			return
		}
		x.series["flood-ping-p50"] = append(x.series["flood-ping-p50"], r.Ping.P50)
		x.series["flood-ping-p99"] = append(x.series["flood-ping-p99"], r.Ping.P99)
		if lost := r.Ping.Sent - r.Ping.Received; lost*100 > r.Ping.Sent {
			notes.add(i, fmt.Sprintf("%d of %d pings lost to the flood", lost, r.Ping.Sent))
		}
		fmt.Printf("p50 %.0f µs, p99 %.0f µs (%d/%d replies) under a flood of %.1f kpps delivered\n",
			r.Ping.P50, r.Ping.P99, r.Ping.Received, r.Ping.Sent, r.Flood.Delivered/1e3)
	}
}

// pids returns the processes' IDs.
func pids(ps []*lab.Proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.Pid())
	}
	return out
}

// recordCPU adds run i's CPU seconds per million delivered packets to
// the rows m-cpu (the switch's processes) and m-cpu-machine (all CPUs),
// and returns what to print.
func (x *contestant) recordCPU(m string, i int, cpu *measure.CPUProbe, r measure.PPSResult) string {
	var parts []string
	if len(x.procs) > 0 {
		var each []string
		for j, d := range cpu.Procs() {
			each = append(each, fmt.Sprintf("%s %.2f", x.procs[j].Name, d.Seconds()))
		}
		s := fmt.Sprintf("switch CPU %.2f s (%s)", cpu.ProcsTotal().Seconds(), strings.Join(each, ", "))
		if v, err := measure.PerMpkt(cpu.ProcsTotal(), r.DeliveredPackets); err != nil {
			x.noteSet(m+"-cpu").add(i, err.Error())
		} else {
			x.series[m+"-cpu"] = append(x.series[m+"-cpu"], v)
			s += fmt.Sprintf(" = %.2f s/Mpkt", v)
		}
		parts = append(parts, s)
	}
	s := fmt.Sprintf("machine CPU %.2f s", cpu.Machine().Seconds())
	if v, err := measure.PerMpkt(cpu.Machine(), r.DeliveredPackets); err != nil {
		x.noteSet(m+"-cpu-machine").add(i, err.Error())
	} else {
		x.series[m+"-cpu-machine"] = append(x.series[m+"-cpu-machine"], v)
		s += fmt.Sprintf(" = %.2f s/Mpkt", v)
	}
	return strings.Join(append(parts, s), "; ")
}

// noSwitchProcNote explains the "–" of a contender without a switch
// process in the switch CPU row.
const noSwitchProcNote = "no switch process to measure: the kernel bridge and vxlan device forward in the sender's and in softirq context; the machine CPU row counts that work"

// rowKeys are the table rows a metric fills.
func rowKeys(m string) []string {
	switch m {
	case "pps", "local-pps":
		return []string{m, m + "-offered", m + "-cpu", m + "-cpu-machine"}
	case "ping", "flood-ping":
		return []string{m + "-p50", m + "-p99"}
	}
	return []string{m}
}

// summarize turns x's runs of metric m into entries.
func summarize(env Entry, c config, x *contestant, m string) []Entry {
	var out []Entry
	keys := rowKeys(m)
	for _, k := range keys {
		e := env
		e.Contender, e.Metric, e.Unit = x.name, k, unitOf(k)
		if k == m+"-cpu" && len(x.procs) == 0 {
			e.NA, e.Note = true, noSwitchProcNote
			out = append(out, e)
			continue
		}
		if xs := x.series[k]; len(xs) == 0 {
			e.Failed = true
		} else {
			s := measure.Summarize(xs)
			e.Median, e.Min, e.Max, e.Runs = s.Median, s.Min, s.Max, s.Runs
		}
		// The metric's notes go on its first row, and on any other row
		// left without a number; a row's own notes go on that row.
		var notes []string
		if n := x.notes[m]; n != nil && (k == keys[0] || e.Failed) {
			notes = append(notes, n.String(c.runs))
		}
		if n := x.notes[k]; n != nil && k != m {
			notes = append(notes, n.String(c.runs))
		}
		e.Note = strings.Join(slices.DeleteFunc(notes, func(s string) bool { return s == "" }), "; ")
		if e.Failed && e.Note == "" {
			e.Note = "every run failed"
		}
		out = append(out, e)
	}
	return out
}

// skipped returns failed entries for the first row of every metric in ms.
func skipped(env Entry, name string, ms []string, why string) []Entry {
	var out []Entry
	for _, m := range ms {
		for _, k := range rowKeys(m) {
			if strings.HasSuffix(k, "-offered") {
				continue
			}
			e := env
			e.Contender, e.Metric, e.Unit, e.Failed, e.Note = name, k, unitOf(k), true, why
			out = append(out, e)
		}
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
