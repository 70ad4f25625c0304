package measure

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name         string
		line         string
		utime, stime uint64
		wantErr      bool
	}{
		{
			name:  "plain",
			line:  "4242 (vxswitch) S 1 4242 4242 0 -1 4194560 1523 0 0 0 731 266 0 0 20 0 9 0 123456 1268142080 3027 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n",
			utime: 731, stime: 266,
		},
		{
			// comm may hold spaces and parentheses, even ") S 1 2": the
			// fields count from the last ')'.
			name:  "comm with spaces and parens",
			line:  "77 (we ir) d (x) S 1 2) R 1 77 77 0 -1 4194304 10 0 0 0 5 3 0 0 20 0 1 0 99 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0",
			utime: 5, stime: 3,
		},
		{name: "kernel thread, empty-looking comm", line: "12 () I 2 0 0 0 -1 69238880 0 0 0 0 0 19 0 0 20 0 1 0 5 0 0 18446744073709551615", utime: 0, stime: 19},
		{name: "no comm", line: "12 S 2 0", wantErr: true},
		{name: "truncated", line: "12 (x) S 1 2 3 4 5 6 7 8 9 10 11", wantErr: true},
		{name: "not a number", line: "12 (x) S 1 2 3 4 5 6 7 8 9 10 u s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, s, err := ParseProcStat(tt.line)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseProcStat = %d, %d; want an error", u, s)
				}
				return
			}
			if err != nil || u != tt.utime || s != tt.stime {
				t.Errorf("ParseProcStat = %d, %d, %v; want %d, %d", u, s, err, tt.utime, tt.stime)
			}
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	in := `cpu  1000 20 300 5000 40 6 70 8 900 10
cpu0 500 10 150 2500 20 3 35 4 450 5
intr 12345
`
	m, err := ParseMachineStat(in)
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq; guest (900, 10) is already in
	// user and nice; steal (8) is no one's work here.
	if m.Busy != 1000+20+300+6+70 || m.Idle != 5000+40 || m.Steal != 8 || m.Total() != 1396+5040+8 {
		t.Errorf("ParseMachineStat = %+v (total %d)", m, m.Total())
	}
	if _, err := ParseMachineStat("cpu0 1 2 3\n"); err == nil {
		t.Error("no all-CPU line: want an error")
	}
	if _, err := ParseMachineStat("cpu 1 2 3 4\n"); err == nil {
		t.Error("short cpu line: want an error")
	}
}

func TestPerMpkt(t *testing.T) {
	tests := []struct {
		cpu     time.Duration
		packets uint64
		want    float64
	}{
		{1500 * time.Millisecond, 1_000_000, 1.5},    // 1.5 µs per packet
		{2 * time.Second, 250_000, 8},                // one core for 2 s at 125 kpps
		{10 * time.Millisecond, 2_000_000, 0.005},    // one clock tick
		{0, 500_000, 0},                              // no CPU used: 0, not an error
		{9990 * time.Millisecond, 1_110_000, 9.0000}, // 9.99 s / 1.11 M
	}
	for _, tt := range tests {
		got, err := PerMpkt(tt.cpu, tt.packets)
		if err != nil || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("PerMpkt(%v, %d) = %v, %v; want %v", tt.cpu, tt.packets, got, err, tt.want)
		}
	}
	if _, err := PerMpkt(time.Second, 0); err == nil || !strings.Contains(err.Error(), "no packets") {
		t.Errorf("PerMpkt with no packets: err = %v, want one saying so", err)
	}
	if d := ticks(123); d != 1230*time.Millisecond {
		t.Errorf("ticks(123) = %v, want 1.23s", d)
	}
}

// TestCPUProbeSelf charges a busy loop in this process to the probe's
// window: the process's time and the machine's busy time must both show
// it. The loop runs until this process has used 300 ms of CPU (by its own
// /proc/self/stat), however busy the machine is.
func TestCPUProbeSelf(t *testing.T) {
	p := NewCPUProbe(os.Getpid())
	if got := p.Procs(); got != nil {
		t.Errorf("Procs before the window = %v, want nil", got)
	}
	if err := p.WindowStart(); err != nil {
		t.Fatal(err)
	}
	c0, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := ProcCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if c-c0 >= 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s of busy loop used only %v of CPU", c-c0)
		}
	}
	if err := p.WindowEnd(); err != nil {
		t.Fatal(err)
	}
	if got := p.ProcsTotal(); got < 300*time.Millisecond {
		t.Errorf("process CPU in the window = %v, want at least the loop's 300ms", got)
	}
	if got := p.Machine(); got < 300*time.Millisecond {
		t.Errorf("machine busy time in the window = %v, want at least the loop's 300ms", got)
	}
	if err := NewCPUProbe(1 << 30).WindowStart(); err == nil {
		t.Error("a pid that does not exist: want an error")
	}
}
