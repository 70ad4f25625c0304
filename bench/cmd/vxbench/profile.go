package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// topN is how many functions or symbols a profile table shows.
const topN = 10

// A Profile is the top of one CPU profile taken during a pps window.
type Profile struct {
	Contender string `json:"contender"`
	Metric    string `json:"metric"` // pps or local-pps
	Tool      string `json:"tool"`   // "pprof" (an agent's Go profile) or "perf" (the whole machine)
	Source    string `json:"source"` // whose profile: "blue agent (sender side)", "all CPUs"
	// Summary says what the window was: its length, the rates and CPU
	// time measured in it, the samples in the profile.
	Summary string `json:"summary"`
	// Flat is the top by time spent in the function itself (pprof flat,
	// perf self); Cum the top by time including callees (pprof only).
	Flat []ProfRow `json:"flat"`
	Cum  []ProfRow `json:"cum,omitempty"`
	File string    `json:"file,omitempty"` // where the raw profile was saved
	Date string    `json:"date"`
	Cmd  string    `json:"cmd"`
}

// A ProfRow is one function (pprof) or symbol (perf). Times are in
// milliseconds of samples (pprof); perf gives sample counts in Flat.
// Percentages are of the profile's total (pprof) or of the busy samples
// (perf).
type ProfRow struct {
	Func    string  `json:"func"`
	Object  string  `json:"object,omitempty"` // perf: the binary or [kernel.kallsyms]
	Flat    float64 `json:"flat"`
	FlatPct float64 `json:"flat_pct"`
	Cum     float64 `json:"cum,omitempty"`
	CumPct  float64 `json:"cum_pct,omitempty"`
}

// profiler takes the profiles of -profile and -perf in one extra pps
// window per contender and metric.
type profiler struct {
	pprof, perf bool
	dir         string // -profile-dir; made on first use when empty
	made        bool
}

// wants reports whether x gets a profiled window: -perf profiles every
// contender, -profile those with vxswitch agents.
func (p *profiler) wants(x *contestant) bool {
	return p.perf || (p.pprof && vxswitchOf(x.ct) != nil)
}

// vxswitchOf returns c's VXSwitch, looking through NoOffload; nil when c
// is no vxswitch.
func vxswitchOf(c lab.Contender) *lab.VXSwitch {
	switch v := c.(type) {
	case *lab.VXSwitch:
		return v
	case lab.NoOffload:
		return vxswitchOf(v.Contender)
	}
	return nil
}

// outDir returns the directory for raw profiles, making it on first use.
func (p *profiler) outDir() (string, error) {
	if p.made {
		return p.dir, nil
	}
	if p.dir == "" {
		d, err := os.MkdirTemp("", "vxbench-profiles-")
		if err != nil {
			return "", err
		}
		p.dir = d
	} else if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return "", err
	}
	p.made = true
	return p.dir, nil
}

// fileName makes s safe for a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

