//go:build !linux

package measure

import (
	"errors"
	"time"
)

// Wakeup is Linux-only.
func Wakeup(cpuA, cpuB, rounds int, gap time.Duration) (time.Duration, error) {
	return 0, errors.New("wakeup: Linux only")
}

// WakeupCosts is Linux-only.
func WakeupCosts(rounds int, gap time.Duration) (cross, same time.Duration, err error) {
	return 0, 0, errors.New("wakeup: Linux only")
}
