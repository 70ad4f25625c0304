package control

// Parsers and checks for single values, shared by the config file and the
// control API (port add), so both accept and reject the same things.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vxswitch/vxswitch/dataplane"
)

// parseVLANItem parses "7" or "220-221" into set; the CLI's --trunks uses it too.
func parseVLANItem(s string, set *dataplane.VLANSet) error {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := parseVLANNumber(lo, s)
	if err != nil {
		return err
	}
	b := a
	if isRange {
		if b, err = parseVLANNumber(hi, s); err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("VLAN range %q ends before it starts", s)
		}
	}
	for v := int(a); v <= int(b); v++ {
		set.Add(uint16(v))
	}
	return nil
}

func parseVLANNumber(s, item string) (uint16, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("bad VLAN %q: want a number 0-%d or a range such as 220-221", item, dataplane.MaxVLAN)
	case v < 0 || v > dataplane.MaxVLAN:
		return 0, fmt.Errorf("VLAN %d out of range 0-%d", v, dataplane.MaxVLAN)
	}
	return uint16(v), nil
}

// parseVLANList parses "7,220-221" (the CLI's --trunks).
func parseVLANList(s string) (dataplane.VLANSet, error) {
	var set dataplane.VLANSet
	for _, item := range strings.Split(s, ",") {
		if err := parseVLANItem(item, &set); err != nil {
			return set, err
		}
	}
	return set, nil
}

// parseHostPort checks host:port; with defPort > 0 the port may be
// omitted. An IPv6 host without a port may be written without brackets.
func parseHostPort(s string, defPort int) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if defPort == 0 {
			return "", fmt.Errorf("bad address %q: want host:port", s)
		}
		host, port = strings.Trim(s, "[]"), strconv.Itoa(defPort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("bad address %q: port %q is not a number 0-65535", s, port)
	}
	if strings.ContainsAny(host, " /[]") {
		return "", fmt.Errorf("bad address %q: bad host %q", s, host)
	}
	return net.JoinHostPort(host, port), nil
}

// parseAddrPort parses an IP address with an optional port.
func parseAddrPort(s string, defPort uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if port, ok := strings.CutPrefix(s, ":"); ok && defPort != 0 { // ":7947": all addresses
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)), nil
		}
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: want an IP address, optionally with :port", s)
	}
	return netip.AddrPortFrom(a, defPort), nil
}

// checkPortName applies the kernel's rules for interface names, and keeps
// "vxlan" for the tunnel, which fdb show lists under that name.
func checkPortName(name string) error {
	switch {
	case name == "":
		return errors.New("port name must not be empty")
	case len(name) > 15:
		return fmt.Errorf("port name %q is %d bytes; an interface name has at most 15", name, len(name))
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\r\x00"):
		return fmt.Errorf("port name %q is not a valid interface name", name)
	case name == dataplane.TunnelName:
		return fmt.Errorf("port name %q is reserved for the tunnel", name)
	}
	return nil
}

// netnsPath turns a namespace name as `ip netns` knows it into its path.
func netnsPath(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("must not be empty")
	case !strings.Contains(s, "/"):
		return "/run/netns/" + s, nil
	case !filepath.IsAbs(s):
		return "", fmt.Errorf("netns %q: want a name (blue-c0) or an absolute path (/run/netns/blue-c0)", s)
	}
	return filepath.Clean(s), nil
}
