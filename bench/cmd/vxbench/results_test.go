package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxswitch/vxswitch/bench/lab"
)

func entry(c, m string, med float64) Entry {
	return Entry{Contender: c, Metric: m, Unit: unitOf(m), Median: med, Min: med - 1, Max: med + 1,
		Runs: []float64{med - 1, med, med + 1}, Date: "2026-01-01 00:00", Kernel: "6.18", CPU: "cpu × 2", Cmd: "vxbench"}
}

// TestUpdateFileKeepsNotesAndMerges writes results twice, the second
// time for one contender only, and checks that hand-written text outside
// the markers survives and the first run's other contender is kept.
func TestUpdateFileKeepsNotesAndMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := UpdateFile(path, []Entry{entry("kernel", "pps", 179), entry("ovs", "pps", 81)}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	doc := strings.Replace(string(b), beginMarker, "Hand-written before.\n\n"+beginMarker, 1) + "\n## Notes\n\nHand-written after.\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateFile(path, []Entry{entry("kernel", "pps", 200), entry("vxswitch", "pps", 100)}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	got := string(b)
	for _, want := range []string{
		"Hand-written before.", "Hand-written after.", "# vxswitch benchmark results",
		"| metric | unit | vxswitch | kernel | ovs | vxswitch/kernel | vxswitch/ovs |",
		"| tunnel: 64-B packets delivered | kpps | 100.0 (99.0–101.0) | 200.0 (199.0–201.0) | 81.0 (80.0–82.0) | 0.50 | 1.23 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, beginMarker); n != 1 {
		t.Errorf("%d begin markers, want 1", n)
	}
	_, _, r, found, err := parseSection(got)
	if err != nil || !found || len(r.Entries) != 3 {
		t.Errorf("parseSection: found=%v err=%v entries=%d, want 3", found, err, len(r.Entries))
	}
}

func TestRenderFailedAndNotes(t *testing.T) {
	var r Results
	stalled := entry("ovs", "tcp1500", 0)
	stalled.Note = "run 1: 0 Gbit/s, TCP stalled"
	skip := Entry{Contender: "vxswitch", Metric: "tcp1500", Failed: true, Note: "skipped: no binary"}
	r.Merge([]Entry{stalled, skip})
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"n/a¹", "0.00 (-1.00–1.00) ¹", "- ovs, tcp1500: run 1: 0 Gbit/s, TCP stalled", "- vxswitch, tcp1500: skipped: no binary", "| – |"} {
		if !strings.Contains(got, want) {
			t.Errorf("Render lacks %q:\n%s", want, got)
		}
	}
}

func TestMergeUnavailableKeepsNumbers(t *testing.T) {
	var r Results
	r.Merge([]Entry{entry("vxswitch", "pps", 100), entry("ovs", "pps", 80)})
	r.Merge([]Entry{
		{Contender: "vxswitch", Metric: "pps", Failed: true, Note: skippedPrefix + "no vxswitch binary given"},
		{Contender: "ovs", Metric: "pps", Failed: true, Note: "could not start: ovsdb-server exited"},
	})
	if e, _ := r.get("vxswitch", "pps"); e.Failed || e.Median != 100 {
		t.Errorf("vxswitch pps = %+v, want the earlier 100 kept", e)
	}
	if e, _ := r.get("ovs", "pps"); !e.Failed {
		t.Errorf("ovs pps = %+v, want the start failure recorded", e)
	}
}

// TestSummarizeCPU checks the CPU rows of a pps metric: numbers for a
// contender with switch processes; "–" with the reason for the kernel's
// switch row, never a silent 0; the machine row for both.
func TestSummarizeCPU(t *testing.T) {
	c := config{runs: 2}
	series := map[string][]float64{
		"pps": {100, 110}, "pps-offered": {200, 210}, "pps-cpu-machine": {9.5, 10.5},
	}
	kernel := &contestant{name: "kernel", series: series, notes: map[string]*noteSet{}}
	vx := &contestant{name: "vxswitch", procs: []*lab.Proc{{Name: "vxswitch"}}, notes: map[string]*noteSet{},
		series: map[string][]float64{"pps": {100, 110}, "pps-offered": {200, 210}, "pps-cpu": {4, 6}, "pps-cpu-machine": {9.5, 10.5}}}
	var r Results
	r.Merge(summarize(Entry{}, c, kernel, "pps"))
	r.Merge(summarize(Entry{}, c, vx, "pps"))
	if e, ok := r.get("kernel", "pps-cpu"); !ok || !e.NA || e.Failed || e.Median != 0 || e.Note != noSwitchProcNote {
		t.Errorf("kernel pps-cpu = %+v, want NA with the reason", e)
	}
	if e, _ := r.get("kernel", "pps-cpu-machine"); e.NA || e.Failed || e.Median != 10 {
		t.Errorf("kernel pps-cpu-machine = %+v, want median 10", e)
	}
	if e, _ := r.get("vxswitch", "pps-cpu"); e.NA || e.Median != 5 || e.Min != 4 || e.Max != 6 || e.Unit != "CPU s/Mpkt" {
		t.Errorf("vxswitch pps-cpu = %+v, want 5 (4–6) CPU s/Mpkt", e)
	}
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| tunnel: switch CPU s per M packets delivered (lower is better) | CPU s/Mpkt | 5.00 (4.00–6.00) | – ¹ | – |",
		"| tunnel: machine CPU s per M packets delivered (lower is better) | CPU s/Mpkt | 10.00 (9.50–10.50) | 10.00 (9.50–10.50) | 1.00 |",
		"- kernel, pps-cpu: " + noSwitchProcNote,
		"CPU rows: CPU time used in the pps window",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render lacks %q:\n%s", want, got)
		}
	}
	// The NA entry survives the round trip through the data block.
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateFile(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != got {
		t.Errorf("render-only changed the section:\n%s", b)
	}
}

