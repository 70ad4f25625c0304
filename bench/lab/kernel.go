package lab

import (
	"fmt"
	"os/exec"
)

// Kernel is the Linux bridge plus a kernel vxlan device: per host a bridge
// br0 holding the containers' veths and vx0 (VNI 7, dstport 4789 — the
// kernel's default is 8472 — over the underlay), with the host's SVI
// address on br0. The bridge does no VLAN filtering (this kernel has
// none), so VLAN 7 is simply everything on br0 and VNI 7 on the wire.
type Kernel struct{}

var _ Contender = Kernel{}

// Name returns "kernel".
func (Kernel) Name() string { return "kernel" }

// Available needs only iproute2.
func (Kernel) Available() error {
	_, err := exec.LookPath("ip")
	return err
}

// SwitchProcs is nil: the bridge and the vxlan device have no process;
// they work in the sender's context and in softirq.
func (Kernel) SwitchProcs() []*Proc { return nil }

// ContainerVeths is true: containers hang off br0 through veths.
func (Kernel) ContainerVeths() bool { return true }

// Setup creates br0 and vx0 on every host and enslaves the veths.
func (Kernel) Setup(t *Topo) error {
	l, mtu := t.Lab, fmt.Sprint(t.Opts.MTU)
	for _, h := range t.Hosts {
		cmds := [][]string{
			{"ip", "link", "add", "br0", "mtu", mtu, "type", "bridge"},
		}
		if h.Underlay.IsValid() {
			for i, peer := range h.Peers {
				vx := fmt.Sprintf("vx%d", i)
				cmds = append(cmds,
					[]string{"ip", "link", "add", vx, "mtu", mtu, "type", "vxlan", "id", fmt.Sprint(VLAN),
						"local", h.Underlay.Addr().String(), "remote", peer.String(),
						"dstport", "4789", "dev", UnderlayIf},
					[]string{"ip", "link", "set", vx, "master", "br0", "up"})
			}
		}
		for _, c := range h.Containers {
			cmds = append(cmds, []string{"ip", "link", "set", c.Name, "master", "br0"})
		}
		cmds = append(cmds,
			[]string{"ip", "addr", "add", h.SVI4.String(), "dev", "br0"},
			[]string{"ip", "addr", "add", h.SVI6.String(), "dev", "br0", "nodad"},
			[]string{"ip", "link", "set", "br0", "up"})
		for _, args := range cmds {
			if _, err := l.Exec(h.NS, args...); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	return nil
}