// run does one pps window of metric m on x with the profilers attached
// and returns their tops. The window's numbers are not counted in the
// table (profiling costs CPU itself); they go into each Profile's
// summary.
func (p *profiler) run(c config, x *contestant, m string, env Entry) []Profile {
	fmt.Printf("   %s %s profiled run (not counted): ", x.name, m)
	waitIdle(c.waitIdle)
	dir, err := p.outDir()
	if err != nil {
		fmt.Printf("failed: %v\n", err)
		return nil
	}
	stem := filepath.Join(dir, fileName(x.name)+"-"+m)
	all := x.top.Containers()
	src, dst := all[0], all[len(all)-1]
	cpu := measure.NewCPUProbe(pids(x.procs)...)
	probes := []measure.Probe{cpu}
	var agents *pprofProbe
	if vx := vxswitchOf(x.ct); p.pprof && vx != nil {
		agents = &pprofProbe{secs: int(math.Ceil(c.duration.Seconds()))}
		for _, h := range x.top.Hosts {
			agents.socks = append(agents.socks, lab.SocketPath(x.top, h))
			agents.files = append(agents.files, stem+"-"+h.Name+".pb.gz")
			agents.names = append(agents.names, agentRole(x.top, h, src, dst))
		}
		probes = append(probes, agents)
	}
	var machine *perfProbe
	if p.perf {
		machine = &perfProbe{l: x.l, file: stem + "-machine.perf.data"}
		probes = append(probes, machine)
	}
	r, err := measure.PPS(x.l, src, dst, c.duration, probes...)
	var errs []error
	if agents != nil {
		errs = append(errs, agents.Wait())
	}
	if machine != nil {
		errs = append(errs, machine.Wait())
	}
	if err != nil {
		fmt.Printf("failed: %v\n", err)
		return nil
	}
	summary := fmt.Sprintf("%.1f s window: %.1f kpps delivered (%.1f offered)", r.Window.Seconds(), r.Delivered/1e3, r.Offered/1e3)
	if len(x.procs) > 0 {
		summary += fmt.Sprintf(", switch CPU %.2f s", cpu.ProcsTotal().Seconds())
	}
	summary += fmt.Sprintf(", machine CPU %.2f s", cpu.Machine().Seconds())
	fmt.Printf("offered %.1f kpps, delivered %.1f kpps\n", r.Offered/1e3, r.Delivered/1e3)
	base := Profile{Contender: x.name, Metric: m, Date: env.Date, Cmd: env.Cmd}
	var out []Profile
	if agents != nil {
		for i, f := range agents.files {
			if agents.errs[i] != nil {
				continue
			}
			pr := base
			pr.Tool, pr.Source, pr.File = "pprof", agents.names[i], f
			var samples string
			pr.Flat, pr.Cum, samples, err = pprofTop(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				continue
			}
			pr.Summary = summary + "; " + samples
			out = append(out, pr)
			fmt.Printf("     pprof %s: %s\n", pr.Source, f)
		}
	}
	if machine != nil && machine.err == nil {
		pr := base
		pr.Tool, pr.Source, pr.File = "perf", "all CPUs", machine.file
		var samples string
		pr.Flat, samples, err = perfTop(machine.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", machine.file, err))
		} else {
			pr.Summary = summary + "; " + samples
			out = append(out, pr)
			fmt.Printf("     perf: %s\n", machine.file)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Printf("     profiling: %v\n", err)
	}
	return out
}

// agentRole names host h's agent by what it does in the window.
func agentRole(t *lab.Topo, h *lab.Host, src, dst *lab.Container) string {
	switch {
	case len(t.Hosts) == 1:
		return h.Name + " agent"
	case src.Host == h:
		return h.Name + " agent (sender side: port to tunnel)"
	case dst.Host == h:
		return h.Name + " agent (receiver side: tunnel to port)"
	}
	return h.Name + " agent"
}

// pprofProbe fetches a CPU profile from every agent, over its control
// socket, from the window's start for secs seconds (the endpoint takes
// whole seconds, so -duration is rounded up).
type pprofProbe struct {
	socks, files, names []string
	secs                int

	wg   sync.WaitGroup
	errs []error // per agent, after Wait
}

func (p *pprofProbe) WindowStart() error {
	p.errs = make([]error, len(p.socks))
	for i := range p.socks {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.errs[i] = fetchProfile(p.socks[i], p.secs, p.files[i])
		}()
	}
	return nil
}

func (p *pprofProbe) WindowEnd() error { return nil }

// Wait waits for the profiles and returns their errors.
func (p *pprofProbe) Wait() error {
	p.wg.Wait()
	var errs []error
	for i, err := range p.errs {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.names[i], err))
		}
	}
	return errors.Join(errs...)
}

