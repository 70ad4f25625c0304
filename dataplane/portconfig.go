package dataplane

import (
	"fmt"
	"net"
	"net/netip"
)

// PortType says how the switch reaches a port's frames.
type PortType string

const (
	// PortInternal is a TAP the switch creates and owns.
	PortInternal PortType = "internal"
	// PortSystem is an existing interface reached through AF_PACKET.
	PortSystem PortType = "system"
)

// PortConfig is one port as configured (YAML, or `vxswitch port add`).
type PortConfig struct {
	Name   string
	Type   PortType
	Mode   VLANMode
	HasTag bool
	Tag    uint16
	// Trunks lists the VLANs a trunk carries; empty means all of them.
	Trunks VLANSet
	// ModeSet is true when the mode was given explicitly; otherwise
	// Normalize infers it from Tag and Trunks as Open vSwitch does.
	ModeSet bool
	MTU     int
	// NetNS is a path such as /run/netns/blue-c0; the kernel side of an
	// internal port is moved there. Empty: stays in the agent's namespace.
	NetNS     string
	Addresses []netip.Prefix
	// MAC is the kernel side's Ethernet address of an internal port; nil
	// leaves the random one the kernel gives a new TAP, which changes
	// each time the agent creates the port.
	MAC net.HardwareAddr
	// MACLimit bounds the FDB entries learned on this port; 0 = no limit.
	MACLimit int
	// Queues is how many queues the device is opened with (OpenDevice):
	// TAP queues of an internal port, fanout sockets of a system port.
	// 0 means the switch's Config.Workers; 1 opens the device as a
	// single-queue one, exactly as before queues existed.
	Queues int
}

// Normalize infers the VLAN mode when it was not given and checks that the
// combination makes sense.
func (c *PortConfig) Normalize() error {
	if !c.ModeSet {
		switch {
		case c.HasTag && !c.Trunks.Empty():
			c.Mode = ModeNativeUntagged
		case c.HasTag:
			c.Mode = ModeAccess
		default:
			c.Mode = ModeTrunk
		}
	}
	switch c.Mode {
	case ModeAccess, ModeNativeUntagged, ModeNativeTagged:
		if !c.HasTag {
			return fmt.Errorf("port %q: vlan-mode %s needs a tag", c.Name, c.Mode)
		}
	case ModeTrunk:
		if c.HasTag {
			return fmt.Errorf("port %q: vlan-mode trunk takes no tag", c.Name)
		}
	}
	if c.Mode == ModeAccess && !c.Trunks.Empty() {
		return fmt.Errorf("port %q: vlan-mode access takes no trunks", c.Name)
	}
	if c.Type != PortInternal && c.Type != PortSystem {
		return fmt.Errorf("port %q: type %q: want internal or system", c.Name, c.Type)
	}
	if c.Queues < 0 || c.Queues > MaxQueues {
		return fmt.Errorf("port %q: %d queues: want 1-%d", c.Name, c.Queues, MaxQueues)
	}
	if c.Type == PortSystem && (c.NetNS != "" || len(c.Addresses) > 0 || c.MAC != nil) {
		return fmt.Errorf("port %q: netns, addresses and mac apply to internal ports only", c.Name)
	}
	if c.MAC != nil {
		if err := checkPortMAC(c.MAC); err != nil {
			return fmt.Errorf("port %q: %w", c.Name, err)
		}
	}
	return nil
}

// ParseMAC parses the Ethernet address of an internal port
// ("02:00:5e:10:00:01"): 48 bits, unicast and not all zeros, as the
// kernel takes for an interface.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("mac %q: want an Ethernet address such as 02:00:5e:10:00:01", s)
	}
	if err := checkPortMAC(mac); err != nil {
		return nil, err
	}
	return mac, nil
}

func checkPortMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("mac %s: want a 48-bit Ethernet address", mac)
	case mac[0]&1 != 0:
		return fmt.Errorf("mac %s: a multicast address cannot be an interface's", mac)
	case [6]byte(mac) == [6]byte{}:
		return fmt.Errorf("mac %s: all zeros cannot be an interface's", mac)
	}
	return nil
}

// Carries reports whether the port is a member of vlan.
func (c *PortConfig) Carries(vlan uint16) bool {
	switch c.Mode {
	case ModeAccess:
		return vlan == c.Tag
	case ModeTrunk:
		return c.Trunks.Empty() || c.Trunks.Has(vlan)
	default: // native modes
		return vlan == c.Tag || c.Trunks.Empty() || c.Trunks.Has(vlan)
	}
}
