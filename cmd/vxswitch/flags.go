package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/vxswitch/vxswitch/dataplane"
)

// vlanValue is a --vlan/--tag flag: a VLAN ID 0-4094, checked as it is
// parsed so that a bad number is bad usage like any flag error.
type vlanValue struct {
	set bool
	v   uint16
}

func (f *vlanValue) String() string {
	if !f.set {
		return ""
	}
	return strconv.Itoa(int(f.v))
}

func (f *vlanValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a VLAN number 0-%d", dataplane.MaxVLAN)
	}
	if n < 0 || n > dataplane.MaxVLAN {
		return fmt.Errorf("VLAN %d out of range 0-%d", n, dataplane.MaxVLAN)
	}
	f.v, f.set = uint16(n), true
	return nil
}

func (f *vlanValue) Type() string { return "N" }

// ptr is the VLAN as an optional value, nil when the flag was not given.
func (f *vlanValue) ptr() *uint16 {
	if !f.set {
		return nil
	}
	v := f.v
	return &v
}

// printJSON writes v as the control API returns it, indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
