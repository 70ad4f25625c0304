//go:build !linux

package control

import "errors"

// PinCPUs is Linux-only (sched_setaffinity).
func PinCPUs(cpus []int) error {
	return errors.New("cpus: CPU pinning is supported on Linux only")
}
