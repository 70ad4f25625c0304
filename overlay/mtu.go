package overlay

import (
	"fmt"
	"net"
	"net/netip"
)

// UnderlayMTUNeeded returns the underlay MTU that carries frames from
// ports of L3 MTU portMTU: portMTU + 50 over IPv4, + 70 over IPv6, and 4
// more when inner frames keep an 802.1Q tag (trunk VNI).
func UnderlayMTUNeeded(portMTU int, ipv6, innerTagged bool) int {
	n := portMTU + OverheadIPv4
	if ipv6 {
		n = portMTU + OverheadIPv6
	}
	if innerTagged {
		n += 4
	}
	return n
}

// CheckUnderlayMTU finds the interface that holds local and compares its
// MTU with what frames from a port of MTU largestPortMTU need once
// encapsulated. It returns a warning sentence naming both numbers when the
// underlay is too small (such frames would be dropped or fragmented), ""
// when it is large enough, and an error when no interface holds local.
func CheckUnderlayMTU(local netip.Addr, largestPortMTU int, innerTagged bool) (warning string, err error) {
	local = local.Unmap()
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("underlay MTU: list interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok || ip.Unmap() != local {
				continue
			}
			return mtuWarning(ifc.Name, ifc.MTU, local, largestPortMTU, innerTagged), nil
		}
	}
	return "", fmt.Errorf("underlay MTU: no interface has address %s", local)
}

func mtuWarning(ifname string, ifMTU int, local netip.Addr, portMTU int, innerTagged bool) string {
	need := UnderlayMTUNeeded(portMTU, local.Is6(), innerTagged)
	if ifMTU >= need {
		return ""
	}
	family, overhead := "IPv4", OverheadIPv4
	if local.Is6() {
		family, overhead = "IPv6", OverheadIPv6
	}
	tag := ""
	if innerTagged {
		overhead += 4
		tag = " with an 802.1Q tag"
	}
	return fmt.Sprintf("underlay interface %s (%s) has MTU %d, but frames from ports with MTU %d need %d "+
		"(%d bytes of VXLAN over %s%s); larger frames will be dropped or fragmented: "+
		"raise the underlay MTU to %d or lower the port MTU to %d",
		ifname, local, ifMTU, portMTU, need, overhead, family, tag, need, ifMTU-(need-portMTU))
}
