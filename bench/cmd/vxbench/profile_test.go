package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pprofOut = `File: vxswitch
Build ID: a48aaa7b773cbe0605d20965cf2523dbd5e8c371
Type: cpu
Time: 2026-11-22 17:13:11 UTC
Duration: 2.01s, Total samples = 840ms (41.75%)
Showing nodes accounting for 840ms, 100% of 840ms total
Showing top 10 nodes out of 35
      flat  flat%   sum%        cum   cum%
     720ms 85.71% 85.71%      720ms 85.71%  internal/runtime/syscall/linux.Syscall6
      40ms  4.76% 90.48%      720ms 85.71%  syscall.RawSyscall6
         0     0%   100%       80ms  9.52%  github.com/vxswitch/vxswitch/dataplane.(*worker).flush (inline)
`

func TestParsePprofTop(t *testing.T) {
	rows, samples, err := parsePprofTop(pprofOut)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProfRow{
		{Func: "internal/runtime/syscall/linux.Syscall6", Flat: 720, FlatPct: 85.71, Cum: 720, CumPct: 85.71},
		{Func: "syscall.RawSyscall6", Flat: 40, FlatPct: 4.76, Cum: 720, CumPct: 85.71},
		{Func: "github.com/vxswitch/vxswitch/dataplane.(*worker).flush (inline)", Flat: 0, FlatPct: 0, Cum: 80, CumPct: 9.52},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if samples != "0.84 s of CPU samples in 2.01s (41.75% of one CPU)" {
		t.Errorf("samples = %q", samples)
	}
	if _, _, err := parsePprofTop("File: x\nType: inuse_space\n"); err == nil {
		t.Error("no Total samples line: want an error")
	}
	if _, _, err := parsePprofTop(pprofOut + "garbage here\n"); err == nil {
		t.Error("an unparsable row: want an error")
	}
}

// perfScript is `perf script -F comm,pid,tid,cpu,event,ip,sym,dso` of
// five samples: an idle CPU, softirq work that interrupted the idle
// task (busy), a sample deferred to the point where interrupts came
// back on, and two user-space samples of a command with a space in it.
const perfScript = `swapper     0/0     [000] cpu-clock:ppp: 
	ffffffff8225f325 pvm_safe_halt_hc ([kernel.kallsyms])
	ffffffff82260f35 default_idle ([kernel.kallsyms])
	ffffffff813cff74 do_idle ([kernel.kallsyms])

swapper     0/0     [001] cpu-clock:ppp: 
	ffffffff81eb98de net_rx_action+0x12 ([kernel.kallsyms])
	ffffffff8136963d handle_softirqs ([kernel.kallsyms])
	ffffffff8225f325 pvm_safe_halt_hc ([kernel.kallsyms])
	ffffffff813cff74 do_idle ([kernel.kallsyms])

vxswitch  3474/3480  [000] cpu-clock:ppp: 
	ffffffff8225f2d9 pvm_irq_enable ([kernel.kallsyms])
	ffffffff8225f201 __raw_callee_save_pvm_irq_enable ([kernel.kallsyms])
	ffffffff8226dbf8 _raw_spin_unlock_irqrestore ([kernel.kallsyms])
	ffffffff81e8435e sock_def_readable ([kernel.kallsyms])
	ffffffff820a59f0 __udp_enqueue_schedule_skb ([kernel.kallsyms])

my prog  77/78  [001] cpu-clock:ppp: 
	            b74e main.spin (/usr/local/bin/my prog)

my prog  77/78  [001] cpu-clock:ppp: 
	            b74e main.spin (/usr/local/bin/my prog)
`

func TestAggregatePerf(t *testing.T) {
	a, err := aggregatePerf(strings.NewReader(perfScript))
	if err != nil {
		t.Fatal(err)
	}
	if a.total != 5 || a.idle != 1 || a.busy() != 4 || a.event != "cpu-clock" {
		t.Errorf("total %d, idle %d, busy %d, event %q; want 5, 1, 4, cpu-clock", a.total, a.idle, a.busy(), a.event)
	}
	top := a.top(10)
	want := []ProfRow{
		{Func: "main.spin", Object: "my prog", Flat: 2, FlatPct: 50},
		{Func: "net_rx_action", Object: "[kernel.kallsyms]", Flat: 1, FlatPct: 25},
		{Func: "sock_def_readable" + irqOnMark, Object: "[kernel.kallsyms]", Flat: 1, FlatPct: 25},
	}
	if len(top) != len(want) {
		t.Fatalf("top = %+v, want %+v", top, want)
	}
	for i := range want {
		if top[i] != want[i] {
			t.Errorf("top[%d] = %+v, want %+v", i, top[i], want[i])
		}
	}
	if got := a.top(1); len(got) != 1 || got[0].Func != "main.spin" {
		t.Errorf("top(1) = %+v", got)
	}
	sum := a.summary()
	for _, w := range []string{"5 cpu-clock samples", "80% of them busy", "my prog 50%", "swapper 25%", "vxswitch 25%"} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary %q lacks %q", sum, w)
		}
	}
	if _, err := aggregatePerf(strings.NewReader("")); err == nil {
		t.Error("no samples: want an error")
	}
}

