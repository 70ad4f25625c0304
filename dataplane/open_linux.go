package dataplane

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// OpenDevice opens the device behind a port: for an internal port it
// creates the TAP, then sets its MTU, moves its kernel side into the
// namespace and adds the addresses (and sets its MAC first, when pc.MAC
// says); for a system port it attaches an
// AF_PACKET socket to the existing interface. pc.Queues > 1 opens that
// many TAP queues or fanout sockets.
func OpenDevice(pc PortConfig) (Port, error) {
	switch pc.Type {
	case PortInternal:
		dev, err := OpenInternal(pc.Name, InternalOptions{MTU: pc.MTU, Queues: pc.Queues})
		if err != nil {
			return nil, err
		}
		if pc.MAC != nil {
			if err := setMAC(pc.Name, pc.MAC); err != nil {
				dev.Close()
				return nil, fmt.Errorf("internal port %q: %w", pc.Name, err)
			}
		}
		if err := SetupInternalLink(pc.Name, pc.MTU, pc.NetNS, pc.Addresses); err != nil {
			dev.Close()
			return nil, err
		}
		return dev, nil
	case PortSystem:
		if pc.MTU > 0 {
			if err := setMTU(pc.Name, pc.MTU); err != nil {
				return nil, fmt.Errorf("system port %q: %w", pc.Name, err)
			}
		}
		dev, err := OpenSystem(pc.Name, SystemOptions{Queues: pc.Queues})
		if err != nil {
			return nil, err
		}
		// Like Open vSwitch, bring the interface up: a port is for traffic.
		if err := setUp(pc.Name); err != nil {
			dev.Close()
			return nil, fmt.Errorf("system port %q: %w", pc.Name, err)
		}
		return dev, nil
	}
	return nil, fmt.Errorf("port %q: type %q: want internal or system", pc.Name, pc.Type)
}

// setMAC sets the Ethernet address of interface name, in the agent's
// namespace (an internal port's, before it moves).
func setMAC(name string, mac net.HardwareAddr) error {
	return updateLink(name, func(l netlink.Link) error {
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set mac %s: %w", mac, err)
		}
		return nil
	})
}

func setUp(name string) error {
	return updateLink(name, func(l netlink.Link) error {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
		return nil
	})
}

func setMTU(name string, mtu int) error {
	return updateLink(name, func(l netlink.Link) error {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
		return nil
	})
}

// updateLink finds interface name in the agent's namespace and applies
// set to it.
func updateLink(name string, set func(netlink.Link) error) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link: %w", err)
	}
	return set(l)
}

// linkMTU reads an interface's MTU in the agent's namespace; 0 if unknown.
func linkMTU(name string) int {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0
	}
	return ifi.MTU
}

var defaultOpen = OpenDevice
