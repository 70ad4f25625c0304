// Package busypoll lets a reader keep polling its file descriptor for a
// while after traffic instead of parking in Go's netpoller, trading CPU
// for latency the way Linux's net.core.busy_poll and Open vSwitch's PMD
// threads do: a parked reader costs a thread wake-up (tens of µs on a VM)
// per packet when packets come one at a time.
package busypoll

import (
	"runtime"
	"time"
)

// Spin polls ready until it says true or window has passed since last,
// yielding the processor between polls so other goroutines run. It
// returns whether ready said true; false means the caller should block.
func Spin(ready func() bool, last time.Time, window time.Duration) bool {
	for time.Since(last) < window {
		if ready() {
			return true
		}
		runtime.Gosched()
		yield()
	}
	return false
}
