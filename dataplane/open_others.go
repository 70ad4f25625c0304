//go:build !linux

package dataplane

import "errors"

// OpenDevice needs Linux (TAP and AF_PACKET).
func OpenDevice(PortConfig) (Port, error) { return nil, errors.New("ports need Linux") }

func linkMTU(string) int { return 0 }

var defaultOpen = OpenDevice
