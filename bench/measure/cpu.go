package measure

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat (what sysconf(_SC_CLK_TCK) returns): the kernel's ABI fixes
// it at 100 on every architecture Go runs on.
const ClockTicks = 100

// ticks converts clock ticks to a duration.
func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / ClockTicks) }

// ParseProcStat returns utime and stime, in clock ticks, from the text of
// /proc/PID/stat. Both are process-wide: every thread, live or exited.
// The command name (field 2) is in parentheses and may itself hold
// spaces and parentheses, so the fields are counted from its last ')'.
func ParseProcStat(s string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || !strings.Contains(s[:i], "(") {
		return 0, 0, fmt.Errorf("proc stat %.40q: no (comm)", s)
	}
	// After the comm: field 3 (state) is f[0], so field N is f[N-3];
	// utime is field 14 and stime field 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("proc stat: %d fields after the comm, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat utime: %w", err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat stime: %w", err)
	}
	return utime, stime, nil
}

// ProcCPU returns the CPU time (user + system, all threads) process pid
// has used so far.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	u, s, err := ParseProcStat(string(b))
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return ticks(u + s), nil
}

// MachineCPU is the time of all CPUs together from /proc/stat, in clock
// ticks, split three ways.
type MachineCPU struct {
	// Busy is user + nice + system + irq + softirq: work done on this
	// machine, in processes and in the kernel's interrupt context. The
	// guest fields are left out (they are already in user and nice).
	Busy uint64
	// Idle is idle + iowait.
	Idle uint64
	// Steal is time the hypervisor gave this machine's vCPUs to someone
	// else: neither our work nor idle.
	Steal uint64
}

// Total is all the time the CPUs had: Busy + Idle + Steal.
func (m MachineCPU) Total() uint64 { return m.Busy + m.Idle + m.Steal }

// ParseMachineStat reads the all-CPU line ("cpu  ...") of /proc/stat.
func ParseMachineStat(s string) (MachineCPU, error) {
	var m MachineCPU
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return m, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9: %q", len(f), line)
		}
		var v [8]uint64 // user nice system idle iowait irq softirq steal
		for i := range v {
			x, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("/proc/stat: %w", err)
			}
			v[i] = x
		}
		m.Busy = v[0] + v[1] + v[2] + v[5] + v[6]
		m.Idle = v[3] + v[4]
		m.Steal = v[7]
		return m, nil
	}
	return m, errors.New("/proc/stat: no cpu line")
}

// ReadMachineCPU reads /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	return ParseMachineStat(string(b))
}

// PerMpkt returns CPU seconds per million packets, which is also CPU
// microseconds per packet. No packets is an error: there is nothing to
// charge the time to.
func PerMpkt(cpu time.Duration, packets uint64) (float64, error) {
	if packets == 0 {
		return 0, errors.New("no packets delivered in the window")
	}
	return cpu.Seconds() / (float64(packets) / 1e6), nil
}

// A CPUProbe measures, over a PPS window, the CPU time of a set of
// processes and the busy time of the whole machine. Both reads are a few
// microseconds, so they fit in the window's time stamp.
type CPUProbe struct {
	pids       []int
	p0, p1     []time.Duration
	m0, m1     MachineCPU
	start, end bool
}

var _ Probe = (*CPUProbe)(nil)

// NewCPUProbe returns a probe for the processes pids (none: the machine
// only).
func NewCPUProbe(pids ...int) *CPUProbe { return &CPUProbe{pids: pids} }

func (p *CPUProbe) sample() ([]time.Duration, MachineCPU, error) {
	var ds []time.Duration
	for _, pid := range p.pids {
		d, err := ProcCPU(pid)
		if err != nil {
			return nil, MachineCPU{}, fmt.Errorf("CPU time of pid %d: %w", pid, err)
		}
		ds = append(ds, d)
	}
	m, err := ReadMachineCPU()
	return ds, m, err
}

// WindowStart takes the first sample.
func (p *CPUProbe) WindowStart() error {
	var err error
	p.p0, p.m0, err = p.sample()
	p.start = err == nil
	return err
}

// WindowEnd takes the second sample.
func (p *CPUProbe) WindowEnd() error {
	var err error
	p.p1, p.m1, err = p.sample()
	p.end = err == nil
	return err
}

// Procs returns each process's CPU time in the window, in the order of
// the pids; nil before the window closed.
func (p *CPUProbe) Procs() []time.Duration {
	if !p.start || !p.end {
		return nil
	}
	out := make([]time.Duration, len(p.pids))
	for i := range out {
		out[i] = p.p1[i] - p.p0[i]
	}
	return out
}

// ProcsTotal is the sum of Procs.
func (p *CPUProbe) ProcsTotal() time.Duration {
	var sum time.Duration
	for _, d := range p.Procs() {
		sum += d
	}
	return sum
}

// Machine returns the busy time of all CPUs in the window (MachineCPU.Busy).
func (p *CPUProbe) Machine() time.Duration {
	if !p.start || !p.end {
		return 0
	}
	return ticks(p.m1.Busy - p.m0.Busy)
}
