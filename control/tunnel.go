package control

import (
	"fmt"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/overlay"
)

// startTunnel opens the VXLAN endpoint of the vxlan section, adds the
// static remotes, attaches it to the switch and warns when the underlay
// MTU cannot carry the largest port MTU plus the VXLAN overhead.
func (a *Agent) startTunnel() error {
	v := &a.cfg.VXLAN
	if !v.Enabled {
		return nil
	}
	ep, err := overlay.Listen(overlay.Config{
		Local:      v.Local,
		Port:       v.Port,
		SrcPortMin: v.SrcPortMin,
		SrcPortMax: v.SrcPortMax,
		TTL:        int(v.TTL),
		DF:         v.DF,
		Accept:     string(v.Accept),
		Queues:     a.cfg.Workers, // one receive socket and send lane per reader
		Logger:     a.log.With("component", "overlay"),
	})
	if err != nil {
		return fmt.Errorf("vxlan: %w", err)
	}
	for _, r := range v.Remotes {
		// No VNIs: a static remote serves every VNI the bridge carries.
		ep.AddVTEP(r.Addr(), r.Port(), nil, overlay.SourceStatic)
	}
	tc := dataplane.TunnelConfig{TrunkVNI: v.TrunkVNI, HasTrunkVNI: v.HasTrunkVNI}
	if len(v.VNI) > 0 {
		tc.VNIs = v.VNI
	}
	if err := a.sw.SetTunnel(ep, tc); err != nil {
		ep.Close()
		return fmt.Errorf("vxlan: %w", err)
	}
	a.tunnel = ep
	ep.SetVNIs(a.sw.VNIs())
	a.vteps = a.tunnelVTEPs

	largest := a.cfg.MTU
	for _, ps := range a.sw.Ports() {
		largest = max(largest, ps.Config.MTU)
	}
	switch warn, err := overlay.CheckUnderlayMTU(v.Local, largest, v.HasTrunkVNI); {
	case err != nil:
		a.log.Warn("cannot check the underlay MTU", "err", err)
	case warn != "":
		a.log.Warn(warn)
	}
	return nil
}

// vnisChanged tells the tunnel (and gossip) which VNIs the bridge now
// carries, after a port was added or removed.
func (a *Agent) vnisChanged() {
	if a.tunnel == nil {
		return
	}
	vnis := a.sw.VNIs()
	a.tunnel.SetVNIs(vnis)
	if a.gossip != nil {
		if err := a.gossip.UpdateVNIs(vnis); err != nil {
			a.log.Warn("gossip: cannot announce the new VNIs", "err", err)
		}
	}
}

// tunnelVTEPs lists the remote VTEPs for show, with where they came from.
func (a *Agent) tunnelVTEPs() []VTEPInfo {
	var out []VTEPInfo
	for _, vi := range a.tunnel.VTEPs() {
		out = append(out, VTEPInfo{Address: vi.Addr.String(), Port: vi.Port, Source: vi.Source, VNIs: vi.VNIs})
	}
	return out
}

// tunnelCounters merges the endpoint's drops (malformed, unknown VNI,
// unknown sender, send errors) into the switch's tunnel counters.
func (a *Agent) tunnelCounters(c *dataplane.PortCounters) {
	if a.tunnel == nil {
		return
	}
	for reason, n := range a.tunnel.Stats().Drops {
		if n > 0 {
			c.Drops[reason] += n
		}
	}
}
