package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// SetupInternalLink prepares the kernel side of internal port name, which
// must exist in the caller's network namespace: it sets the MTU (when
// mtu > 0), moves the interface into the namespace at netnsPath (when not
// empty, e.g. /run/netns/blue-c0; the name is kept), sets it up there and
// adds addrs there. IPv6 addresses are added without duplicate address
// detection (IFA_F_NODAD), so they work at once. Adding an address that is
// already there is not an error.
//
// Work in the other namespace goes through a netlink handle opened in it;
// this goroutine's thread never changes namespace (see handleAt).
func SetupInternalLink(name string, mtu int, netnsPath string, addrs []netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("port %q: find link: %w", name, err)
	}
	if mtu > 0 {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("port %q: set MTU %d: %w", name, mtu, err)
		}
	}
	var h *netlink.Handle
	if netnsPath == "" {
		if h, err = netlink.NewHandle(); err != nil {
			return fmt.Errorf("port %q: netlink: %w", name, err)
		}
	} else {
		ns, err := netns.GetFromPath(netnsPath)
		if err != nil {
			return fmt.Errorf("port %q: open netns %s: %w", name, netnsPath, err)
		}
		defer ns.Close()
		if err := netlink.LinkSetNsFd(link, int(ns)); err != nil {
			return fmt.Errorf("port %q: move to netns %s: %w", name, netnsPath, err)
		}
		if h, err = handleAt(ns); err != nil {
			return fmt.Errorf("port %q: netlink in netns %s: %w", name, netnsPath, err)
		}
	}
	defer h.Close()
	where := ""
	if netnsPath != "" {
		where = " in netns " + netnsPath
	}
	if link, err = h.LinkByName(name); err != nil {
		return fmt.Errorf("port %q: find link%s: %w", name, where, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("port %q: set up%s: %w", name, where, err)
	}
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: prefixIPNet(p)}
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("port %q: add address %s%s: %w", name, p, where, err)
		}
	}
	return nil
}

// DeleteLink removes interface name from the namespace at netnsPath (the
// caller's when empty), if it is there. It is best-effort cleanup: errors
// are ignored.
func DeleteLink(name, netnsPath string) {
	hp := &netlink.Handle{} // no sockets of its own: the caller's namespace
	if netnsPath != "" {
		ns, err := netns.GetFromPath(netnsPath)
		if err != nil {
			return
		}
		defer ns.Close()
		if hp, err = handleAt(ns); err != nil {
			return
		}
		defer hp.Close()
	}
	if l, err := hp.LinkByName(name); err == nil {
		_ = hp.LinkDel(l)
	}
}

// handleAt opens a netlink handle whose sockets live in namespace ns.
//
// netlink.NewHandleAt creates its sockets by switching the calling thread
// into ns and back, and unlocks the thread even when switching back
// failed, which would leave a goroutine of ours running in the wrong
// namespace. So it runs here on a fresh goroutine that locks its own
// thread first (locks nest) and unlocks it only when the thread is back in
// its original namespace; otherwise the goroutine exits still locked and
// the runtime ends the thread (as cilium/ebpf's NetNS.Do does).
func handleAt(ns netns.NsHandle) (*netlink.Handle, error) {
	type result struct {
		h   *netlink.Handle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		h, err := netlink.NewHandleAt(ns)
		if cur, cerr := netns.Get(); cerr == nil {
			if cur.Equal(orig) {
				runtime.UnlockOSThread()
			}
			cur.Close()
		}
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