// TestNotesShared checks that rows with the same note (a start failure)
// share one line, and that a CPU row failed for lack of packets says so.
func TestNotesShared(t *testing.T) {
	var r Results
	why := "could not start: vxswitch-w2: set up: host blue: agent exited at start: workers: unknown key"
	r.Merge(skipped(Entry{}, "vxswitch-w2", []string{"pps"}, why))
	x := &contestant{name: "ovs", procs: []*lab.Proc{{Name: "ovs-vswitchd"}}, notes: map[string]*noteSet{},
		series: map[string][]float64{"pps": {0}, "pps-offered": {50}}}
	x.noteSet("pps-cpu").add(1, "no packets delivered in the window")
	x.noteSet("pps-cpu-machine").add(1, "no packets delivered in the window")
	r.Merge(summarize(Entry{}, config{runs: 1}, x, "pps"))
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- vxswitch-w2, pps, pps-cpu, pps-cpu-machine: " + why + "\n",
		"- ovs, pps-cpu, pps-cpu-machine: run 1 of 1: no packets delivered in the window\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render lacks %q:\n%s", want, got)
		}
	}
}

// TestRatiosForVethVariant: vxswitch-veth and vxswitch-pin get their own
// ratio columns next to vxswitch's.
func TestRatiosForVethVariant(t *testing.T) {
	r := Results{Entries: []Entry{
		entry("vxswitch", "pps", 100), entry("vxswitch-veth", "pps", 300),
		entry("vxswitch-pin", "pps", 120),
		entry("kernel", "pps", 200), entry("ovs", "pps", 50),
	}}
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| vxswitch/kernel | vxswitch/ovs | vxswitch-veth/kernel | vxswitch-veth/ovs | vxswitch-pin/kernel | vxswitch-pin/ovs |",
		"| 0.50 | 2.00 | 1.50 | 6.00 | 0.60 | 2.40 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks %q:\n%s", want, got)
		}
	}
}

// TestRatiosForOVSTap: vxswitch (containers on TAPs) gets a ratio against
// ovs-tap (containers on OVS internal ports, TAPs too), and only
// vxswitch does.
func TestRatiosForOVSTap(t *testing.T) {
	r := Results{Entries: []Entry{
		entry("vxswitch", "local-pps", 200), entry("vxswitch-veth", "local-pps", 600),
		entry("ovs", "local-pps", 250), entry("ovs-tap", "local-pps", 160),
	}}
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| vxswitch/ovs | vxswitch/ovs-tap | vxswitch-veth/ovs |",
		"| 0.80 | 1.25 | 2.40 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "vxswitch-veth/ovs-tap") {
		t.Errorf("render has a vxswitch-veth/ovs-tap column:\n%s", got)
	}
}

// TestRunsShowWakeup: the Runs table has the wake-up cost of each run,
// and a dash for runs stored before vxbench measured it.
func TestRunsShowWakeup(t *testing.T) {
	var r Results
	old := entry("kernel", "ping-p50", 40)
	now := entry("vxswitch", "ping-p50", 280)
	now.Date, now.Wakeup = "2026-01-02 00:00", "129 / 12"
	r.Merge([]Entry{old, now})
	got, err := r.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| date (UTC) | kernel | CPU | load | wake-up | command | contender: metrics |",
		"| 2026-01-01 00:00 | 6.18 | cpu × 2 |  | – | `vxbench` | kernel: ping-p50 |",
		"| 2026-01-02 00:00 | 6.18 | cpu × 2 |  | 129 / 12 | `vxbench` | vxswitch: ping-p50 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render lacks %q:\n%s", want, got)
		}
	}
	// It survives the round trip through the stored JSON.
	_, _, back, found, err := parseSection(beginMarker + "\n" + got + "\n" + endMarker)
	if err != nil || !found {
		t.Fatalf("parseSection: found=%v err=%v", found, err)
	}
	if w := back.Entries[len(back.Entries)-1].Wakeup; w != "129 / 12" {
		t.Errorf("Wakeup after parse = %q, want %q", w, "129 / 12")
	}
}
