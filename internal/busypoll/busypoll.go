// Package busypoll lets a reader keep polling its file descriptor for a
// while after traffic instead of parking in Go's netpoller, trading CPU
// for latency the way Linux's net.core.busy_poll and Open vSwitch's PMD
// threads do: a parked reader costs a thread wake-up (tens of µs on a VM)
// per packet when packets come one at a time.
package busypoll

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Activity is when a group of readers (one switch's) last read a frame.
// They share it so that all of them poll while any of them has traffic,
// and all of them sleep once the group has been idle for the window (see
// Waker for why not one by one). Make it with NewActivity.
type Activity struct {
	base time.Time    // set by NewActivity; a monotonic reference
	last atomic.Int64 // ns since base of the last Mark; 0 = never
}

// NewActivity returns an idle Activity.
func NewActivity() *Activity { return &Activity{base: time.Now()} }

// Mark records traffic now. Readers call it once per batch; it writes the
// shared word only when the recorded time is stale by an eighth of
// window, so readers on different CPUs do not bounce its cache line.
func (a *Activity) Mark(window time.Duration) {
	now := int64(time.Since(a.base)) + 1 // never 0, which means never
	for {
		last := a.last.Load()
		if last != 0 && now-last <= int64(window/8) {
			return
		}
		// Compare-and-swap, not a store: a reader that took now and was
		// then descheduled must not move the time back, or the others
		// would see the switch idle while it is not.
		if a.last.CompareAndSwap(last, now) {
			return
		}
	}
}

// idleFor says how long ago the last Mark was.
func (a *Activity) idleFor() time.Duration {
	last := a.last.Load()
	if last == 0 {
		return 1<<63 - 1
	}
	return time.Since(a.base) - time.Duration(last-1)
}

// Spin polls ready until it says true or act has been idle for window,
// yielding the processor between polls so other goroutines run. It
// returns whether ready said true; false means the caller should block.
func Spin(ready func() bool, act *Activity, window time.Duration) bool {
	for act.idleFor() < window {
		if ready() {
			return true
		}
		runtime.Gosched()
		yield()
	}
	return false
}
