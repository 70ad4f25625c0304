package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/vxswitch/vxswitch/dataplane"
	"github.com/vxswitch/vxswitch/fdb"
)

// The Agent answers the control API from its switch and FDB.
var _ Backend = (*Agent)(nil)

// Show implements Backend.
func (a *Agent) Show(context.Context) (ShowReply, error) {
	r := ShowReply{Bridge: a.cfg.Bridge, Workers: a.sw.Workers(), CPUs: FormatCPUList(a.cfg.CPUs), Ports: []PortInfo{}, VTEPs: []VTEPInfo{}}
	for _, ps := range a.sw.Ports() {
		r.Ports = append(r.Ports, portInfo(ps))
	}
	if v := &a.cfg.VXLAN; v.Enabled {
		info := &VXLANInfo{Local: v.Local.String(), Port: v.Port, Accept: string(v.Accept)}
		for _, vlan := range slices.Sorted(maps.Keys(v.VNI)) {
			info.VNIMap = append(info.VNIMap, VNIPair{VLAN: vlan, VNI: v.VNI[vlan]})
		}
		if v.HasTrunkVNI {
			info.TrunkVNI = &v.TrunkVNI
		}
		r.VXLAN = info
		if a.vteps != nil {
			r.VTEPs = a.vteps()
		} else {
			vnis := a.sw.VNIs()
			for _, rem := range v.Remotes {
				r.VTEPs = append(r.VTEPs, VTEPInfo{Address: rem.Addr().String(), Port: rem.Port(), Source: "static", VNIs: vnis})
			}
		}
	}
	return r, nil
}

func portInfo(ps dataplane.PortStatus) PortInfo {
	c := ps.Config
	pi := PortInfo{Name: c.Name, Type: string(c.Type), VLANMode: c.Mode.String(), MTU: c.MTU, State: "down", NetNS: c.NetNS}
	if ps.Up {
		pi.State = "up"
	}
	if c.HasTag {
		tag := c.Tag
		pi.Tag = &tag
	}
	if c.Mode != dataplane.ModeAccess {
		pi.Trunks = "all"
		if !c.Trunks.Empty() {
			pi.Trunks = c.Trunks.String()
		}
	}
	for _, a := range c.Addresses {
		pi.Addresses = append(pi.Addresses, a.String())
	}
	return pi
}

// FDB implements Backend: entries sorted by port name, VLAN, then MAC.
func (a *Agent) FDB(_ context.Context, q FDBQuery) ([]FDBEntry, error) {
	port := fdb.NoPort
	if q.Port != "" {
		id, err := a.portID(q.Port)
		if err != nil {
			return nil, err
		}
		port = id
	}
	now := fdb.Now()
	entries := a.fdb.Entries(nil)
	out := make([]FDBEntry, 0, len(entries))
	for _, e := range entries {
		if port != fdb.NoPort && e.Port != port || q.VLAN != nil && e.VLAN != *q.VLAN {
			continue
		}
		fe := FDBEntry{Port: a.portName(e.Port), VLAN: e.VLAN, MAC: e.MAC.String(), Static: e.Static}
		if !e.Static {
			fe.Age = max(0, (now-e.LastSeen)/1e9)
		}
		if e.VTEP.IsValid() {
			fe.Remote = e.VTEP.String()
		}
		out = append(out, fe)
	}
	slices.SortFunc(out, func(x, y FDBEntry) int {
		return cmp.Or(cmp.Compare(x.Port, y.Port), cmp.Compare(x.VLAN, y.VLAN), cmp.Compare(x.MAC, y.MAC))
	})
	return out, nil
}

// FDBAdd implements Backend. Static entries go on local ports only (the
// tunnel would need a VTEP) and only in a VLAN the port carries, since an
// entry anywhere else could never be used.
func (a *Agent) FDBAdd(_ context.Context, r FDBAddRequest) error {
	mac, err := fdb.ParseMAC(r.MAC)
	if err != nil {
		return Errorf(CodeBadRequest, "bad MAC %q", r.MAC)
	}
	if r.VLAN > dataplane.MaxVLAN {
		return Errorf(CodeBadRequest, "VLAN %d out of range 0-%d", r.VLAN, dataplane.MaxVLAN)
	}
	if r.Port == dataplane.TunnelName {
		return Errorf(CodeBadRequest, "static entries go on local ports; %q is the tunnel", r.Port)
	}
	id, err := a.portID(r.Port)
	if err != nil {
		return err
	}
	for _, ps := range a.sw.Ports() {
		if ps.ID == id && !ps.Config.Carries(r.VLAN) {
			return Errorf(CodeBadRequest, "port %q does not carry VLAN %d (%s)", r.Port, r.VLAN, describeVLANs(ps.Config))
		}
	}
	switch err := a.fdb.AddStatic(fdb.Key{VLAN: r.VLAN, MAC: mac}, fdb.Dest{Port: id}); {
	case errors.Is(err, fdb.ErrMulticast):
		return Errorf(CodeBadRequest, "%s is a multicast MAC: such frames are always flooded", mac)
	case errors.Is(err, fdb.ErrTableFull):
		return Errorf(CodeConflict, "the FDB is full of static entries (mac-table-size %d)", a.cfg.MACTableSize)
	case err != nil:
		return err
	}
	a.log.Info("static FDB entry added", "mac", mac.String(), "vlan", r.VLAN, "port", r.Port)
	return nil
}