// fetchProfile GETs /debug/pprof/profile?seconds=secs from the agent on
// sock and saves it to file.
func fetchProfile(sock string, secs int, file string) error {
	hc := &http.Client{
		Timeout: time.Duration(secs)*time.Second + 30*time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := hc.Get(fmt.Sprintf("http://vxswitch/debug/pprof/profile?seconds=%d", secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goTool returns the go command: the one `go run` puts first in PATH, or
// the one of the toolchain that built vxbench.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("no go command in PATH: rendering a profile needs `go tool pprof`")
	}
	return p, nil
}

// pprofTop runs `go tool pprof -top` on file, sorted by flat and by cum
// time, and returns both tops and the sample line ("1.20 s of samples in
// 2 s").
func pprofTop(file string) (flat, cum []ProfRow, samples string, err error) {
	gobin, err := goTool()
	if err != nil {
		return nil, nil, "", err
	}
	for _, sortBy := range []string{"-flat", "-cum"} {
		out, err := exec.Command(gobin, "tool", "pprof", "-top", sortBy, "-unit=ms", fmt.Sprintf("-nodecount=%d", topN), file).CombinedOutput()
		if err != nil {
			return nil, nil, "", fmt.Errorf("go tool pprof: %v: %s", err, firstLine(string(out)))
		}
		rows, s, err := parsePprofTop(string(out))
		if err != nil {
			return nil, nil, "", err
		}
		if sortBy == "-flat" {
			flat, samples = rows, s
		} else {
			cum = rows
		}
	}
	return flat, cum, samples, nil
}

var (
	// With -unit=ms every time is in ms, except a zero, which is bare.
	pprofTotalRE = regexp.MustCompile(`Duration: ([^,]+), Total samples = ([0-9.]+)(?:ms)? \(([0-9.]+)%\)`)
	pprofRowRE   = regexp.MustCompile(`^\s*([0-9.]+)(?:ms)?\s+([0-9.]+)%\s+[0-9.]+%\s+([0-9.]+)(?:ms)?\s+([0-9.]+)%\s+(.+?)\s*$`)
)

// parsePprofTop reads the output of `go tool pprof -top -unit=ms`.
func parsePprofTop(out string) ([]ProfRow, string, error) {
	var rows []ProfRow
	samples := ""
	header := false
	for _, line := range strings.Split(out, "\n") {
		if m := pprofTotalRE.FindStringSubmatch(line); m != nil {
			ms, _ := strconv.ParseFloat(m[2], 64)
			samples = fmt.Sprintf("%.2f s of CPU samples in %s (%s%% of one CPU)", ms/1e3, m[1], m[3])
			continue
		}
		if strings.Contains(line, "flat%") && strings.Contains(line, "cum%") {
			header = true
			continue
		}
		if !header {
			continue
		}
		m := pprofRowRE.FindStringSubmatch(line)
		if m == nil {
			if strings.TrimSpace(line) != "" {
				return nil, "", fmt.Errorf("pprof -top: unexpected line %q", line)
			}
			continue
		}
		var v [4]float64
		for i := range v {
			v[i], _ = strconv.ParseFloat(m[i+1], 64)
		}
		rows = append(rows, ProfRow{Func: m[5], Flat: v[0], FlatPct: v[1], Cum: v[2], CumPct: v[3]})
	}
	if samples == "" {
		return nil, "", errors.New("pprof -top: no \"Total samples\" line (not a CPU profile?)")
	}
	return rows, samples, nil
}

// perfFreq is perf's sampling rate per CPU: odd, so it does not beat
// with timer ticks, and low enough to cost little.
const perfFreq = 499

// perfProbe records `perf record -a -g` of all CPUs during the window:
// started at the window's start (in the background: perf takes a moment
// to come up, so the first few milliseconds are missed) and stopped by
// SIGINT at its end.
type perfProbe struct {
	l    *lab.Lab
	file string

	started chan *lab.Proc // the perf process, or nil if it did not start
	err     error          // after Wait
}

func (p *perfProbe) WindowStart() error {
	p.started = make(chan *lab.Proc, 1)
	go func() {
		proc, err := p.l.Start("", "perf", "record", "-a", "-g", "-F", strconv.Itoa(perfFreq), "-o", p.file)
		if err != nil {
			p.err = err
		}
		p.started <- proc
	}()
	return nil
}

func (p *perfProbe) WindowEnd() error {
	// perf has long started (the window lasts seconds); SIGINT makes it
	// write its file and exit.
	if proc := <-p.started; proc != nil {
		p.started <- proc
		return proc.Signal(syscall.SIGINT)
	}
	p.started <- nil
	return nil
}

// Wait waits for perf to finish writing.
func (p *perfProbe) Wait() error {
	if p.started == nil {
		return nil
	}
	proc := <-p.started
	if proc == nil {
		return p.err
	}
	if ok, _ := proc.Exited(); !ok {
		// The window failed before its end: stop perf now.
		_ = proc.Signal(syscall.SIGINT)
	}
	select {
	case <-proc.Done():
	case <-time.After(60 * time.Second):
		_ = proc.Stop()
		p.err = fmt.Errorf("perf record did not finish within 60 s of SIGINT; log %s", proc.Log)
		return p.err
	}
	if fi, err := os.Stat(p.file); err != nil || fi.Size() == 0 {
		p.err = fmt.Errorf("perf record wrote nothing: %s", lastLine(proc.Tail(5)))
	}
	return p.err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// perfTop reads file with `perf script` and returns the top symbols by
// self samples, as shares of the busy samples, and a sample line.
func perfTop(file string) ([]ProfRow, string, error) {
	cmd := exec.Command("perf", "script", "-i", file, "-F", "comm,pid,tid,cpu,event,ip,sym,dso")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	agg, perr := aggregatePerf(stdout)
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return nil, "", fmt.Errorf("perf script: %v: %s", err, firstLine(stderr.String()))
	}
	if perr != nil {
		return nil, "", perr
	}
	return agg.top(topN), agg.summary(), nil
}

// perfAgg counts perf samples: by leaf symbol (self) and by command,
// leaving the idle loop out.
type perfAgg struct {
	total, idle int
	event       string
	self        map[[2]string]int // {symbol, object} -> samples
	comms       map[string]int
}

// idleRE matches the leaf symbols of an idle CPU (the idle task halting
// or polling). A sample of the idle task that interrupt or softirq work
// took over has that work as its leaf, and counts as busy.
var idleRE = regexp.MustCompile(`(^|_)(safe_halt|halt|idle|mwait)(_|$)|^pvm_safe_halt|^cpuidle_|^intel_idle|^acpi_idle|^poll_idle|^default_idle`)

// irqOnRE matches the functions that switch interrupts back on. Without
// a hardware PMU (as in this VM) perf samples with a timer interrupt, so
// a sample due while interrupts were off is taken where they come back
// on: it belongs to the code that ran with them off, which is best
// approximated by the function that switched them on, the caller.
var irqOnRE = regexp.MustCompile(`^(pvm_irq_enable|native_irq_enable|arch_local_irq_enable|__raw_callee_save_.*irq_enable.*|_raw_spin_unlock_irqrestore|_raw_spin_unlock_irq)$`)

// irqOnMark follows a symbol charged with the samples of an irqOnRE
// function it called.
const irqOnMark = " †"

// aggregatePerf reads `perf script -F comm,pid,tid,cpu,event,ip,sym,dso`
// output: a header line per sample ("comm pid/tid [cpu] event:")
// followed by its call chain, innermost frame first ("addr sym (dso)"),
// and a blank line.
func aggregatePerf(r io.Reader) (*perfAgg, error) {
	a := &perfAgg{self: map[[2]string]int{}, comms: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var comm string
	pid := -1
	var frames [][2]string
	flush := func() {
		if len(frames) == 0 {
			return
		}
		a.add(comm, pid, frames)
		frames = frames[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush()
			var event string
			comm, pid, event = parsePerfHeader(line)
			if a.event == "" {
				a.event = event
			}
			continue
		}
		sym, obj := parsePerfFrame(line)
		frames = append(frames, [2]string{sym, obj})
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if a.total == 0 {
		return nil, errors.New("perf script: no samples")
	}
	return a, nil
}

// add counts one sample with its call chain, leaf first.
func (a *perfAgg) add(comm string, pid int, frames [][2]string) {
	a.total++
	leaf := frames[0]
	if pid == 0 && idleRE.MatchString(leaf[0]) {
		a.idle++
		return
	}
	i := 0
	for i < len(frames)-1 && irqOnRE.MatchString(frames[i][0]) {
		i++
	}
	if i > 0 {
		leaf = [2]string{frames[i][0] + irqOnMark, frames[i][1]}
	}
	a.self[leaf]++
	a.comms[comm]++
}

// parsePerfHeader splits "comm with spaces  1234/1235 [001] cpu-clock:ppp: "
// into the command, the pid and the event; the pid is -1 when the line
// does not parse.
func parsePerfHeader(line string) (comm string, pid int, event string) {
	f := strings.Fields(line)
	if n := len(f); n > 0 && strings.HasSuffix(f[n-1], ":") {
		event, _, _ = strings.Cut(f[n-1], ":")
	}
	for i := len(f) - 1; i >= 1; i-- {
		pidTid, _, ok := strings.Cut(f[i], "/")
		if !ok {
			continue
		}
		if pid, err := strconv.Atoi(pidTid); err == nil {
			return strings.Join(f[:i], " "), pid, event
		}
	}
	return strings.TrimSpace(line), -1, event
}

// parsePerfFrame splits "ffffffff8225f325 pvm_safe_halt_hc ([kernel.kallsyms])".
func parsePerfFrame(line string) (sym, obj string) {
	s := strings.TrimSpace(line)
	if _, rest, ok := strings.Cut(s, " "); ok {
		s = strings.TrimSpace(rest)
	}
	if i := strings.LastIndex(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		sym, obj = s[:i], s[i+2:len(s)-1]
	} else {
		sym = s
	}
	if i := strings.LastIndex(sym, "+0x"); i > 0 {
		sym = sym[:i]
	}
	return sym, filepath.Base(obj)
}

// busy is the number of samples that were not idle.
func (a *perfAgg) busy() int { return a.total - a.idle }

// top returns the n symbols with most self samples.
func (a *perfAgg) top(n int) []ProfRow {
	var rows []ProfRow
	for k, v := range a.self {
		rows = append(rows, ProfRow{Func: k[0], Object: k[1], Flat: float64(v), FlatPct: 100 * float64(v) / float64(max(a.busy(), 1))})
	}
	slices.SortFunc(rows, func(x, y ProfRow) int {
		if x.Flat != y.Flat {
			return int(y.Flat - x.Flat)
		}
		return strings.Compare(x.Func, y.Func)
	})
	return rows[:min(n, len(rows))]
}

// summary says how many samples there were and which commands the busy
// ones ran in (softirq work on an idle CPU counts as "swapper").
func (a *perfAgg) summary() string {
	type kv struct {
		k string
		v int
	}
	var cs []kv
	for k, v := range a.comms {
		cs = append(cs, kv{k, v})
	}
	slices.SortFunc(cs, func(x, y kv) int {
		if x.v != y.v {
			return y.v - x.v
		}
		return strings.Compare(x.k, y.k)
	})
	var parts []string
	for _, c := range cs[:min(5, len(cs))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", c.k, 100*float64(c.v)/float64(max(a.busy(), 1))))
	}
	return fmt.Sprintf("%d %s samples at %d Hz per CPU, %.0f%% of them busy; busy samples by command: %s",
		a.total, a.event, perfFreq, 100*float64(a.busy())/float64(a.total), strings.Join(parts, ", "))
}

// modulePrefix is cut from function names in the tables.
const modulePrefix = "github.com/vxswitch/vxswitch/"

// code formats a function or symbol name for a Markdown table cell.
func code(s string) string {
	s = strings.TrimPrefix(s, modulePrefix)
	s = strings.ReplaceAll(s, "|", `\|`)
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}

// metricTitle names a pps metric in a heading.
func metricTitle(m string) string {
	if m == "local-pps" {
		return "local pps"
	}
	return "tunnel pps"
}

// renderProfiles writes the "CPU profiles" part of the section.
func (r *Results) renderProfiles(b *strings.Builder) {
	if len(r.Profiles) == 0 {
		return
	}
	b.WriteString("\n## CPU profiles\n\n" +
		"`-profile` and `-perf` take these in one more pps window per contender and metric, after the counted runs. " +
		"That window is not in the table above, since profiling costs CPU itself; its rates are under each heading. " +
		"**pprof**: the agent's Go CPU profile of the window (100 samples/s), fetched from /debug/pprof/profile on its control socket; " +
		"flat is time in the function itself, cum includes what it calls, both as a share of the profile's samples; " +
		"a system call is one frame, the kernel's work inside it is not broken down, and the samples can add up to less " +
		"than the switch CPU read from /proc for the same window. " +
		"**perf**: `perf record -a -g` of all CPUs, kernel and user, every process; self samples of each symbol as a share " +
		"of the busy samples (the idle loop left out). It shows what pprof cannot: the TAP, veth and UDP paths, softirq, trafgen. " +
		"Without a hardware PMU (as in a VM) perf samples on a timer interrupt, so a sample due while interrupts were off " +
		"is taken where they come back on (pvm_irq_enable, _raw_spin_unlock_irqrestore, ...); such samples are charged to " +
		"the function that switched interrupts back on and marked †: they stand for the work it did with them off.\n")
	var ms []string
	for _, p := range r.Profiles {
		if !slices.Contains(ms, p.Metric) {
			ms = append(ms, p.Metric)
		}
	}
	slices.SortStableFunc(ms, func(a, b string) int { return slices.Index(allMetrics, a) - slices.Index(allMetrics, b) })
	cs := r.contenders()
	for _, p := range r.Profiles {
		if !slices.Contains(cs, p.Contender) {
			cs = append(cs, p.Contender)
		}
	}
	for _, m := range ms {
		for _, c := range cs {
			for _, tool := range []string{"pprof", "perf"} {
				for _, p := range r.Profiles {
					if p.Metric == m && p.Contender == c && p.Tool == tool {
						renderProfile(b, p)
					}
				}
			}
		}
	}
}

func renderProfile(b *strings.Builder, p Profile) {
	fmt.Fprintf(b, "\n### %s, %s: %s, %s\n\n%s UTC · %s\n\n", p.Contender, metricTitle(p.Metric), p.Source, p.Tool, p.Date, p.Summary)
	if len(p.Flat) == 0 {
		b.WriteString("No samples.\n")
		return
	}
	switch p.Tool {
	case "pprof":
		b.WriteString("| # | by flat | flat ms | flat % | by cum | cum ms | cum % |\n|---|---|---|---|---|---|---|\n")
		for i := range max(len(p.Flat), len(p.Cum)) {
			cells := []string{strconv.Itoa(i + 1), "", "", "", "", "", ""}
			if i < len(p.Flat) {
				f := p.Flat[i]
				cells[1], cells[2], cells[3] = code(f.Func), fmt.Sprintf("%.0f", f.Flat), fmt.Sprintf("%.1f", f.FlatPct)
			}
			if i < len(p.Cum) {
				f := p.Cum[i]
				cells[4], cells[5], cells[6] = code(f.Func), fmt.Sprintf("%.0f", f.Cum), fmt.Sprintf("%.1f", f.CumPct)
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
	case "perf":
		b.WriteString("| # | symbol (self) | object | samples | % of busy |\n|---|---|---|---|---|\n")
		for i, f := range p.Flat {
			fmt.Fprintf(b, "| %d | %s | %s | %.0f | %.1f |\n", i+1, code(f.Func), f.Object, f.Flat, f.FlatPct)
		}
	}
}
