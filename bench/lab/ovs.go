package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// OVSSchema is the Open vSwitch database schema Debian installs.
const OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVS is Open vSwitch with its userspace datapath (datapath_type=netdev),
// set up as in OVS's userspace-tunnelling guide. Per host it runs its own
// ovsdb-server and ovs-vswitchd in the foreground inside the host
// namespace, with a private run/db/log directory under the lab's Dir
// (never --detach: detached daemons are re-parented to a PID 1 that does
// not reap them here). Bridges:
//
//	br-phy  the underlay veth as a port; the underlay address moves to
//	        br-phy's internal interface (userspace tunnels route and ARP
//	        through an OVS bridge)
//	br-int  the containers' veths as access ports tag=7, an SVI
//	        sw-vlan7 (internal, tag=7) and one vxlan port per peer
//	        (options:remote_ip, options:key=7; UDP 4789)
//
// The vxlan port has no tag, so it is a trunk: frames cross the tunnel
// with their 802.1Q tag inside VNI 7, as in the classic OVS lab.
//
// With TapContainers ("ovs-tap") the containers' interfaces are OVS
// internal ports instead of veths: in the userspace datapath those are
// TAPs that ovs-vswitchd reads and writes, moved into the containers'
// namespaces, which is what vxswitch's internal ports are. It compares
// the two switches port type for port type.
type OVS struct {
	TapContainers bool
	procs         []*Proc // ovsdb-server and ovs-vswitchd of every host
}

var _ Contender = (*OVS)(nil)

// Name returns "ovs", or "ovs-tap" with TapContainers.
func (c *OVS) Name() string {
	if c.TapContainers {
		return "ovs-tap"
	}
	return "ovs"
}

// Available needs the OVS binaries and the schema.
func (*OVS) Available() error {
	var errs []error
	for _, b := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"} {
		if _, err := exec.LookPath(b); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(OVSSchema); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (Debian package openvswitch-switch)", errors.Join(errs...))
	}
	return nil
}

// ContainerVeths is true unless TapContainers: containers hang off br-int
// through veths.
func (c *OVS) ContainerVeths() bool { return !c.TapContainers }

// ovsHost is one host's OVS instance.
type ovsHost struct {
	l   *Lab
	h   *Host
	dir string
}

func (o *ovsHost) sock() string { return filepath.Join(o.dir, "db.sock") }

// env returns the `env` prefix that points an OVS program at the
// instance's private directories.
func (o *ovsHost) env(args ...string) []string {
	return append([]string{"env",
		"OVS_RUNDIR=" + o.dir, "OVS_DBDIR=" + o.dir, "OVS_LOGDIR=" + o.dir, "OVS_SYSCONFDIR=" + o.dir,
	}, args...)
}

// vsctl runs ovs-vsctl against this instance. Without --no-wait it waits
// (at most 30 s) until ovs-vswitchd has applied the change.
func (o *ovsHost) vsctl(args ...string) error {
	_, err := o.l.Exec(o.h.NS, o.env(append([]string{"ovs-vsctl", "--db=unix:" + o.sock(), "--timeout=30"}, args...)...)...)
	return err
}

// Appctl runs ovs-appctl against host h's ovs-vswitchd (for example
// "ovs/route/show", "tnl/arp/show", "fdb/show br-int").
func (*OVS) Appctl(t *Topo, h *Host, args ...string) (string, error) {
	o := &ovsHost{l: t.Lab, h: h, dir: filepath.Join(t.Lab.Dir, "ovs-"+h.Name)}
	ctl := filepath.Join(o.dir, "ovs-vswitchd.ctl")
	return t.Lab.Exec(h.NS, o.env(append([]string{"ovs-appctl", "-t", ctl}, args...)...)...)
}

// SwitchProcs returns every host's ovsdb-server and ovs-vswitchd.
func (c *OVS) SwitchProcs() []*Proc { return c.procs }

