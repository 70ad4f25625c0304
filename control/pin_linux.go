package control

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// PinCPUs restricts every thread of this process, and so every thread it
// makes later (a new thread inherits its maker's affinity), to cpus, as
// `taskset -a -c` would. Call it before the process does its work: the
// runtime makes threads at any time, so PinCPUs goes over the threads
// until a pass finds none left to move. A CPU this process may not run on
// (not online, or outside its cpuset) is an error, and then nothing moves.
func PinCPUs(cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("cpus: empty CPU list")
	}
	var allowed, want unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("cpus: %w", err)
	}
	for _, c := range cpus {
		if !allowed.IsSet(c) {
			return fmt.Errorf("cpus: CPU %d is not one this process may run on (it may use %s)", c, FormatCPUList(setCPUs(&allowed)))
		}
		want.Set(c)
	}
	for pass := 0; pass < 10; pass++ {
		moved, err := pinThreads(&want)
		if err != nil || moved == 0 {
			return err
		}
	}
	return fmt.Errorf("cpus: threads kept appearing while pinning them")
}

// pinThreads sets want on each thread of the process that does not have
// it yet and says how many it set.
func pinThreads(want *unix.CPUSet) (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("cpus: %w", err)
	}
	moved := 0
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var have unix.CPUSet
		if unix.SchedGetaffinity(tid, &have) == nil && have == *want {
			continue
		}
		if err := unix.SchedSetaffinity(tid, want); err != nil {
			if err == unix.ESRCH { // the thread exited meanwhile
				continue
			}
			return moved, fmt.Errorf("cpus: thread %d: %w", tid, err)
		}
		moved++
	}
	return moved, nil
}

// setCPUs lists the CPUs in s.
func setCPUs(s *unix.CPUSet) []int {
	var cpus []int
	for c := 0; c <= maxCPU; c++ {
		if s.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}
