package main

import (
	"fmt"
	"time"

	"github.com/vxswitch/vxswitch/bench/measure"
)

// busyFraction measures how busy the CPUs are over d (0 to 1): the share
// of time that was not idle (time stolen by the hypervisor counts as
// busy here, since it slows a run down as much).
func busyFraction(d time.Duration) float64 {
	m0, err := measure.ReadMachineCPU()
	if err != nil {
		return 0
	}
	time.Sleep(d)
	m1, err := measure.ReadMachineCPU()
	if err != nil || m1.Total() == m0.Total() {
		return 0
	}
	return 1 - float64(m1.Idle-m0.Idle)/float64(m1.Total()-m0.Total())
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