// Setup starts OVS on every host and builds br-phy and br-int.
func (c *OVS) Setup(t *Topo) error {
	c.procs = nil
	for _, h := range t.Hosts {
		if err := c.setupHost(t, h); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	return nil
}

func (c *OVS) setupHost(t *Topo, h *Host) error {
	l := t.Lab
	o := &ovsHost{l: l, h: h, dir: filepath.Join(l.Dir, "ovs-"+h.Name)}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	db := filepath.Join(o.dir, "conf.db")
	if _, err := l.Exec("", "ovsdb-tool", "create", db, OVSSchema); err != nil {
		return err
	}
	srv, err := l.Start(h.NS, o.env("ovsdb-server", db,
		"--remote=punix:"+o.sock(),
		"--unixctl="+filepath.Join(o.dir, "ovsdb-server.ctl"),
		"--pidfile="+filepath.Join(o.dir, "ovsdb-server.pid"),
		"-vconsole:info", "-vfile:off")...)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, srv)
	if err := l.WaitFor(func() error {
		if err := srv.Alive(); err != nil {
			return err
		}
		_, err := os.Stat(o.sock())
		return err
	}, 15*time.Second); err != nil {
		return fmt.Errorf("ovsdb-server: %w", err)
	}
	if err := o.vsctl("--no-wait", "init"); err != nil {
		return err
	}
	vsd, err := l.Start(h.NS, o.env("ovs-vswitchd", "unix:"+o.sock(),
		"--unixctl="+filepath.Join(o.dir, "ovs-vswitchd.ctl"),
		"--pidfile="+filepath.Join(o.dir, "ovs-vswitchd.pid"),
		"-vconsole:info", "-vfile:off")...)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, vsd)
	// The first change that waits for ovs-vswitchd also proves it runs.
	if err := o.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev"); err != nil {
		return fmt.Errorf("%w\n%s", err, vsd.Alive())
	}
	mtu := fmt.Sprint(t.Opts.MTU)
	if h.Underlay.IsValid() {
		steps := [][]string{
			{"add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "fail-mode=standalone"},
			{"add-port", "br-phy", UnderlayIf},
			{"set", "interface", "br-phy", fmt.Sprintf("mtu_request=%d", t.Opts.UnderlayMTU)},
		}
		for _, s := range steps {
			if err := o.vsctl(s...); err != nil {
				return err
			}
		}
		for _, args := range [][]string{
			{"ip", "addr", "flush", "dev", UnderlayIf},
			{"ip", "addr", "add", h.Underlay.String(), "dev", "br-phy"},
			{"ip", "link", "set", "br-phy", "up"},
		} {
			if _, err := l.Exec(h.NS, args...); err != nil {
				return err
			}
		}
		if h.Underlay.Addr().Is6() {
			// nodad: the address must be usable at once for tunnels.
			_, _ = l.Exec(h.NS, "ip", "addr", "change", h.Underlay.String(), "dev", "br-phy", "nodad")
		}
		for i, peer := range h.Peers {
			vx := fmt.Sprintf("vx%d", i)
			if err := o.vsctl("add-port", "br-int", vx, "--", "set", "interface", vx, "type=vxlan",
				"options:remote_ip="+peer.String(), fmt.Sprintf("options:key=%d", VLAN)); err != nil {
				return err
			}
		}
	}
	for _, ct := range h.Containers {
		if c.TapContainers {
			if err := o.tapContainer(ct, mtu); err != nil {
				return err
			}
			continue
		}
		if err := o.vsctl("add-port", "br-int", ct.Name, fmt.Sprintf("tag=%d", VLAN),
			"--", "set", "interface", ct.Name, "mtu_request="+mtu); err != nil {
			return err
		}
	}
	if err := o.vsctl("add-port", "br-int", "sw-vlan7", fmt.Sprintf("tag=%d", VLAN),
		"--", "set", "interface", "sw-vlan7", "type=internal", "mtu_request="+mtu); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "addr", "add", h.SVI4.String(), "dev", "sw-vlan7"},
		{"ip", "addr", "add", h.SVI6.String(), "dev", "sw-vlan7", "nodad"},
		{"ip", "link", "set", "sw-vlan7", "up"},
		{"ip", "link", "set", "br-int", "up"},
	} {
		if _, err := l.Exec(h.NS, args...); err != nil {
			return err
		}
	}
	return vsd.Alive()
}

// tapContainer gives container ct an OVS internal port (a TAP in the
// userspace datapath) named like the container, moved into its namespace
// and addressed there, as vxswitch's internal ports with netns: are.
func (o *ovsHost) tapContainer(ct *Container, mtu string) error {
	if err := o.vsctl("add-port", "br-int", ct.Name, fmt.Sprintf("tag=%d", VLAN),
		"--", "set", "interface", ct.Name, "type=internal", "mtu_request="+mtu); err != nil {
		return err
	}
	if _, err := o.l.Exec(o.h.NS, "ip", "link", "set", ct.Name, "netns", ct.NS); err != nil {
		return err
	}
	for _, a := range []netip.Prefix{ct.Addr4, ct.Addr6} {
		if err := o.l.Addr(ct.NS, ct.IfName, a.String()); err != nil {
			return err
		}
	}
	return o.l.Up(ct.NS, ct.IfName)
}
