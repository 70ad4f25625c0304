package fdb

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// MAC is an Ethernet address. It is a comparable value so that keys made
// of it can be map keys without allocation.
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsMulticast reports whether m is a group address (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// String formats m as 00:16:3e:2d:4f:16. It allocates.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC parses a 48-bit MAC address in any form net.ParseMAC accepts.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("MAC %q: not a 48-bit address", s)
	}
	return MAC(hw), nil
}

// Key identifies an FDB entry: one MAC in one VLAN.
type Key struct {
	VLAN uint16
	MAC  MAC
}

// PortID names a switch port. The owner of the table (the dataplane)
// assigns them; local ports and the VXLAN tunnel share this space.
type PortID uint16

// NoPort is no port at all; as a Filter.Port it means "any port".
const NoPort PortID = 0xffff

// Dest is where frames for a key go.
type Dest struct {
	Port PortID
	// VTEP is the remote tunnel endpoint behind which the MAC sits, valid
	// only when Port is the tunnel; the zero Addr for local ports.
	VTEP netip.Addr
}

// Entry is one row of the table, as Entries reports it.
type Entry struct {
	Key
	Dest
	Static   bool
	LastSeen int64 // Now() units (monotonic nanoseconds) of the last frame seen
}

// LearnReq is a learn queued during a read-locked batch (see NeedsLearn).
type LearnReq struct {
	Key  Key
	Dest Dest
}

// Filter selects entries for Flush. Zero value: every learned entry.
type Filter struct {
	HasVLAN bool
	VLAN    uint16
	Port    PortID // NoPort: any port. NB the zero value 0 is port 0, so set it.
	VTEP    netip.Addr
	Static  bool // also remove static entries
}

// Stats are table-wide counters.
type Stats struct {
	Entries   int    `json:"entries"`
	Static    int    `json:"static"`
	Capacity  int    `json:"capacity"`
	Learned   uint64 `json:"learned"`   // new entries learned
	Moves     uint64 `json:"moves"`     // MACs that moved to another port
	Evictions uint64 `json:"evictions"` // removed because the table or a port limit was full
	Aged      uint64 `json:"aged"`      // removed by ageing
	Refused   uint64 `json:"refused"`   // not learned: table full of static entries
}

// PortStats are per-port counters.
type PortStats struct {
	Entries int    `json:"entries"`
	Moves   uint64 `json:"moves"` // MACs that moved onto this port
}

var clockStart = time.Now()

// Now is the table's clock: monotonic nanoseconds since process start.
// Callers read it once per batch and pass it in.
func Now() int64 { return int64(time.Since(clockStart)) }
