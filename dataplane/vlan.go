package dataplane

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxVLAN is the highest usable VLAN ID (4095 is reserved).
const MaxVLAN = 4094

// VLANMode is a port's VLAN behaviour, with Open vSwitch's names.
type VLANMode uint8

const (
	ModeTrunk          VLANMode = iota // tagged; untagged ingress is VLAN 0
	ModeAccess                         // one VLAN (tag), untagged on the wire
	ModeNativeUntagged                 // tag untagged, trunks tagged
	ModeNativeTagged                   // tag carried untagged on ingress, always tagged on egress
)

var modeNames = [...]string{"trunk", "access", "native-untagged", "native-tagged"}

func (m VLANMode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "VLANMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseVLANMode parses an Open vSwitch vlan_mode name.
func ParseVLANMode(s string) (VLANMode, error) {
	for i, n := range modeNames {
		if s == n {
			return VLANMode(i), nil
		}
	}
	return 0, fmt.Errorf("vlan-mode %q: want one of %s", s, strings.Join(modeNames[:], ", "))
}

// VLANSet is a set of VLAN IDs 0-4095 as a bitmap; the zero value is empty.
type VLANSet [64]uint64

func (s *VLANSet) Add(v uint16)      { s[v>>6&63] |= 1 << (v & 63) }
func (s *VLANSet) Has(v uint16) bool { return s[v>>6&63]&(1<<(v&63)) != 0 }

// Empty reports whether no VLAN is in the set.
func (s *VLANSet) Empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// List returns the members in ascending order.
func (s *VLANSet) List() []uint16 {
	var out []uint16
	for v := 0; v <= 4095; v++ {
		if s.Has(uint16(v)) {
			out = append(out, uint16(v))
		}
	}
	return out
}

// String formats the set as ranges: "7,220-221".
func (s *VLANSet) String() string {
	var b strings.Builder
	l := s.List()
	for i := 0; i < len(l); {
		j := i
		for j+1 < len(l) && l[j+1] == l[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(l[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(l[j])))
		}
		i = j + 1
	}
	return b.String()
}

// ParseVLANRange parses one item of a trunks list: "7" or "220-221".
func ParseVLANRange(item string, s *VLANSet) error {
	item = strings.TrimSpace(item)
	lo, hi, isRange := strings.Cut(item, "-")
	a, err := parseVLAN(lo)
	if err != nil {
		return err
	}
	b := a
	if isRange {
		if b, err = parseVLAN(hi); err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("VLAN range %q: end before start", item)
		}
	}
	for v := a; v <= b; v++ {
		s.Add(v)
	}
	return nil
}

// ParseVLANList parses a comma-separated trunks list: "7,220-221".
func ParseVLANList(list string) (VLANSet, error) {
	var s VLANSet
	for _, item := range strings.Split(list, ",") {
		if err := ParseVLANRange(item, &s); err != nil {
			return s, err
		}
	}
	return s, nil
}

func parseVLAN(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > MaxVLAN {
		return 0, fmt.Errorf("VLAN %q: want a number from 0 to %d", s, MaxVLAN)
	}
	return uint16(n), nil
}