func describeVLANs(c dataplane.PortConfig) string {
	switch {
	case c.Mode == dataplane.ModeAccess:
		return fmt.Sprintf("access, tag %d", c.Tag)
	case c.HasTag:
		return fmt.Sprintf("%s, tag %d, trunks %s", c.Mode, c.Tag, c.Trunks.String())
	}
	return fmt.Sprintf("%s, trunks %s", c.Mode, c.Trunks.String())
}

// FDBDel implements Backend.
func (a *Agent) FDBDel(_ context.Context, r FDBDelRequest) error {
	mac, err := fdb.ParseMAC(r.MAC)
	if err != nil {
		return Errorf(CodeBadRequest, "bad MAC %q", r.MAC)
	}
	if !a.fdb.Delete(fdb.Key{VLAN: r.VLAN, MAC: mac}) {
		return Errorf(CodeNotFound, "no FDB entry for %s in VLAN %d", mac, r.VLAN)
	}
	return nil
}

// FDBFlush implements Backend: learned entries only, as Open vSwitch's
// fdb/flush; static ones stay until fdb del.
func (a *Agent) FDBFlush(_ context.Context, r FDBFlushRequest) (FlushReply, error) {
	f := fdb.Filter{Port: fdb.NoPort}
	if r.VLAN != nil {
		f.HasVLAN, f.VLAN = true, *r.VLAN
	}
	if r.Port != "" {
		id, err := a.portID(r.Port)
		if err != nil {
			return FlushReply{}, err
		}
		f.Port = id
	}
	n := a.fdb.Flush(f)
	attrs := []any{"count", n}
	if r.VLAN != nil {
		attrs = append(attrs, "vlan", *r.VLAN)
	}
	if r.Port != "" {
		attrs = append(attrs, "port", r.Port)
	}
	a.log.Info("FDB flushed", attrs...)
	return FlushReply{Flushed: n}, nil
}

// PortAdd implements Backend.
func (a *Agent) PortAdd(_ context.Context, r PortAddRequest) error {
	pc, err := r.PortConfig()
	if err != nil {
		return err
	}
	if err := a.addPort(pc); err != nil {
		if errors.Is(err, dataplane.ErrPortExists) {
			return Errorf(CodeConflict, "%v", err)
		}
		return err
	}
	a.vnisChanged()
	return nil
}

// PortDel implements Backend.
func (a *Agent) PortDel(_ context.Context, name string) error {
	if name == dataplane.TunnelName {
		return Errorf(CodeBadRequest, "%q is the tunnel, not a port; remove the vxlan section instead", name)
	}
	if err := a.sw.DelPort(name); err != nil {
		if errors.Is(err, dataplane.ErrNoSuchPort) {
			return Errorf(CodeNotFound, "no such port %q", name)
		}
		return err
	}
	a.vnisChanged()
	return nil
}

// Members implements Backend.
func (a *Agent) Members(context.Context) ([]MemberInfo, error) {
	switch {
	case !a.cfg.Gossip.Enabled:
		return nil, Errorf(CodeUnavailable, "gossip is off: the agent's configuration has no gossip section")
	case a.members == nil:
		return nil, Errorf(CodeUnavailable, "gossip is not running in this agent yet")
	}
	m := a.members()
	slices.SortFunc(m, func(x, y MemberInfo) int { return cmp.Compare(x.Name, y.Name) })
	return m, nil
}

// Stats implements Backend.
func (a *Agent) Stats(context.Context) (StatsReply, error) { return a.statsNow(), nil }

func (a *Agent) statsNow() StatsReply {
	r := StatsReply{Ports: []PortStats{}, FDB: a.fdb.Stats()}
	for _, ps := range a.sw.Ports() {
		r.Ports = append(r.Ports, PortStats{Name: ps.Config.Name, PortCounters: ps.Counters, FDB: a.fdb.PortStats(ps.ID)})
	}
	if tc, ok := a.sw.TunnelStats(); ok {
		a.tunnelCounters(&tc)
		r.Tunnel = &tc
	}
	return r
}

// portID finds a port (or the tunnel, as "vxlan") by name.
func (a *Agent) portID(name string) (fdb.PortID, error) {
	if id, ok := a.sw.PortByName(name); ok {
		return id, nil
	}
	return fdb.NoPort, Errorf(CodeNotFound, "no such port %q", name)
}

// portName names a port ID; an entry may outlive its port by a moment.
func (a *Agent) portName(id fdb.PortID) string {
	if n := a.sw.PortName(id); n != "" {
		return n
	}
	return fmt.Sprintf("port%d", id)
}