func TestParsePerfHeader(t *testing.T) {
	comm, pid, ev := parsePerfHeader("kworker/u4:1-ev  12/12  [001] cpu-clock:ppp: ")
	if comm != "kworker/u4:1-ev" || pid != 12 || ev != "cpu-clock" {
		t.Errorf("got %q %d %q", comm, pid, ev)
	}
	if _, pid, _ := parsePerfHeader("garbage"); pid != -1 {
		t.Errorf("garbage: pid %d, want -1", pid)
	}
}

func profile(c, m, tool, source string, top float64) Profile {
	return Profile{Contender: c, Metric: m, Tool: tool, Source: source, Date: "2026-01-01 00:00", Cmd: "vxbench -profile",
		Summary: "2.0 s window: 100.0 kpps delivered",
		Flat:    []ProfRow{{Func: "github.com/vxswitch/vxswitch/dataplane.(*tapPort).read", Object: "vxswitch", Flat: top, FlatPct: 50, Cum: top, CumPct: 50}},
		Cum:     []ProfRow{{Func: "runtime.goexit", Cum: 2 * top, CumPct: 100}}}
}

// TestProfilesRenderAndKeep renders profiles into RESULTS.md, replaces
// one contender's pprof profiles with a new run, and rebuilds the file
// from its data block alone (-render-only).
func TestProfilesRenderAndKeep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	first := []Profile{
		profile("vxswitch", "pps", "pprof", "blue agent (sender side: port to tunnel)", 300),
		profile("vxswitch", "pps", "pprof", "green agent (receiver side: tunnel to port)", 200),
		profile("kernel", "local-pps", "perf", "all CPUs", 40),
	}
	if err := UpdateFile(path, []Entry{entry("vxswitch", "pps", 100)}, first); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	doc := string(b) + "\nHand-written after.\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	// A local pps run of one host replaces nothing of the tunnel's.
	if err := UpdateFile(path, nil, []Profile{profile("vxswitch", "local-pps", "pprof", "blue agent", 123)}); err != nil {
		t.Fatal(err)
	}
	// A new tunnel run replaces both hosts' pprof profiles.
	if err := UpdateFile(path, nil, []Profile{profile("vxswitch", "pps", "pprof", "blue agent (sender side: port to tunnel)", 310)}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	got := string(b)
	for _, want := range []string{
		"## CPU profiles",
		"### vxswitch, tunnel pps: blue agent (sender side: port to tunnel), pprof",
		"| 1 | `dataplane.(*tapPort).read` | 310 | 50.0 | `runtime.goexit` | 620 | 100.0 |",
		"### vxswitch, local pps: blue agent, pprof",
		"### kernel, local pps: all CPUs, perf",
		"| 1 | `dataplane.(*tapPort).read` | vxswitch | 40 | 50.0 |",
		"Hand-written after.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "green agent") {
		t.Errorf("the old green profile survived a new tunnel run:\n%s", got)
	}
	// Tunnel before local, vxswitch before kernel.
	if i, j := strings.Index(got, "vxswitch, tunnel pps"), strings.Index(got, "kernel, local pps"); i < 0 || j < i {
		t.Errorf("profiles out of order:\n%s", got)
	}
	if err := UpdateFile(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if string(b) != got {
		t.Errorf("-render-only changed the file:\n%s", b)
	}
}
