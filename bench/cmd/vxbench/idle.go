package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes returns the busy and total jiffies of all CPUs from /proc/stat.
func cpuTimes() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// busyFraction measures how busy the CPUs are over d (0 to 1).
func busyFraction(d time.Duration) float64 {
	b0, t0, err := cpuTimes()
	if err != nil {
		return 0
	}
	time.Sleep(d)
	b1, t1, err := cpuTimes()
	if err != nil || t1 == t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}

// waitIdle waits, at most max, until the CPUs are less than 25 % busy
// for a second, so that a run does not measure other people's builds.
// It returns the last busy fraction seen.
func waitIdle(max time.Duration) float64 {
	if max <= 0 {
		return 0
	}
	deadline := time.Now().Add(max)
	said := false
	for {
		f := busyFraction(time.Second)
		if f < 0.25 || time.Now().After(deadline) {
			if said {
				fmt.Printf("(CPU %.0f%% busy) ", 100*f)
			}
			return f
		}
		if !said {
			fmt.Printf("waiting for idle CPUs (%.0f%% busy)... ", 100*f)
			said = true
		}
	}
}
